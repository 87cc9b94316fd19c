"""Deterministic synthetic corpus of UN meetings, in the project's own data layout.

    python -m bench.generate --scale 100k --out /tmp/corpus-100k [--seed 7]
    python -m bench.generate --meetings 3 --out /tmp/tiny          # any size

The output folder holds ``ontology/`` and ``shapes/`` copied from the project and ``data/``:
the project's own data (so the five regional commissions, UN Headquarters, the New Urban
Agenda and the topic scheme are there) plus ``data/synthetic/``:

- ``places.ttl``         venues in the regional commissions' seat cities, names in six languages,
                         postal address and coordinates (blank nodes)            (ReferenceGraph)
- ``organizations.ttl``  national bodies that co-organise meetings, six-language names (ReferenceGraph)
- ``topics.ttl``         narrower concepts under the real topic scheme, six-language labels (EditorialGraph)
- ``batch-NNN/{source-ar,source-en,translation,editorial}.ttl``: meetings modelled exactly like
  the real one: kind, names (ar, en, fr, es, ru, zh), description ar+en, start/end
  ``xsd:dateTime`` with the zone's UTC offset, ``unm:timeZone``, venue, organisers, objectives
  (position, text ar+en, topics), an outcome document with points (position, text ar+en,
  topics) and a closing statement; source text in the source graphs, translations and
  editorial additions in their own graphs, just as ``data/meeting/`` does.

Every new graph is described in ``data/provenance.ttl`` (PROV-O), like the real ones.
Same seed and size, same bytes. ``real`` is the project's data unchanged.
"""
from __future__ import annotations

import argparse
import datetime as dt
import random
import shutil
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

PROJECT = Path(__file__).resolve().parent.parent

#: triples per synthetic meeting are ~120 on average (measured); sizes are meeting counts
SCALES = {"real": 0, "100k": 820, "1m": 8300}
BATCH = 250  # meetings per batch folder (4 named graphs per batch)

PREFIXES = """@prefix unm:          <ontology#> .
@prefix meeting:      <id/meeting/> .
@prefix organization: <id/organization/> .
@prefix place:        <id/place/> .
@prefix objective:    <id/objective/> .
@prefix point:        <id/outcome-point/> .
@prefix document:     <id/document/> .
@prefix webpage:      <id/webpage/> .
@prefix topic:        <id/topic/> .
@prefix scheme:       <id/scheme/> .
@prefix graph:        <graph/> .
@prefix schema:       <https://schema.org/> .
@prefix org:          <http://www.w3.org/ns/org#> .
@prefix dcterms:      <http://purl.org/dc/terms/> .
@prefix skos:         <http://www.w3.org/2004/02/skos/core#> .
@prefix prov:         <http://www.w3.org/ns/prov#> .
@prefix rdfs:         <http://www.w3.org/2000/01/rdf-schema#> .
@prefix xsd:          <http://www.w3.org/2001/XMLSchema#> .
@prefix sdg:          <http://metadata.un.org/sdg/> .

"""
SEP = " ,\n        "
LANGS = ("ar", "en", "fr", "es", "ru", "zh")

#: the five regional commissions (real IRIs) with their seat: city names in six languages, IANA zone
COMMISSIONS = {
    "eca": (("أديس أبابا", "Addis Ababa", "Addis-Abeba", "Adís Abeba", "Аддис-Абеба", "亚的斯亚贝巴"), "Africa/Addis_Ababa", "ET", 9.0192, 38.7525),
    "ece": (("جنيف", "Geneva", "Genève", "Ginebra", "Женева", "日内瓦"), "Europe/Zurich", "CH", 46.2266, 6.1405),
    "eclac": (("سانتياغو", "Santiago", "Santiago", "Santiago", "Сантьяго", "圣地亚哥"), "America/Santiago", "CL", -33.3984, -70.5962),
    "escap": (("بانكوك", "Bangkok", "Bangkok", "Bangkok", "Бангкок", "曼谷"), "Asia/Bangkok", "TH", 13.7602, 100.5075),
    "escwa": (("بيروت", "Beirut", "Beyrouth", "Beirut", "Бейрут", "贝鲁特"), "Asia/Beirut", "LB", 33.8959, 35.5131),
}
VENUE = ("قاعة الاجتماعات {n}، {city}", "Conference room {n}, {city}", "Salle de conférence {n}, {city}",
         "Sala de conferencias {n}, {city}", "Конференц-зал {n}, {city}", "{city}第{n}会议室")
BODY = ("الهيئة الوطنية للتنمية الحضرية {n}", "National Urban Development Authority {n}",
        "Autorité nationale de développement urbain {n}", "Autoridad Nacional de Desarrollo Urbano {n}",
        "Национальное управление городского развития {n}", "国家城市发展局{n}")

#: (real topic slug, phrase in ar, en, fr, es, ru, zh): what objectives and points are about
THEMES = [
    ("climate-action", ("العمل المناخي", "climate action", "l'action climatique", "la acción climática", "борьба с изменением климата", "气候行动")),
    ("affordable-housing", ("الإسكان الميسور الكلفة", "affordable housing", "le logement abordable", "la vivienda asequible", "доступное жильё", "经济适用住房")),
    ("covid-19-recovery", ("التعافي من جائحة كوفيد-19", "recovery from COVID-19", "la reprise après la COVID-19", "la recuperación de la COVID-19", "восстановление после COVID-19", "从2019冠状病毒病中恢复")),
    ("social-protection", ("الحماية الاجتماعية", "social protection", "la protection sociale", "la protección social", "социальная защита", "社会保护")),
    ("local-governments", ("الحكومات المحلية", "local governments", "les administrations locales", "los gobiernos locales", "местные органы власти", "地方政府")),
    ("urban-and-regional-planning", ("التخطيط الحضري والإقليمي", "urban and regional planning", "l'aménagement urbain et régional", "la planificación urbana y regional", "городское и региональное планирование", "城市和区域规划")),
    ("urban-basic-services", ("الخدمات الأساسية الحضرية", "urban basic services", "les services urbains de base", "los servicios urbanos básicos", "базовые городские услуги", "城市基本服务")),
    ("multi-stakeholder-partnerships", ("الشراكات بين أصحاب المصلحة المتعددين", "multi-stakeholder partnerships", "les partenariats multipartites", "las alianzas de múltiples interesados", "партнёрства с участием многих сторон", "多利益攸关方伙伴关系")),
    ("sustainable-development", ("التنمية المستدامة", "sustainable development", "le développement durable", "el desarrollo sostenible", "устойчивое развитие", "可持续发展")),
    ("disasters", ("الحد من مخاطر الكوارث", "disaster risk reduction", "la réduction des risques de catastrophe", "la reducción del riesgo de desastres", "снижение риска бедствий", "减少灾害风险")),
]
VERBS = [
    ("تعزيز", "Strengthen"), ("دعم", "Support"), ("تشجيع", "Encourage"), ("إبراز أهمية", "Highlight the importance of"),
    ("تبادل الخبرات بشأن", "Share experience on"), ("مناقشة السياسات المتعلقة ب", "Discuss policies on"),
]
CONTEXTS = [
    ("في المدن العربية", "in Arab cities"), ("على المستوى المحلي", "at the local level"),
    ("في المدن الثانوية", "in secondary cities"), ("في إطار الخطة الحضرية الجديدة", "within the New Urban Agenda"),
    ("بالتعاون مع السلطات الوطنية", "in cooperation with national authorities"),
]
KINDS = ("ExpertGroupMeeting", "HighLevelMeeting")
KIND_NAME = {"ExpertGroupMeeting": ("اجتماع فريق الخبراء بشأن {t}", "Expert group meeting on {t}", "Réunion de groupe d'experts sur {t}",
                                    "Reunión de grupo de expertos sobre {t}", "Совещание группы экспертов: {t}", "关于{t}的专家组会议"),
             "HighLevelMeeting": ("اجتماع رفيع المستوى بشأن {t}", "High-level meeting on {t}", "Réunion de haut niveau sur {t}",
                                  "Reunión de alto nivel sobre {t}", "Совещание высокого уровня: {t}", "关于{t}的高级别会议")}
DOC_NAME = ("الوثيقة الختامية", "Outcome document", "Document final", "Documento final", "Итоговый документ", "成果文件")


def lit(text: str, lang: str | None = None) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"' + (f"@{lang}" if lang else "")


def six(values, fmt=lambda lang, v: v) -> str:
    return SEP.join(lit(fmt(lang, v), lang) for lang, v in zip(LANGS, values))


class Corpus:
    def __init__(self, meetings: int, seed: int):
        self.meetings, self.rng = meetings, random.Random(seed)
        self.places: list[tuple[str, str]] = []  # (slug, commission)
        self.bodies: list[str] = []
        self.subtopics: dict[str, list[str]] = {}

    # -- reference data ---------------------------------------------------------------
    def places_ttl(self) -> str:
        out = [PREFIXES, "# Synthetic venues in the seat cities of the five regional commissions.\n"]
        for code, (city, zone, country, lat, lon) in COMMISSIONS.items():
            for n in range(1, 11):
                slug = f"{code}-conference-room-{n}"
                self.places.append((slug, code))
                names = [VENUE[i].format(n=n, city=city[i]) for i in range(6)]
                out.append(f"""place:{slug}
    a schema:Place ;
    schema:name
        {six(names)} ;
    schema:address [
        a schema:PostalAddress ;
        schema:streetAddress {lit(f"{n} United Nations Street")} ;
        schema:addressLocality {lit(city[1])} ;
        schema:addressCountry {lit(country)}
    ] ;
    schema:geo [
        a schema:GeoCoordinates ;
        schema:latitude "{lat + n / 1000:.4f}"^^xsd:decimal ;
        schema:longitude "{lon + n / 1000:.4f}"^^xsd:decimal
    ] .
""")
        return "\n".join(out)

    def organizations_ttl(self) -> str:
        out = [PREFIXES, "# Synthetic national bodies that co-organise meetings with a regional commission.\n"]
        for n in range(1, 31):
            slug = f"national-urban-development-authority-{n}"
            self.bodies.append(slug)
            out.append(f"""organization:{slug}
    a org:FormalOrganization , schema:GovernmentOrganization , schema:Organization ;
    schema:name
        {six([f.format(n=n) for f in BODY])} ;
    schema:alternateName {lit(f"NUDA-{n}", "en")} .
""")
        return "\n".join(out)

    def topics_ttl(self) -> str:
        out = [PREFIXES, "# Synthetic narrower topics in the editorial topic scheme.\n"]
        for slug, phrase in THEMES:
            self.subtopics[slug] = []
            for code, (city, *_rest) in COMMISSIONS.items():
                sub = f"{slug}-{code}"
                self.subtopics[slug].append(sub)
                labels = [f"{phrase[0]} ({city[0]})", f"{phrase[1][0].upper() + phrase[1][1:]} ({city[1]})",
                          f"{phrase[2]} ({city[2]})", f"{phrase[3]} ({city[3]})", f"{phrase[4]} ({city[4]})",
                          f"{phrase[5]}（{city[5]}）"]
                out.append(f"""topic:{sub}
    a skos:Concept ;
    skos:inScheme scheme:topics ;
    skos:broader topic:{slug} ;
    skos:prefLabel
        {six(labels)} ;
    skos:definition
        {lit(f"{phrase[0]} في منطقة {city[0]}.", "ar")} ,
        {lit(f"{phrase[1][0].upper() + phrase[1][1:]} in the region of {city[1]}.", "en")} .
""")
        return "\n".join(out)

    # -- meetings -----------------------------------------------------------------------
    def batch(self, number: int, first: int, count: int) -> dict[str, str]:
        rng = self.rng
        ar, en, tr, ed = ([PREFIXES] for _ in range(4))
        ar.append(f"# Synthetic batch {number}: what the (synthetic) source pages state, in Arabic.\n")
        en.append(f"# Synthetic batch {number}: what the (synthetic) English pages state.\n")
        tr.append(f"# Synthetic batch {number}: translations.\n")
        ed.append(f"# Synthetic batch {number}: organisers, status, topics.\n")
        for i in range(first, first + count):
            code = rng.choice(list(COMMISSIONS))
            city, zone, *_ = COMMISSIONS[code]
            theme_index = rng.randrange(len(THEMES))
            theme_slug, theme = THEMES[theme_index]
            kind = rng.choice(KINDS)
            year = rng.randint(2015, 2025)
            day = dt.date(year, 1, 1) + dt.timedelta(days=rng.randrange(365))
            start_hour, hours = rng.choice([(9, 8), (10, 6), (14, 3), (9, 3)])
            tz = ZoneInfo(zone)
            start = dt.datetime.combine(day, dt.time(start_hour), tz)
            end = start + dt.timedelta(hours=hours)
            slug = f"{code}-{theme_slug}-{year}-{i:05d}"
            place_slug = f"{code}-conference-room-{rng.randint(1, 10)}"
            names = [KIND_NAME[kind][k].format(t=theme[k]) + (f" ({city[k]}، {year})" if k == 0 else f"（{city[k]}，{year}年）" if k == 5 else f" ({city[k]}, {year})")
                     for k in range(6)]
            objectives = [(rng.randrange(len(THEMES)), rng.randrange(len(VERBS)), rng.randrange(len(CONTEXTS)))
                          for _ in range(rng.randint(3, 7))]
            points = [(rng.randrange(len(THEMES)), rng.randrange(len(CONTEXTS))) for _ in range(rng.randint(2, 5))]
            doc = f"{slug}-outcome"
            obj_iris = ", ".join(f"objective:{slug}-{n}" for n in range(1, len(objectives) + 1))
            point_iris = ", ".join(f"point:{slug}-{n}" for n in range(1, len(points) + 1))
            ar.append(f"""meeting:{slug}
    a unm:{kind}, schema:Event ;
    schema:name {lit(names[0], "ar")} ;
    schema:description {lit(f"يناقش هذا الاجتماع الذي تعقده اللجنة في {city[0]} سبل {theme[0]} {CONTEXTS[theme_index % len(CONTEXTS)][0]}، ويجمع خبراء من الحكومات والسلطات المحلية.", "ar")} ;
    schema:startDate "{start.isoformat()}"^^xsd:dateTime ;
    schema:endDate "{end.isoformat()}"^^xsd:dateTime ;
    unm:timeZone {lit(zone)} ;
    schema:location place:{place_slug} ;
    schema:about document:new-urban-agenda ;
    unm:hasObjective {obj_iris} ;
    unm:hasOutcomeDocument document:{doc} ;
    schema:subjectOf document:{doc} .
""")
            en.append(f"""meeting:{slug}
    schema:name {lit(names[1], "en")} ;
    schema:description {lit(f"This meeting, held by the commission in {city[1]}, discusses ways to advance {theme[1]} {CONTEXTS[theme_index % len(CONTEXTS)][1]}, and brings together experts from governments and local authorities.", "en")} .
""")
            tr.append(f"""meeting:{slug}
    schema:name
        {SEP.join(lit(names[k], LANGS[k]) for k in range(2, 6))} .
""")
            organisers = [f"organization:{code}"] + [f"organization:{b}" for b in rng.sample(self.bodies, rng.randint(0, 2))]
            ed.append(f"""meeting:{slug}
    schema:organizer {", ".join(organisers)} ;
    schema:eventStatus schema:EventScheduled ;
    schema:eventAttendanceMode {rng.choice(["schema:OfflineEventAttendanceMode", "schema:MixedEventAttendanceMode"])} ;
    dcterms:subject sdg:11 .
""")
            for n, (t, v, c) in enumerate(objectives, 1):
                t_slug, phrase = THEMES[t]
                iri = f"objective:{slug}-{n}"
                ar.append(f"""{iri}
    a unm:Objective, schema:Intangible ;
    schema:position {n} ;
    schema:text {lit(f"{VERBS[v][0]} {phrase[0]} {CONTEXTS[c][0]}.", "ar")} ;
    unm:objectiveOf meeting:{slug} .
""")
                en.append(f"{iri}\n    schema:text {lit(f'{VERBS[v][1]} {phrase[1]} {CONTEXTS[c][1]}.', 'en')} .\n")
                subjects = f"topic:{t_slug}, topic:{rng.choice(self.subtopics[t_slug])}"
                ed.append(f"{iri}\n    dcterms:subject {subjects} ;\n    schema:about {subjects} .\n")
            closing_ar = f"واتفق المشاركون على متابعة أعمال الاجتماع في {city[0]} وعرض نتائجه على اللجنة في دورتها المقبلة."
            closing_en = f"The participants agreed to follow up on the meeting's work in {city[1]} and to present its results to the commission at its next session."
            ar.append(f"""document:{doc}
    a unm:OutcomeDocument, schema:CreativeWork ;
    schema:name {lit(DOC_NAME[0], "ar")} ;
    schema:abstract {lit("خلص الاجتماع إلى مجموعة من التوصيات، أهمها ما يلي:", "ar")} ;
    schema:about meeting:{slug} ;
    unm:hasPoint {point_iris} ;
    schema:hasPart {point_iris} ;
    unm:closingStatement {lit(closing_ar, "ar")} .
""")
            en.append(f"""document:{doc}
    schema:name {lit(DOC_NAME[1], "en")} ;
    schema:abstract {lit("The meeting ended with a series of recommendations, the most important of which are:", "en")} .
""")
            tr.append(f"""document:{doc}
    schema:name
        {SEP.join(lit(DOC_NAME[k], LANGS[k]) for k in range(2, 6))} ;
    unm:closingStatement {lit(closing_en, "en")} .
""")
            for n, (t, c) in enumerate(points, 1):
                t_slug, phrase = THEMES[t]
                iri = f"point:{slug}-{n}"
                ar.append(f"""{iri}
    a unm:OutcomePoint, schema:CreativeWork ;
    schema:position {n} ;
    schema:text {lit(f"أكد المشاركون ضرورة الاستثمار في {phrase[0]} {CONTEXTS[c][0]}.", "ar")} ;
    schema:isPartOf document:{doc} .
""")
                tr.append(f"{iri}\n    schema:text {lit(f'The participants stressed the need to invest in {phrase[1]} {CONTEXTS[c][1]}.', 'en')} .\n")
                ed.append(f"{iri}\n    dcterms:subject topic:{t_slug} ;\n    schema:about topic:{t_slug} .\n")
        return {"source-ar": "\n".join(ar), "source-en": "\n".join(en),
                "translation": "\n".join(tr), "editorial": "\n".join(ed)}


def provenance_ttl(batches: int) -> str:
    """PROV-O description of the synthetic graphs, appended to data/provenance.ttl."""
    out = ["\n# ---------------------------------------------------------------------------\n"
           "# Synthetic graphs (bench/generate.py)\n"
           "# ---------------------------------------------------------------------------\n"]

    def graph(path, kind, en, ar, extra=""):
        out.append(f"""<graph/synthetic/{path}>
    a unm:{kind}, prov:Entity ;
    rdfs:label {lit(en, "en")} , {lit(ar, "ar")} ;
    dcterms:title {lit(en, "en")} , {lit(ar, "ar")}{extra} .
""")

    graph("places", "ReferenceGraph", "Synthetic venues", "أماكن اصطناعية")
    graph("organizations", "ReferenceGraph", "Synthetic national bodies", "هيئات وطنية اصطناعية")
    graph("topics", "EditorialGraph", "Synthetic narrower topics", "مواضيع فرعية اصطناعية")
    for b in range(1, batches + 1):
        for lang, name in (("ar", "العربية"), ("en", "English")):
            out.append(f"""webpage:synthetic-batch-{b:03d}-{lang}
    a schema:WebPage, prov:Entity ;
    schema:name {lit(f"Synthetic source pages, batch {b} ({name})", "en")} ;
    schema:inLanguage {lit(lang)} ;
    schema:publisher organization:escwa .
""")
        graph(f"batch-{b:03d}/source-ar", "SourceGraph", f"Synthetic batch {b}: Arabic source text", f"الدفعة الاصطناعية {b}: النص المصدر العربي",
              f" ;\n    prov:wasDerivedFrom webpage:synthetic-batch-{b:03d}-ar")
        graph(f"batch-{b:03d}/source-en", "SourceGraph", f"Synthetic batch {b}: English source text", f"الدفعة الاصطناعية {b}: النص المصدر الإنكليزي",
              f" ;\n    prov:wasDerivedFrom webpage:synthetic-batch-{b:03d}-en")
        graph(f"batch-{b:03d}/translation", "TranslationGraph", f"Synthetic batch {b}: translations", f"الدفعة الاصطناعية {b}: الترجمات",
              f" ;\n    prov:wasDerivedFrom <graph/synthetic/batch-{b:03d}/source-ar>, <graph/synthetic/batch-{b:03d}/source-en>")
        graph(f"batch-{b:03d}/editorial", "EditorialGraph", f"Synthetic batch {b}: editorial additions", f"الدفعة الاصطناعية {b}: إضافات تحريرية")
    return "\n".join(out)


def generate(out: Path, meetings: int, seed: int = 7, project: Path = PROJECT) -> Path:
    """Write the corpus to `out` (replaced if it exists); return `out`."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for folder in ("ontology", "shapes", "data", "catalog", "queries"):
        src = project / folder
        if src.is_dir():
            shutil.copytree(src, out / folder, ignore=shutil.ignore_patterns("*~", ".*"))
        else:
            (out / folder).mkdir()
    if meetings <= 0:
        return out
    corpus = Corpus(meetings, seed)
    synthetic = out / "data" / "synthetic"
    synthetic.mkdir()
    (synthetic / "places.ttl").write_text(corpus.places_ttl(), encoding="utf-8")
    (synthetic / "organizations.ttl").write_text(corpus.organizations_ttl(), encoding="utf-8")
    (synthetic / "topics.ttl").write_text(corpus.topics_ttl(), encoding="utf-8")
    batches = (meetings + BATCH - 1) // BATCH
    for b in range(1, batches + 1):
        first = (b - 1) * BATCH + 1
        files = corpus.batch(b, first, min(BATCH, meetings - first + 1))
        folder = synthetic / f"batch-{b:03d}"
        folder.mkdir()
        for name, text in files.items():
            (folder / f"{name}.ttl").write_text(text, encoding="utf-8")
    provenance = out / "data" / "provenance.ttl"
    text = provenance.read_text(encoding="utf-8")
    if "@prefix webpage:" not in text:
        text = "@prefix webpage:      <id/webpage/> .\n" + text
    provenance.write_text(text + provenance_ttl(batches), encoding="utf-8")
    return out


def count_triples(root: Path) -> int:
    import pyoxigraph as ox
    base = "https://w3id.org/un-meetings/"
    return sum(sum(1 for _ in ox.parse(path=p, format=ox.RdfFormat.TURTLE, base_iri=base))
               for folder in ("data", "ontology") for p in (root / folder).rglob("*.ttl"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.generate", description=__doc__.split("\n\n")[0])
    size = parser.add_mutually_exclusive_group(required=True)
    size.add_argument("--scale", choices=sorted(SCALES))
    size.add_argument("--meetings", type=int, help="number of synthetic meetings (0 = the real data only)")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    meetings = SCALES[args.scale] if args.scale else args.meetings
    generate(args.out, meetings, args.seed)
    print(f"{args.out}: {meetings} synthetic meetings, {count_triples(args.out)} triples (data + ontology)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

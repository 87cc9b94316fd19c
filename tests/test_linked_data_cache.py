"""The bounded per-release cache of documents and representations.

Dynamic server only: the in-process caches are the app's; nginx serves files.
"""
from server.lru import LRU


def test_lru_evicts_the_least_recently_used_beyond_its_cost():
    cache = LRU(10, cost=len)
    cache.get("a", lambda: "xxxx")
    cache.get("b", lambda: "yyyy")
    assert cache.get("a", lambda: "recomputed") == "xxxx"  # a is now the most recent
    cache.get("c", lambda: "zzzz")                          # 12 > 10: b goes
    assert cache.get("b", lambda: "again") == "again"
    assert cache.get("a", lambda: "recomputed") in ("xxxx", "recomputed")
    assert sum(len(cache.get(k, lambda: "")) for k in ()) == 0


def test_lru_with_second_request_keeps_a_key_from_its_second_request():
    cache = LRU(100, cost=len, second_request=True)
    computed = []

    def value(key):
        return lambda: computed.append(key) or key * 3

    for key in ("hot", "hot", "hot", "hot"):
        cache.get(key, value(key))
    assert computed == ["hot", "hot"]  # computed on the first two requests, kept from the second
    for n in range(50):  # a crawl: every key once
        cache.get(f"page{n}", value(f"page{n}"))
    assert len(cache) == 1 and cache.get("hot", value("again")) == "hothothot"


def test_lru_never_stores_none_or_what_is_too_big():
    cache = LRU(5, cost=len)
    assert cache.get("none", lambda: None) is None
    assert cache.get("none", lambda: "v") == "v"
    assert cache.get("big", lambda: "0123456789") == "0123456789"
    assert cache.get("big", lambda: "fresh") == "fresh"



def _kept_documents(client) -> dict[str, int]:
    from server import linked_data
    with client.application.test_request_context("/"):
        return {iri: cost for iri, (_, cost) in linked_data._cache("documents")._items.items()}


def test_the_documents_kept_per_worker_are_bounded_by_their_triples(built, settings, monkeypatch):
    """A crawler visiting every page must not grow a worker without bound: at 1M triples a
    document held in memory costs ~110 KB, so the cache counts triples, not documents."""
    from rdflib import Graph

    from server import linked_data
    from server.app import create_app

    escwa, ece = settings.base + "id/organization/escwa", settings.base + "id/organization/ece"
    client = create_app(settings).test_client()
    turtle = client.get("/doc/organization/escwa.ttl")
    assert turtle.status_code == 200
    assert _kept_documents(client) == {}  # asked once: not kept (a crawl passes through)
    assert client.get("/doc/organization/escwa.jsonld").status_code == 200
    escwa_triples = len(Graph().parse(data=turtle.get_data(as_text=True), format="turtle"))
    assert _kept_documents(client) == {escwa: escwa_triples}  # its cost: the triples it holds

    monkeypatch.setattr(linked_data, "MAX_DOCUMENT_TRIPLES", escwa_triples + 5)  # room for one of them
    client = create_app(settings).test_client()
    for document in ("escwa", "escwa", "ece", "ece"):
        assert client.get(f"/doc/organization/{document}.ttl").status_code == 200
    kept = _kept_documents(client)
    assert escwa not in kept and ece in kept  # the older one made room
    assert sum(kept.values()) <= escwa_triples + 5


def test_the_labels_of_mentioned_things_kept_per_release_give_the_same_documents(built, settings):
    """Documents take the labels of what they mention (commissions, topics, types) from a cache
    shared by the documents of a release: every document is the same with it, cold or warm, and
    with a cache too small to hold them all; what it keeps for a thing is every label statement
    of that thing."""
    import pyoxigraph as ox

    from server import documents

    store = ox.Store.read_only(str(built.path / "store"))
    base, limit = settings.base, settings.max_inbound_per_property
    things = documents.things(store, base)
    assert len(things) > 20
    expected = {iri: documents.describe(store, iri, base, limit) for iri in things}
    shared, tiny = LRU(20_000, lambda kept: len(kept) + 1), LRU(5, lambda kept: len(kept) + 1)
    for _ in range(2):  # the second pass finds every label in the cache
        for iri in things:
            assert documents.describe(store, iri, base, limit, shared) == expected[iri], iri
            assert documents.describe(store, iri, base, limit, tiny) == expected[iri], iri

    escwa = ox.NamedNode(base + "id/organization/escwa")
    kept = shared.get(escwa, lambda: None)
    names = {t for t in store.quads_for_pattern(escwa, None, None) if t.predicate.value in documents.LABEL_PROPERTIES}
    assert kept is not None and len(names) >= 6
    assert {(t.subject, t.predicate, t.object) for t in kept} == {(q.subject, q.predicate, q.object) for q in names}


def test_a_page_takes_its_things_labels_from_its_document(built, settings):
    """A document made by `describe` holds every label statement of the things in it, so its page
    asks the store only for its properties' labels: every page of the real data, in every
    language, is the same as when every label is asked of the store."""
    import dataclasses

    from server import documents, html_pages, linked_data
    from server.app import create_app

    app = create_app(settings)
    with app.test_request_context("/"):
        pub = linked_data.publication()
        things = documents.things(pub.store, settings.base)
        for iri in things:
            rest = iri[len(settings.base) + 3:]
            target = linked_data.Target(iri, "/doc/" + rest, settings.base + "doc/" + rest, "thing")
            document = linked_data.load_document(target)
            assert document.labelled
            unlabelled = dataclasses.replace(document, labelled=False)
            for lang in ("ar", "zh", "en", "fr", "ru", "es"):
                page = html_pages.render(target, document, lang, True)
                assert page == html_pages.render(target, unlabelled, lang, True), (iri, lang)


def test_jsonld_nodes_kept_per_release_give_the_same_bytes(built, settings):
    """Compacted JSON-LD is made node by node, the nodes of mentioned things kept from one
    document to the next: every document of the real data (the ontology and the shapes, whose
    RDF lists span nodes, too) is byte for byte pyld's compaction of the whole document, cold and
    warm, with a cache that holds them all and with one too small to."""
    import pyoxigraph as ox

    from server import documents, jsonld
    from server.release import current_release

    store = ox.Store.read_only(str(built.path / "store"))
    base, loader = settings.base, jsonld.Loader(settings.base)
    docs = [documents.describe(store, iri, base, settings.max_inbound_per_property)
            for iri in documents.things(store, base)]
    docs += [documents.graph_document(store, base + "ontology"),
             documents.file_document(current_release(settings.releases).file("shapes.ttl"), base + "shapes", base)]
    shared = LRU(20_000, lambda node: len(node) + 1, second_request=True)
    tiny = LRU(3, lambda node: 1, second_request=True)
    for _ in range(3):  # kept from the second request on, then found
        for document in docs:
            statements = list(document.rdf_statements(base))
            expected = jsonld.dumps(jsonld.compacted(jsonld.expanded(statements), loader))
            for known in (shared, tiny, None):
                assert jsonld.dumps(jsonld.compacted_statements(statements, loader, known)) == expected, document.iri
    escwa = ox.NamedNode(base + "id/organization/escwa")
    assert any(key[0].subject == escwa for key in shared._items), "a commission's node is kept"

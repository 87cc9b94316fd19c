"""The ``lodpub`` command: validate the sources, build a release, serve it."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import config, release
from .child_process import ChildEnded, run_in_child
from .loading import SourceError
from .progress import Progress
from .validation import ValidatedSources, format_report, parse_sources, validate_parsed, validate_sources
from .validation_engines import ENGINES, EngineError


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    settings = config.from_environment().with_overrides(
        root=Path(args.root) if getattr(args, "root", None) else None,
        releases=Path(args.releases) if getattr(args, "releases", None) else None,
        base=getattr(args, "base", None),
        validation_engine=getattr(args, "engine", None),
    )
    if getattr(args, "root", None) and not getattr(args, "releases", None):
        settings = settings.with_overrides(releases=settings.root / "releases")
    try:
        return args.run(settings, args)
    except KeyboardInterrupt:  # (a build leaves nothing behind: server/release.py)
        print("\ninterrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lodpub", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    for name, run, help_text in [
        ("validate", _validate, "parse ontology, shapes and data and validate the data with SHACL"),
        ("build", _build, "validate, then write a release folder (dumps, checksums, store)"),
        ("serve", _serve, "build if needed, then serve the current release over HTTP"),
        ("export-static", _export_static, "write the current release's Linked Data interface as files, with "
                                          "nginx rules, for a static host or CDN (docs/static-export.md)"),
        ("publish", _publish, "validate, build, load the release into the remote store (LODPUB_STORE_URL) "
                              "and switch its readers to it"),
    ]:
        command = commands.add_parser(name, help=help_text, description=help_text)
        command.add_argument("--root", help="folder holding ontology/, shapes/ and data/ (default: this project)")
        command.add_argument("--base", help="base of the canonical IRIs (default: LODPUB_BASE or https://w3id.org/un-meetings/)")
        command.add_argument("--releases", help="folder of release folders (default: ROOT/releases)")
        command.set_defaults(run=run)
        if name in ("validate", "build", "serve"):
            command.add_argument("--engine", choices=ENGINES,
                                 help="SHACL engine (default: LODPUB_VALIDATION_ENGINE, else auto: pyshacl-turbo "
                                      "when the shapes use only constructs it is checked on, else pySHACL)")
        if name == "serve":
            command.add_argument("--host")
            command.add_argument("--port", type=int)
            command.add_argument("--workers", type=int)
            command.add_argument("--no-build", action="store_true",
                                 help="serve the current release as it is, without validating the sources again")
        if name == "export-static":
            command.add_argument("dir", help="the folder to write (an earlier export there is replaced)")
            command.add_argument("--sparql-url", help="where the site's /sparql is proxied (the store or a front end)")
            command.add_argument("--site-url", default="http://localhost",
                                 help="the site's public address, for the sitemap, robots.txt and canonical links")
    selftest = commands.add_parser("selftest", help="check a deployment from outside, as harvesters and SPARQL "
                                   "clients would; print one line per check", description=SELFTEST_HELP)
    selftest.add_argument("url", help="the deployment's address, e.g. https://data.example.org/")
    selftest.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for each answer (default 30)")
    selftest.set_defaults(run=_selftest)
    return parser


SELFTEST_HELP = ("Check a deployment from outside: the landing page, the 303s and formats of the example "
                 "resources, the JSON-LD context, the SPARQL protocol, the dataset description, the dumps and "
                 "their checksums, the sitemap and /health/ready. Exit status 1 if any check fails.")


def _selftest(settings: config.Settings, args: argparse.Namespace) -> int:
    from .selftest import run
    return run(args.url, timeout=args.timeout)


def _checked_sources(settings: config.Settings, progress: Progress | None = None) -> ValidatedSources | None:
    """Validated sources, or None after printing why they are not publishable."""
    started = time.perf_counter()
    try:
        sources = _reported(validate_sources(settings, progress=progress), started)
    except (SourceError, EngineError) as error:
        print(f"error: {error}", file=sys.stderr)
        return None
    return sources if sources.report.conforms else None


def _reported(sources: ValidatedSources, started: float) -> ValidatedSources:
    """The sources, after printing the verdict on them (and the report, if it has results)."""
    triples = sum(len(f.quads) for f in sources.data + sources.ontology)
    seconds = time.perf_counter() - started
    if not sources.report.conforms:
        print(format_report(sources.report), file=sys.stderr)
        print(f"\n{triples} triples in {len(sources.data)} data files: NOT publishable ({seconds:.2f}s, engine: {sources.report.engine})", file=sys.stderr)
        return sources
    if sources.report.violations:
        print(format_report(sources.report))
    print(f"{triples} triples in {len(sources.data)} data files conform to "
          f"{len(sources.shapes)} shapes file(s) ({seconds:.2f}s, engine: {sources.report.engine})")
    return sources


def _validate(settings: config.Settings, args: argparse.Namespace) -> int:
    with Progress.for_stderr() as progress:
        return 0 if _checked_sources(settings, progress) else 1


def _build(settings: config.Settings, args: argparse.Namespace) -> int:
    with Progress.for_stderr() as progress:
        return 0 if rebuild(settings, progress) else 1


def rebuild(settings: config.Settings, progress: Progress | None = None) -> bool:
    """Validate and build (the release written while the sources are validated: server/release.py);
    on any failure print why and leave the current release alone. `progress` shows the phases
    (parse, validate, dumps and store, ...) on stderr."""
    started = time.perf_counter()
    try:
        parsed = parse_sources(settings, progress)
        built = release.build(parsed, settings, progress=progress, validate=lambda: _reported(
            validate_parsed(parsed, settings, progress=progress), started))
    except (SourceError, EngineError) as error:
        print(f"error: {error}", file=sys.stderr)
        return False
    except release.NotPublishable:  # its report is printed
        return False
    print(f"release {built.version} at {built.path} ({built.manifest['quads']} quads, "
          f"{time.perf_counter() - started:.2f}s); {settings.releases / release.CURRENT} → {built.version}")
    return True


def _publish(settings: config.Settings, args: argparse.Namespace) -> int:
    if not settings.remote_store:
        print("error: publish loads a remote store: set LODPUB_STORE_URL (and LODPUB_STORE_UPDATE_URL, "
              "LODPUB_STORE_GSP_URL, LODPUB_STORE_USER, LODPUB_STORE_PASSWORD as the store needs)", file=sys.stderr)
        return 2
    with Progress.for_stderr() as progress:
        if not rebuild(settings, progress):
            return 1
    from .publishing import PublishError, publish
    from .stores import StoreQueryError, StoreUnavailable
    started = time.perf_counter()
    try:
        publish(settings, release.current_release(settings.releases))
    except (PublishError, StoreQueryError, StoreUnavailable) as error:
        print(f"error: not published: {error}", file=sys.stderr)
        return 1
    print(f"published in {time.perf_counter() - started:.2f}s to {settings.store_url}")
    return 0


def _export_static(settings: config.Settings, args: argparse.Namespace) -> int:
    from .static_export import export_static
    started = time.perf_counter()
    export = export_static(settings, Path(args.dir), site_url=args.site_url, sparql_url=args.sparql_url)
    print(f"release {export.version}: {len(export.responses)} responses, {len(export.files)} files in "
          f"{args.dir} ({time.perf_counter() - started:.1f}s); nginx rules in {Path(args.dir) / 'nginx'}")
    return 0


def _serve(settings: config.Settings, args: argparse.Namespace) -> int:
    if settings.remote_store:
        # the store names the release to serve (`lodpub publish` loads and switches it)
        from .serving import serve
        return serve(settings.with_overrides(host=args.host, port=args.port, workers=args.workers))
    # The build and the release check run in children: this process becomes gunicorn's master,
    # which would otherwise keep their memory for good and hand a copy to every worker.
    try:
        if not args.no_build and run_in_child(_build, settings, args) != 0:
            print("error: not serving: the data is not publishable (see the report above)", file=sys.stderr)
            return 1
        run_in_child(_verify_current, settings.releases)
    except (release.ReleaseError, ChildEnded) as error:
        print(f"error: not serving: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted: not serving", file=sys.stderr)
        return 130
    from .serving import serve
    return serve(settings.with_overrides(host=args.host, port=args.port, workers=args.workers))


def _verify_current(releases: Path) -> None:
    # counting the store's quads fills a RocksDB handle's caches (~40 MiB at 1M triples)
    release.verify_release(release.current_release(releases))


if __name__ == "__main__":
    sys.exit(main())

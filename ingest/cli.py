"""`newsdesk-ingest PATH_OR_URL... [--data-dir DIR]`: ingest files, folders, pages and feeds
into the store; `newsdesk-ingest --delete ID_OR_URL` removes an article.

With the embedded store, a running newsdesk server owns the store directory: the articles
are then sent to that server (which answers from them at once) instead of being written
here. Another ingest that holds the directory is waited for. URLs are fetched and read here
(`ingest.web`) either way, so they take the same two paths as files."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from assistant.errors import EmbeddingError, StoreBusyError, StoreError
from assistant.index import store_owner
from assistant.settings import Settings
from assistant.types import IngestReport
from ingest.web import WebResult, is_url, read_urls

if TYPE_CHECKING:
    from ingest.pipeline import Ingestor
    from ingest.remote import RemoteIngestor


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="newsdesk-ingest",
        description="Ingest news articles (.txt .md .html .json .jsonl; folders recursively) "
                    "into the newsdesk store.",
    )
    parser.add_argument("paths", nargs="*", metavar="PATH_OR_URL",
                        help="files or folders to ingest, or http(s) URLs of pages or feeds "
                             "(RSS, Atom, JSON Feed)")
    parser.add_argument("--delete", action="append", default=[], metavar="ID_OR_URL",
                        help="remove the article with this id or URL and all its chunks "
                             "(repeatable)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="store directory (default: NEWSDESK_DATA_DIR or ./.newsdesk)")
    parser.add_argument("--reindex", action="store_true",
                        help="rebuild the keyword index from the store (derived data: the "
                             "server also rebuilds it by itself when it cannot trust it)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI: exit 0 when every file was ingested, 1 when any failed, 2 on a store error."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.paths and not args.delete and not args.reindex:
        parser.error("give files, folders or URLs to ingest, --delete ID_OR_URL or --reindex")
    if args.reindex and (args.paths or args.delete):
        parser.error("--reindex runs on its own")
    overrides = {"data_dir": args.data_dir} if args.data_dir else {}
    settings = Settings(**overrides)
    out = Console(stderr=False, highlight=False)
    err = Console(stderr=True, highlight=False)
    logging.basicConfig(level=logging.WARNING)
    if args.reindex:
        return _reindex(settings, out, err)

    urls = [p for p in args.paths if is_url(p)]
    paths = [Path(p) for p in args.paths if not is_url(p)]
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[current]}"), TimeElapsedColumn(),
        console=err, disable=args.quiet, transient=True,
    )
    web = WebResult()
    if urls:
        with progress:
            task = progress.add_task("Fetching", total=len(urls), current="")
            web = read_urls(urls, settings, trusted=True,
                            on_url=lambda u: progress.update(task, advance=1, current=u[-40:]))
    ingestor: Ingestor | RemoteIngestor | None = None
    report = IngestReport()
    deleted: list[tuple[str, list[str]]] = []
    try:
        ingestor = _open(settings, err)
        for target in args.delete:
            deleted.append((target, ingestor.delete(target)))
        with progress:
            task = progress.add_task("Ingesting", total=None, current="")
            if paths:
                report = ingestor.ingest(
                    paths,
                    on_total=lambda n: progress.update(task, total=n),
                    on_file=lambda p: progress.update(task, advance=1,
                                                      current=Path(p).name[:40]),
                )
            if urls:
                report.merge(ingestor.ingest_raw(web.raws()))
            store = getattr(ingestor, "store", None)  # a local ingestor's (not a server's)
            if store is not None and (report.chunks_written or deleted):
                # This process wrote the store: bring the keyword index beside it up to
                # date now (in proportion to what was written), so the server that opens
                # the store next starts without rebuilding it from the whole archive.
                progress.update(task, description="Indexing keywords", current="")
                store.keywords()
    except (StoreError, EmbeddingError) as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        return 2
    finally:
        if ingestor is not None:
            ingestor.close()

    missing = 0
    for target, ids in deleted:
        if ids:
            out.print(f"deleted: {escape(target)} ({', '.join(ids)})", soft_wrap=True)
        else:
            missing += 1
            err.print(f"[red]failed:[/red] {escape(target)}: no such article", soft_wrap=True)
    for note in web.notes:
        err.print(f"[yellow]fallback:[/yellow] {escape(note)}", soft_wrap=True)
    for warning in web.warnings:
        err.print(f"[yellow]warning:[/yellow] {escape(warning)}", soft_wrap=True)
    if not args.paths:
        return 1 if missing else 0
    for error in report.errors:
        err.print(f"[red]failed:[/red] {escape(str(error))}", soft_wrap=True)
    table = Table(title="newsdesk-ingest")
    for column in ("added", "updated", "unchanged", "failed", "chunks written"):
        table.add_column(column, justify="right")
    c = report.counts
    table.add_row(str(c["added"]), str(c["updated"]), str(c["unchanged"]), str(c["failed"]),
                  str(report.chunks_written))
    if c["duplicate"]:
        table.caption = (f"{c['duplicate']} near-duplicate(s) of stored stories: kept as "
                         "\"also reported by\" on them, not indexed again")
    out.print(table)
    if report.repaired:
        out.print(f"Repaired {report.repaired} article(s) left half-written by an earlier run.")
    return 0 if report.ok and not missing else 1


def _reindex(settings: Settings, out: Console, err: Console) -> int:
    """Rebuild the keyword index of the store this run opens (not through a server: the
    server holds its index)."""
    from assistant.index.lexical import IndexBusyError, KeywordIndex
    from ingest.pipeline import Ingestor

    owner = None if settings.chroma_host else store_owner.current_owner(settings.data_dir)
    if owner is not None and owner.role == "server":
        err.print(f"[red]error:[/red] {escape(owner.describe())} serves {settings.data_dir}: "
                  "stop it first (it rebuilds the index by itself when the index is lost)",
                  soft_wrap=True)
        return 2
    ingestor = Ingestor(settings)
    where = ingestor.store.keyword_dir()
    try:
        index = KeywordIndex(where)
        with err.status("Rebuilding the keyword index from the store..."):
            index.rebuild(ingestor.store)
    except IndexBusyError:
        err.print("[red]error:[/red] a running newsdesk server holds the keyword index in "
                  f"{escape(str(where))}: stop it first", soft_wrap=True)
        return 2
    except (StoreError, EmbeddingError) as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        return 2
    finally:
        ingestor.close()
    articles, chunks = index.counts()
    out.print(f"Keyword index rebuilt: {articles} articles, {chunks} chunks "
              f"({escape(str(where))}).")
    return 0


def _open(settings: Settings, err: Console) -> Ingestor | RemoteIngestor:
    """Where this run writes: the store itself, or the server that owns it."""
    from ingest.pipeline import Ingestor  # loads the model: after argument errors are reported
    from ingest.remote import RemoteIngestor

    def say(message: str) -> None:
        err.print(escape(message), soft_wrap=True)

    if settings.chroma_host:  # a Chroma server takes every writer
        with err.status("Loading the embedding model and connecting to Chroma..."):
            return Ingestor(settings)
    while True:
        owner = store_owner.current_owner(settings.data_dir)
        if owner is not None and owner.role == "server" and owner.pid != os.getpid():
            remote = RemoteIngestor(settings, owner, on_wait=say)
            say(f"Sending the articles to the newsdesk server at {remote.url}, which owns "
                f"{settings.data_dir}.")
            return remote
        try:
            lock = store_owner.acquire(
                settings.data_dir, wait=True,
                on_wait=lambda o: say(f"Waiting for {o.describe() if o else 'another process'}"
                                      f" to finish with {settings.data_dir}..."))
        except StoreBusyError:
            continue  # a server took the directory meanwhile: send to it
        try:
            with err.status("Loading the embedding model and opening the store..."):
                return Ingestor(settings)
        finally:
            lock.release()  # the ingestor's store holds the directory now


if __name__ == "__main__":
    sys.exit(main())

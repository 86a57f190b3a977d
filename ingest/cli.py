"""`newsdesk-ingest PATH... [--data-dir DIR]`: ingest files and folders into the store."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from assistant.embeddings import EmbeddingError
from assistant.settings import Settings
from assistant.store import StoreError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="newsdesk-ingest",
        description="Ingest news articles (.txt .md .html .json .jsonl; folders recursively) "
                    "into the newsdesk store.",
    )
    parser.add_argument("paths", nargs="+", type=Path, help="files or folders to ingest")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="store directory (default: NEWSDESK_DATA_DIR or ./.newsdesk)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI: exit 0 when every file was ingested, 1 when any failed, 2 on a store error."""
    args = build_parser().parse_args(argv)
    overrides = {"data_dir": args.data_dir} if args.data_dir else {}
    settings = Settings(**overrides)
    out = Console(stderr=False, highlight=False)
    err = Console(stderr=True, highlight=False)
    logging.basicConfig(level=logging.WARNING)

    from ingest.pipeline import Ingestor  # loads the model: after argument errors are reported

    try:
        with err.status("Loading the embedding model and opening the store..."):
            ingestor = Ingestor(settings)
        progress = Progress(
            TextColumn("[bold]Ingesting"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[current]}"), TimeElapsedColumn(),
            console=err, disable=args.quiet, transient=True,
        )
        with progress:
            task = progress.add_task("ingest", total=None, current="")
            report = ingestor.ingest(
                args.paths,
                on_total=lambda n: progress.update(task, total=n),
                on_file=lambda p: progress.update(task, advance=1, current=Path(p).name[:40]),
            )
    except (StoreError, EmbeddingError) as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        return 2

    for error in report.errors:
        err.print(f"[red]failed:[/red] {escape(str(error))}", soft_wrap=True)
    table = Table(title="newsdesk-ingest")
    for column in ("added", "updated", "unchanged", "failed", "chunks written"):
        table.add_column(column, justify="right")
    c = report.counts
    table.add_row(str(c["added"]), str(c["updated"]), str(c["unchanged"]), str(c["failed"]),
                  str(report.chunks_written))
    out.print(table)
    if report.repaired:
        out.print(f"Repaired {report.repaired} article(s) left half-written by an earlier run.")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())

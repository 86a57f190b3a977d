"""`newsdesk-watch FEED_OR_FILE... --every 15m`: poll feeds (and files) and ingest what is new.

A feed is polled with a conditional request (ETag / Last-Modified): an unchanged feed costs
that one request and nothing else (no model, no store). Only items that are new or changed
since the last poll are fetched and ingested, through the same path as `newsdesk-ingest`
(the store itself, or the server that owns it, which then answers from them at once). A
feed that fails is retried later, waiting twice as long after each failure (at most
`MAX_BACKOFF_S`); the others go on. One log line per source and poll.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import re
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from assistant.errors import EmbeddingError, IngestError, StoreError
from assistant.settings import Settings
from assistant.types import IngestReport, RawArticle
from ingest.web import (
    FeedItem,
    Fetcher,
    WebResult,
    is_url,
    kind_of,
    page_article,
    parse_feed,
    read_items,
)

log = logging.getLogger("newsdesk.watch")

MAX_BACKOFF_S = 6 * 3600.0
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$", re.IGNORECASE)
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """Seconds in `90`, `30s`, `15m`, `2h` or `1d`; ValueError otherwise."""
    match = _DURATION.match(text)
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"not a duration: {text!r} (e.g. 30s, 15m, 2h)")
    return float(match.group(1)) * _UNIT_S[match.group(2).lower()]


class Writer:
    """Where a poll's articles go: opened only when there is something to write."""

    def write_raw(self, raws: Sequence[RawArticle | IngestError]) -> IngestReport:
        raise NotImplementedError

    def write_paths(self, paths: Sequence[Path]) -> IngestReport:
        raise NotImplementedError


@dataclass
class Poll:
    """One source's outcome in one poll: the line the watcher logs."""

    source: str
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    requests: int = 0
    error: str = ""
    retry_in_s: float = 0.0
    errors: list[IngestError] = field(default_factory=list)

    def line(self) -> str:
        if self.error:
            return (f"{self.source}: failed: {self.error} (next try in "
                    f"{_human(self.retry_in_s)})")
        return (f"{self.source}: {self.new} new, {self.updated} updated, {self.unchanged} "
                f"unchanged, {self.failed} failed ({self.requests} request"
                f"{'' if self.requests == 1 else 's'})")


@dataclass
class _Source:
    target: str
    etag: str = ""
    last_modified: str = ""
    # Per item key, a fingerprint of what the feed said about it at the last poll.
    items: dict[str, str] = field(default_factory=dict)
    failures: int = 0
    due: float = 0.0


class Watcher:
    """Polls feeds, pages and files; `poll` once, or `run` until stopped."""

    def __init__(self, settings: Settings, sources: Sequence[str], writer: Writer,
                 every_s: float, fetcher: Fetcher | None = None,
                 on_poll: Callable[[Poll], None] | None = None) -> None:
        self.settings = settings
        self.writer = writer
        self.every_s = every_s
        # The operator's own list: any address may be fetched (no address guard).
        self.fetcher = fetcher or Fetcher(settings, trusted=True)
        self.on_poll = on_poll or _log
        self.sources = [_Source(s) for s in sources]

    def close(self) -> None:
        self.fetcher.close()

    def run(self, stop: threading.Event) -> None:
        """Poll every source when it is due until `stop` is set."""
        while not stop.is_set():
            self.poll()
            now = time.monotonic()
            wait = min((s.due for s in self.sources), default=now + self.every_s) - now
            stop.wait(max(wait, 1.0))

    def poll(self, force: bool = False) -> list[Poll]:
        """Poll the sources that are due (all of them with `force`); one `Poll` each."""
        now = time.monotonic()
        results = []
        for source in self.sources:
            if not force and source.due > now:
                continue
            before = self.fetcher.requests
            poll_one = self._poll_url if is_url(source.target) else self._poll_path
            result = poll_one(source)
            result.requests = self.fetcher.requests - before
            if result.error:
                source.failures += 1
                result.retry_in_s = min(self.every_s * 2 ** source.failures, MAX_BACKOFF_S)
                source.due = time.monotonic() + result.retry_in_s
            else:
                source.failures = 0
                source.due = time.monotonic() + self.every_s
            self.on_poll(result)
            results.append(result)
        return results

    def _poll_url(self, source: _Source) -> Poll:
        poll = Poll(source.target)
        try:
            fetched = self.fetcher.get(source.target, source.etag, source.last_modified)
            if fetched.not_modified:
                poll.unchanged = len(source.items) or 1
                return poll
            kind = kind_of(fetched)
            if kind == "page":
                key = _fingerprint(fetched.body.decode("utf-8", "replace"))
                if source.items.get(source.target) == key:
                    poll.unchanged = 1
                else:
                    self._write(poll, [page_article(
                        fetched, min_words=self.settings.min_page_words)])
                    source.items[source.target] = key
            else:
                feed = parse_feed(fetched, kind, self.settings.feed_max_items)
                for warning in feed.warnings:
                    log.warning("%s: %s", source.target, warning)
                self._poll_items(source, feed.items, poll)
        except IngestError as exc:
            poll.error = exc.reason
            return poll
        except (StoreError, EmbeddingError) as exc:
            poll.error = f"cannot write: {exc}"
            return poll
        # Only a poll that went through remembers the validators: a failed write is retried.
        source.etag, source.last_modified = fetched.etag, fetched.last_modified
        return poll

    def _poll_items(self, source: _Source, items: list[FeedItem], poll: Poll) -> None:
        fresh: list[FeedItem] = []
        prints = {}
        for item in items:
            prints[item.key] = _fingerprint(item.link, item.title, item.text, item.published)
            if source.items.get(item.key) != prints[item.key]:
                fresh.append(item)
        poll.unchanged += len(items) - len(fresh)
        if fresh:
            result = WebResult()
            with ThreadPoolExecutor(4, thread_name_prefix="newsdesk-watch") as pool:
                read_items(fresh, self.fetcher, result, pool)
            self._write(poll, result.raws())
        # Items that failed to be read or written are tried again at the next poll.
        failed = {e.location for e in poll.errors}
        retry = {item.key for item in fresh if item.location in failed}
        source.items = {key: value for key, value in prints.items() if key not in retry}

    def _poll_path(self, source: _Source) -> Poll:
        poll = Poll(source.target)
        try:
            report = self.writer.write_paths([Path(source.target)])
        except (StoreError, EmbeddingError) as exc:
            poll.error = f"cannot write: {exc}"
            return poll
        _count(poll, report)
        return poll

    def _write(self, poll: Poll, raws: Sequence[RawArticle | IngestError]) -> None:
        _count(poll, self.writer.write_raw(raws))


def _log(poll: Poll) -> None:
    log.info("%s", poll.line())
    for error in poll.errors:
        log.warning("failed: %s", error)


def _count(poll: Poll, report: IngestReport) -> None:
    c = report.counts
    poll.new += c["added"]
    poll.updated += c["updated"]
    poll.unchanged += c["unchanged"] + c["duplicate"]
    poll.failed += c["failed"]
    poll.errors.extend(report.errors)


def _fingerprint(*parts: str) -> str:
    return hashlib.sha1("\x1f".join(parts).encode("utf-8")).hexdigest()


def _human(seconds: float) -> str:
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


class IngestorWriter(Writer):
    """Writes through an ingestor this process holds; `writing(work)` runs `work(ingestor)`
    (the server passes its own, which takes its one-writer lock)."""

    def __init__(self, writing: Callable) -> None:  # type: ignore[type-arg]
        self.writing = writing

    def write_raw(self, raws: Sequence[RawArticle | IngestError]) -> IngestReport:
        return self.writing(lambda ingestor: ingestor.ingest_raw(raws))

    def write_paths(self, paths: Sequence[Path]) -> IngestReport:
        return self.writing(lambda ingestor: ingestor.ingest(paths))


class CliWriter(Writer):
    """`newsdesk-ingest`'s two paths: the store itself, or the server that owns it; opened
    for each write and closed after, so the store is free between polls."""

    def __init__(self, settings: Settings, say: Callable[[str], None]) -> None:
        self.settings = settings
        self.say = say

    def write_raw(self, raws: Sequence[RawArticle | IngestError]) -> IngestReport:
        return self._with(lambda ingestor: ingestor.ingest_raw(raws))

    def write_paths(self, paths: Sequence[Path]) -> IngestReport:
        return self._with(lambda ingestor: ingestor.ingest(paths))

    def _with(self, work: Callable) -> IngestReport:  # type: ignore[type-arg]
        from rich.console import Console

        from ingest.cli import _open

        ingestor = _open(self.settings, Console(stderr=True, quiet=True))
        try:
            return work(ingestor)
        finally:
            ingestor.close()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="newsdesk-watch",
        description="Poll feeds (RSS, Atom, JSON Feed), pages and files, and ingest what is "
                    "new or changed; a running newsdesk server answers from it at once.")
    parser.add_argument("sources", nargs="+", metavar="FEED_OR_FILE",
                        help="feed or page URLs, files or folders")
    parser.add_argument("--every", default="15m", type=parse_duration,
                        help="how often to poll: 30s, 15m, 2h (default 15m)")
    parser.add_argument("--once", action="store_true", help="poll once and exit")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="store directory (default: NEWSDESK_DATA_DIR or ./.newsdesk)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Exit 0 when stopped (Ctrl-C, SIGTERM) or, with --once, when every source was read."""
    import signal

    args = build_parser().parse_args(argv)
    settings = Settings(**({"data_dir": args.data_dir} if args.data_dir else {}))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s",
                        datefmt="%Y-%m-%dT%H:%M:%S")
    watcher = Watcher(settings, args.sources, CliWriter(settings, log.info), args.every)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        if args.once:
            return 1 if any(p.error or p.failed for p in watcher.poll(force=True)) else 0
        watcher.run(stop)
    except KeyboardInterrupt:
        pass
    finally:
        watcher.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

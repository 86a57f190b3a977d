"""Ingest through the running server that owns the store directory.

A newsdesk server owns its embedded store (`assistant.index.store_owner`): another process must not
write there. So `newsdesk-ingest` reads, checks and cleans nothing itself beyond reading the
files, and sends the articles it read to the server's local ingest route, in batches; the
server chunks, embeds and commits them with the same code as a direct ingest, and answers
from them at once. Files are reported exactly as a direct ingest reports them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path

import httpx

from assistant.errors import IngestError, StoreError
from assistant.index.store_owner import LOCAL_DELETE_ROUTE, LOCAL_INGEST_ROUTE, Owner, current_owner
from assistant.settings import Settings
from assistant.types import RawArticle
from ingest.pipeline import IngestReport, discover
from ingest.readers import read_file

# A batch is sent when it holds this many articles or this many bytes of JSON.
BATCH_ARTICLES = 100
BATCH_BYTES = 800_000
# How long to wait for a server that is starting (it names its URL once it listens).
START_WAIT_S = 120.0


class ServerGone(StoreError):
    """The owning server stopped answering in the middle of an ingest."""


class RemoteIngestor:
    """Sends articles to the server that owns the store; `ingest` reports like `Ingestor`."""

    def __init__(self, settings: Settings, owner: Owner,
                 on_wait: Callable[[str], None] | None = None) -> None:
        self.settings = settings
        self.owner = _started(settings.data_dir, owner, on_wait)
        self.client = httpx.Client(
            base_url=self.owner.url,
            headers={"Authorization": f"Bearer {self.owner.token}"},
            # Embedding a batch on a busy server takes a while; connecting does not.
            timeout=httpx.Timeout(600.0, connect=10.0),
        )

    @property
    def url(self) -> str:
        return self.owner.url

    def ingest(self, paths: Sequence[Path | str],
               on_file: Callable[[Path | str], None] | None = None,
               on_total: Callable[[int], None] | None = None) -> IngestReport:
        """Read files and folders here, ingest their articles on the server."""
        report = IngestReport()
        found = list(discover((Path(p) for p in paths), exclude=self.settings.data_dir))
        if on_total:
            on_total(len(found))
        done_files: list[Path | str] = []
        batches = _Batches(lambda batch: self._send(batch, report))
        for item, raws in self._read(found, report):
            for raw in raws:
                batches.add(raw)
            done_files.append(item)
            if batches.empty:
                _progress(on_file, done_files)
        batches.flush()
        _progress(on_file, done_files)
        return report

    def ingest_raw(self, raws: Sequence[RawArticle | IngestError]) -> IngestReport:
        """Ingest articles read here (from URLs) on the server; errors pass through."""
        report = IngestReport()
        batches = _Batches(lambda batch: self._send(batch, report))
        for raw in raws:
            if isinstance(raw, IngestError):
                report._fail(raw)
            else:
                batches.add(raw)
        batches.flush()
        return report

    def delete(self, target: str) -> list[str]:
        """Remove the article with this id or URL on the server; the ids removed."""
        try:
            response = self.client.post(LOCAL_DELETE_ROUTE, json={"target": target})
        except httpx.HTTPError as exc:
            raise ServerGone(f"the newsdesk server at {self.url} stopped answering "
                             f"({type(exc).__name__}: {exc})") from exc
        if response.status_code != 200:
            raise ServerGone(f"the newsdesk server at {self.url} refused the deletion "
                             f"(HTTP {response.status_code}: {_detail(response)})")
        return [str(aid) for aid in response.json()["deleted"]]

    def close(self) -> None:
        self.client.close()

    def _read(self, found: list[Path | IngestError],
              report: IngestReport) -> Iterator[tuple[Path | str, list[RawArticle]]]:
        for item in found:
            if isinstance(item, IngestError):
                report._fail(item)
                yield item.location, []
                continue
            try:
                result = read_file(item, self.settings.max_article_bytes)
            except IngestError as exc:
                report._fail(exc)
                yield item, []
                continue
            for error in result.errors:
                report._fail(error)
            yield item, result.articles

    def _send(self, batch: list[dict[str, object]], report: IngestReport) -> None:
        if not batch:
            return
        try:
            response = self.client.post(LOCAL_INGEST_ROUTE, json={"articles": batch})
        except httpx.HTTPError as exc:
            raise ServerGone(f"the newsdesk server at {self.url} stopped answering "
                             f"({type(exc).__name__}: {exc}); articles sent so far are "
                             "stored, run newsdesk-ingest again for the rest") from exc
        if response.status_code != 200:
            raise ServerGone(f"the newsdesk server at {self.url} refused the articles "
                             f"(HTTP {response.status_code}: {_detail(response)})")
        body = response.json()
        for name in ("added", "updated", "unchanged", "duplicate"):
            report.counts[name] += int(body.get(name, 0))
        for error in body["errors"]:
            report._fail(IngestError(error["location"], error["reason"]))
        report.chunks_written += int(body.get("chunks_written", 0))
        report.repaired += int(body.get("repaired", 0))


class _Batches:
    """Articles as JSON records, sent whenever a batch holds `BATCH_ARTICLES` articles or
    would pass `BATCH_BYTES` bytes."""

    def __init__(self, send: Callable[[list[dict[str, object]]], None]) -> None:
        self.send = send
        self.batch: list[dict[str, object]] = []
        self.size = 0

    @property
    def empty(self) -> bool:
        return not self.batch

    def add(self, raw: RawArticle) -> None:
        record = asdict(raw)
        cost = len(json.dumps(record, ensure_ascii=False).encode("utf-8"))
        if self.batch and (len(self.batch) >= BATCH_ARTICLES or self.size + cost > BATCH_BYTES):
            self.flush()
        self.batch.append(record)
        self.size += cost

    def flush(self) -> None:
        if self.batch:
            self.send(self.batch)
        self.batch, self.size = [], 0


def _progress(on_file: Callable[[Path | str], None] | None,
              done: list[Path | str]) -> None:
    # A file counts as done once all of its articles were sent.
    while done:
        item = done.pop(0)
        if on_file:
            on_file(item)


def _started(directory: Path, owner: Owner, on_wait: Callable[[str], None] | None) -> Owner:
    """The owner once it names its URL (a server names it when it is ready to take articles)."""
    deadline = time.monotonic() + START_WAIT_S
    told = False
    while not owner.url:
        if on_wait and not told:
            on_wait(f"waiting for {owner.describe()} to finish starting...")
            told = True
        if time.monotonic() > deadline:
            raise StoreError(f"{owner.describe()} owns {directory} but did not start serving "
                             f"within {START_WAIT_S:g} s; try again when it is up")
        time.sleep(0.5)
        found = current_owner(directory)
        if found is None:
            raise StoreError(f"{owner.describe()} stopped while starting; run newsdesk-ingest "
                             "again")
        owner = found
    return owner


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail", ""))[:300]
    except ValueError:
        return response.text[:300]

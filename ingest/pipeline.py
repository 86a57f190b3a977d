"""The ingest pipeline: paths -> files -> articles -> chunks -> vectors -> store.

Articles are embedded in batches that span files (the model is fastest on full batches, and a
large batch sorted by length pads little), and each batch is written with the store's commit
protocol, so one bad file or a crash never leaves a half article behind. A reader thread reads,
cleans and chunks the next articles while the model encodes the current batch. An edited
one-article file replaces its earlier versions, deleted only after the new one is written.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from assistant.cache import LRU
from assistant.errors import IngestError
from assistant.index import sentences
from assistant.index.embeddings import NewsEmbeddings, get_embeddings
from assistant.index.lexical import LogCursor
from assistant.index.store import ArticleWrite, NewsStore
from assistant.settings import Settings
from assistant.text import printable_path
from assistant.types import (
    Article,
    ArticleRecord,
    Chunk,
    IngestReport,
    RawArticle,
    Status,
    make_article_id,
)
from ingest.chunking import chunk_body, embedding_text, make_splitter
from ingest.dedup import DuplicateIndex, Signature, changed_numbers, pack, signature, unpack
from ingest.metadata import NO_TEXT, canonical_url, to_article
from ingest.readers import ReadResult, from_record, read_file


def discover(paths: Iterable[Path], exclude: Path | None = None) -> Iterator[Path | IngestError]:
    """Every file under `paths` (recursively, sorted), or an error for a path that is unusable.

    `exclude` (the store's own directory) is never walked into. Inside a folder, a symbolic
    link is followed only when its target lies inside that folder too; a path given itself
    is read wherever it points.
    """
    skip = exclude.resolve() if exclude else None
    for path in paths:
        if path.is_dir():
            yield from _walk(path, skip)
        elif path.exists():
            yield path
        elif path.is_symlink():
            yield IngestError(printable_path(path), "broken symbolic link")
        else:
            yield IngestError(printable_path(path), "no such file or directory")


def _walk(folder: Path, skip: Path | None) -> Iterator[Path | IngestError]:
    """The files under a folder named by the user, as `discover` describes."""
    inside = folder.resolve()
    first_path: dict[tuple[int, int], Path] = {}  # each directory, by the path it was found at

    def escapes(path: Path) -> IngestError | None:
        if not path.is_symlink():
            return None
        try:
            target = path.resolve()
        except (OSError, RuntimeError):  # a link loop: reading it reports the error
            return None
        if target.is_relative_to(inside):
            return None
        return IngestError(printable_path(path), f"symbolic link to {printable_path(target)}, "
                                                 f"outside {printable_path(folder)}: skipped")

    for top, dirs, files in os.walk(folder, followlinks=True, onerror=None):
        root = Path(top)
        try:
            st = os.stat(root)
        except OSError as exc:
            yield IngestError(printable_path(root), f"cannot read directory: {exc.strerror}")
            dirs[:] = []
            continue
        first = first_path.setdefault((st.st_dev, st.st_ino), root)
        if first != root:
            if root.is_relative_to(first):  # a link to a directory above it
                yield IngestError(printable_path(root), "directory symlink loop, skipped")
            # else a second way to the same directory (a link inside the folder), walked once
            dirs[:] = []
            continue
        if skip is not None and root.resolve() == skip:
            dirs[:] = []
            continue
        kept = []
        for name in sorted(dirs):
            if error := escapes(root / name):
                yield error
            else:
                kept.append(name)
        dirs[:] = kept
        for name in sorted(files):
            if name.startswith("."):
                continue
            yield escapes(root / name) or root / name


def _renamer(names: Mapping[Path | str, str]) -> Callable[[str], str]:
    """The location of a file (or error) found under the paths given, as `Ingestor.ingest`'s
    `names` renames it."""
    given = [(printable_path(Path(path)), name) for path, name in names.items()]

    def rename(location: str) -> str:
        for path, name in given:
            if location == path:
                return name
            if location.startswith(path.rstrip(os.sep) + os.sep):
                return f"{name}/{Path(location[len(path.rstrip(os.sep)) + 1:]).as_posix()}"
        return location

    return rename


# The formats whose file holds many articles. Any other file holds one, so a stored article
# recorded under its path with another id is an earlier version of it (`_Replacement`).
_MANY_ARTICLES = frozenset({".json", ".jsonl"})
_ONE_ARTICLE_SUFFIXES = frozenset({".txt", ".md", ".markdown", ".html", ".htm"})


def _one_article_file(location: str) -> bool:
    """Whether an article's location is a one-article file (a .txt, .md or .html path, not
    a record of a .json/.jsonl file, a URL or an API record)."""
    if "://" in location:
        return False
    suffix = Path(location).suffix.lower()
    return suffix in _ONE_ARTICLE_SUFFIXES


@dataclass(frozen=True)
class _Replacement:
    """Earlier versions of a one-article file: stored articles recorded under its path with
    another id (a text-identified article gets a new id when its text is edited). They are
    deleted only once the file's current article is stored, so a crash in between leaves
    both, and the next ingest of the file deletes them again."""

    old: tuple[str, ...]
    article_id: str  # the file's current article
    # The article retrieved for the file's text (the file's own, or the one it is a
    # near-duplicate of): the old versions' near-duplicates are recorded as copies of it
    # when they still are copies of the file's text (`signature`).
    target: str
    signature: Signature | None


@dataclass
class _Pending:
    article: Article
    chunks: list[Chunk]
    status: Status
    # Per chunk: its sentences' (start, end) in the article body, as the answerer splits them.
    sentences: list[list[tuple[int, int]]]
    minhash: str = ""
    replaces: _Replacement | None = None


@dataclass(frozen=True)
class _Duplicate:
    """A near-duplicate of a stored article: recorded as another outlet of it, not embedded."""

    article: Article
    of: str  # the id of the article stored for retrieval
    minhash: str
    similarity: float
    replaces: _Replacement | None = None


@dataclass(frozen=True)
class _Stale:
    """A file's article already stored as it is, beside earlier versions of the file (an
    ingest that stopped between writing it and deleting them, or the file's text seen
    earlier in this run)."""

    location: str
    replaces: _Replacement


# What preparing a group of articles decided before any model call: failures and unchanged
# articles, reported in this order when the group is taken up.
# An error, (location, id) of an unchanged article, a near-duplicate, or an unchanged
# article whose file's earlier versions are to go.
_Outcome = IngestError | tuple[str, str] | _Duplicate | _Stale

# Articles prepared together (one store look-up for their hashes) and handed on as one piece.
_GROUP = 16
# Pieces the reader thread may prepare ahead of the encoder.
_READ_AHEAD = 32
_END = object()


@dataclass(frozen=True)
class _FileDone:
    location: Path | str


class Ingestor:
    """Ingests files into a store. Build once and call `ingest` as often as you like."""

    def __init__(self, settings: Settings, store: NewsStore | None = None,
                 embeddings: NewsEmbeddings | None = None) -> None:
        self.settings = settings
        self.embeddings = embeddings or get_embeddings(settings)
        self._own_store = store is None
        self.store = store or NewsStore(settings, self.embeddings)
        self.splitter = make_splitter(self.embeddings, settings.chunk_tokens,
                                      settings.chunk_overlap)
        # Chunks gathered before a batch is embedded (sorted by length, so a large batch pads
        # little) and written in one upsert.
        self.batch_chunks = max(settings.embed_batch_size * 16, 64)
        # What the stored chunks of an article depend on besides its content: a change of
        # chunking re-indexes every article on the next ingest.
        self.index_key = f"{self.embeddings.name}|{settings.chunk_tokens}|{settings.chunk_overlap}"
        if self.embeddings.sentence_vectors:
            # Stores written before sentence vectors existed are re-indexed to get them.
            self.index_key += f"|{sentences.FORMAT}"
        # Signatures of the stored articles, re-read when another process wrote the store.
        self.duplicates = DuplicateIndex()
        # Bodies of the articles this ingestor indexed lately: a copy found in the same run
        # is compared with its original before the original is committed.
        self._bodies: LRU[str, str] = LRU(256)
        self._duplicates_at: str | None = None
        self._duplicates_log: LogCursor | None = None  # where the signatures follow the log

    def close(self) -> None:
        """Release the store this ingestor opened (another process may open its directory
        afterwards); a store it was given stays open."""
        if self._own_store:
            self.store.close()

    def delete(self, target: str) -> list[str]:
        """Remove the article with this id, or with this URL (any variant of it), and all its
        chunks; the ids removed (none when nothing matched)."""
        target = target.strip()
        url = canonical_url(target)
        if url:
            ids = self.store.find_articles(make_article_id(url=url), url=url)
        else:
            ids = self.store.find_articles(target)
        copies = self.store.reported_by(ids)
        for article_id in ids:
            self.store.delete_article(article_id)  # its near-duplicates' records too
            self.duplicates.remove(article_id)
        return ids + [r.article_id for aid in ids for r in copies.get(aid, [])]

    def version(self, article: Article) -> str:
        """The hash stored with an article's chunks: its content plus the index settings."""
        return hashlib.sha1(f"{article.content_hash}|{self.index_key}".encode()).hexdigest()

    def ingest(self, paths: Sequence[Path | str],
               on_file: Callable[[Path | str], None] | None = None,
               on_total: Callable[[int], None] | None = None,
               names: Mapping[Path | str, str] | None = None) -> IngestReport:
        """Ingest files and folders; `on_file` is called after each file (for progress bars).

        `names` maps a path of `paths` to the name its articles are recorded (`path`) and
        reported under, e.g. an uploaded file's own name for its temporary path
        (`{"/tmp/gradio/3f9.../notes.txt": "notes.txt"}`); a file inside a named folder is
        `name/its/path/inside`. By default, each file's path.
        """
        report = IngestReport()
        report.repaired = self.store.repair(self.store.repair_grace_s())
        self._sync_duplicates()
        exclude = None if self.settings.chroma_host else self.settings.data_dir
        rename = _renamer(names or {})
        found = [IngestError(rename(item.location), item.reason)
                 if isinstance(item, IngestError) else item
                 for item in discover((Path(p) for p in paths), exclude=exclude)]
        if on_total:
            on_total(len(found))
        batch: list[_Pending] = []
        size = 0
        # Replacements of articles settled without the model: carried out after the next
        # flush, which writes every article prepared before them (a near-duplicate's
        # original among them).
        replacing: list[_Replacement] = []
        for piece in self._read_ahead(found, rename):
            if isinstance(piece, _FileDone):
                if on_file:
                    on_file(piece.location)
                continue
            pending, outcomes = piece
            self._settle(report, outcomes, replacing)
            for p in pending:
                batch.append(p)
                size += len(p.chunks)
                # Flush inside large files too: memory stays flat and little is in flight.
                if size >= self.batch_chunks:
                    self._flush(batch, report, replacing)
                    batch, size = [], 0
        self._flush(batch, report, replacing)
        self._duplicates_at = self.store.generation()
        return report

    def _read_ahead(self, found: list[Path | IngestError],
                    rename: Callable[[str], str]) -> Iterator[
            tuple[list[_Pending], list[_Outcome]] | _FileDone]:
        """Prepared groups of articles, and `_FileDone` after a file's last group, in order.

        A thread reads, cleans and chunks up to `_READ_AHEAD` groups ahead, so that this work
        overlaps with encoding (torch leaves the GIL while it computes).
        """
        pieces: queue.Queue[object] = queue.Queue(maxsize=_READ_AHEAD)
        stop = threading.Event()

        def put(piece: object) -> bool:
            while not stop.is_set():
                try:
                    pieces.put(piece, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def read() -> None:
            seen_ids: set[str] = set()
            try:
                for item in found:
                    if isinstance(item, IngestError):
                        if not (put(([], [item])) and put(_FileDone(item.location))):
                            return
                        continue
                    for group in self._read(item, rename(printable_path(item)), seen_ids):
                        if not put(group):
                            return
                    if not put(_FileDone(item)):
                        return
                put(_END)
            except BaseException as exc:  # handed to the caller, raised there
                put(exc)

        reader = threading.Thread(target=read, name="newsdesk-ingest-reader", daemon=True)
        reader.start()
        try:
            while True:
                piece = pieces.get()
                if piece is _END:
                    return
                if isinstance(piece, BaseException):
                    raise piece
                yield piece  # type: ignore[misc]
        finally:
            stop.set()
            reader.join()

    def ingest_records(self, records: Sequence[object], origin: str = "request") -> IngestReport:
        """Ingest article objects (the fields of a .json article) without files, e.g. from
        the HTTP API; record i is reported as `origin[i]`."""
        raws: list[RawArticle | IngestError] = []
        for i, record in enumerate(records):
            try:
                raws.append(from_record(f"{origin}[{i}]", record))
            except IngestError as exc:
                raws.append(exc)
        return self.ingest_raw(raws)

    def ingest_raw(self, raws: Sequence[RawArticle | IngestError]) -> IngestReport:
        """Ingest articles that a reader already read (errors pass through to the report):
        the server's route for `newsdesk-ingest` and for API records."""
        report = IngestReport()
        report.repaired = self.store.repair(self.store.repair_grace_s())
        self._sync_duplicates()
        result = ReadResult()
        for raw in raws:
            if isinstance(raw, IngestError):
                result.errors.append(raw)
                continue
            size = len(raw.body.encode("utf-8"))
            if size > self.settings.max_article_bytes:
                result.errors.append(IngestError(
                    raw.location, f"article text is {size:,} bytes, over the limit of "
                                  f"{self.settings.max_article_bytes:,}"))
            else:
                result.articles.append(raw)
        batch: list[_Pending] = []
        replacing: list[_Replacement] = []
        # An article that `newsdesk-ingest` read from a one-article file replaces that
        # file's earlier versions, as an in-process ingest of the file does (`_read`).
        singles = [raw for raw in result.articles if _one_article_file(raw.location)]
        rest = ReadResult(articles=[raw for raw in result.articles
                                    if not _one_article_file(raw.location)],
                          errors=result.errors)
        seen: set[str] = set()
        groups = [self._prepare(rest, seen)] + [
            self._prepare(ReadResult(articles=[raw]), seen, self._stored_at(raw.location))
            for raw in singles]
        for group in groups:
            for pending, outcomes in group:
                self._settle(report, outcomes, replacing)
                batch.extend(pending)
        self._flush(batch, report, replacing)
        self._duplicates_at = self.store.generation()
        return report

    def _sync_duplicates(self) -> None:
        """Bring the signatures up to date when the store changed since this ingestor last
        wrote it (another process, or a repair): all of them the first time, then only those
        of the articles the commit log names."""
        if not self.settings.dedup:
            return
        generation = self.store.generation()
        if generation == self._duplicates_at:
            return
        if self._duplicates_log is None:
            cursor = LogCursor.at_head(self.store)  # entries after this are followed
            self.duplicates.load(self.store.signatures())
            self._duplicates_log = cursor
        else:
            fresh, read = self._duplicates_log.fresh(self.store)
            changed = list(dict.fromkeys(e.article_id for e in fresh))
            found = dict(self.store.signatures(changed)) if changed else {}
            for article_id in changed:
                self.duplicates.remove(article_id)
                packed = found.get(article_id, "")
                if packed and (signature := unpack(packed)) is not None:
                    self.duplicates.add(article_id, signature)
            self._duplicates_log.advance(fresh, read)
        self._duplicates_at = generation

    def _read(self, path: Path, location: str,
              seen_ids: set[str]) -> Iterator[tuple[list[_Pending], list[_Outcome]]]:
        try:
            result = read_file(path, self.settings.max_article_bytes, location)
        except IngestError as exc:
            yield [], [exc]
            return
        at_path: dict[str, tuple[ArticleRecord, str]] = {}
        if result.articles and path.suffix.lower() not in _MANY_ARTICLES:
            at_path = self._stored_at(location)
        yield from self._prepare(result, seen_ids, at_path)

    def _stored_at(self, location: str) -> dict[str, tuple[ArticleRecord, str]]:
        """The records stored under a one-article file's location, by id: its articles are
        recorded there, so whatever else is stored there is an earlier version of it."""
        return {rec.article_id: (rec, status) for rec, status in self.store.records_at(location)}

    def _prepare(self, result: ReadResult, seen_ids: set[str],
                 at_path: Mapping[str, tuple[ArticleRecord, str]] | None = None,
                 ) -> Iterator[tuple[list[_Pending], list[_Outcome]]]:
        """The file's articles in groups: what to embed, and what was decided without it.
        `at_path`: the records stored under a one-article file's path, by id."""
        if result.errors:
            yield [], list(result.errors)
        for start in range(0, len(result.articles), _GROUP):
            yield self._prepare_group(result.articles[start:start + _GROUP], seen_ids,
                                      at_path or {})

    def _earlier_versions(self, article: Article, at_path: Mapping[str, tuple[ArticleRecord, str]],
                          ) -> tuple[tuple[str, ...], bool]:
        """The ids of a one-article file's earlier versions to delete once `article` is
        stored (committed articles and near-duplicate records under its path with another
        id; a pending write is left to `repair` and its writer), and whether `article` is
        itself recorded as a near-duplicate of one of them (as ingest did before it knew
        them for the file's own versions: it is judged again)."""
        aid = article.article_id
        old = tuple(sorted(rid for rid, (_, status) in at_path.items()
                           if rid != aid and status in ("committed", "duplicate")))
        own = at_path.get(aid)
        refile = own is not None and own[1] == "duplicate" and own[0].duplicate_of in old
        return old, refile

    def _prepare_group(self, raws: Sequence[RawArticle], seen_ids: set[str],
                       at_path: Mapping[str, tuple[ArticleRecord, str]],
                       ) -> tuple[list[_Pending], list[_Outcome]]:
        outcomes: list[_Outcome] = []
        articles: list[Article] = []
        for raw in raws:
            try:
                articles.append(to_article(raw))
            except IngestError as exc:
                outcomes.append(exc)
        ids = [a.article_id for a in articles]
        known = self.store.committed_hashes(ids)
        as_duplicate = self.store.duplicate_hashes(ids)
        pending = []
        for article in articles:
            aid = article.article_id
            old, refile = self._earlier_versions(article, at_path)
            for rid in at_path:
                if rid != aid:
                    # The file's own earlier version is not another outlet's copy of it.
                    self.duplicates.remove(rid)
            # The same article twice in one run (the first one wins), or stored as it is.
            if aid in seen_ids or (self.version(article) in (known.get(aid),
                                                             as_duplicate.get(aid))
                                   and not refile):
                seen_ids.add(aid)
                if not old:
                    outcomes.append((article.location, aid))
                    continue
                target = aid
                if aid in as_duplicate and aid in at_path:
                    target = at_path[aid][0].duplicate_of
                outcomes.append(_Stale(article.location, _Replacement(
                    old, aid, target, signature(article.body))))
                continue
            seen_ids.add(aid)
            found = signature(article.body) if self.settings.dedup or old else None
            packed = pack(found) if found is not None and self.settings.dedup else ""
            if found is not None and self.settings.dedup:
                # A stored article stays the one retrieved; a new one may be another outlet's
                # copy of a stored story.
                match = None if aid in known else self.duplicates.find(found, exclude=aid)
                # A copy that changes a number ("61 million" for "48 million") is another
                # version of the story: indexed on its own, so both versions can be shown.
                if match is not None and not changed_numbers(self._body_of(match[0]),
                                                             article.body):
                    outcomes.append(_Duplicate(
                        article, match[0], packed, match[1],
                        _Replacement(old, aid, match[0], found) if old else None))
                    continue
                self.duplicates.add(aid, found)  # later articles of this run see it too
                self._bodies.put_many({aid: article.body})
            try:
                chunks = chunk_body(article.body, self.splitter)
            except ValueError as exc:
                outcomes.append(IngestError(article.location, f"cannot chunk: {exc}"))
                continue
            if not chunks:
                outcomes.append(IngestError(article.location, NO_TEXT))
                continue
            spans = [[(start, end) for _, start, end in sentences.split(c.text, article.lang,
                                                                      c.start)]
                     for c in chunks]
            status: Status = ("updated" if aid in known or aid in as_duplicate or old
                              else "added")
            pending.append(_Pending(article, chunks, status, spans, packed,
                                    _Replacement(old, aid, aid, found) if old else None))
        return pending, outcomes

    def _body_of(self, article_id: str) -> str:
        """The body of an indexed article: from memory, else the store's committed body (put
        back at its offsets, chunk overlaps once), else its chunks as written so far."""
        found = self._bodies.get_many([article_id])
        if article_id in found:
            return found[article_id]
        stored = self.store.article_text(article_id)
        if stored is not None:
            return stored[1]
        return "\n".join(text for _, text, _ in self.store.chunks_of(article_id))

    def _record(self, article: Article, n_chunks: int, minhash: str = "",
                duplicate_of: str = "") -> ArticleRecord:
        return ArticleRecord(
            article_id=article.article_id,
            content_hash=self.version(article),
            title=article.title,
            url=article.url,
            source=article.source,
            author=article.author,
            published_at=article.published_at,
            lang=article.lang,
            external_id=article.external_id,
            path=article.location,
            n_chunks=n_chunks,
            minhash=minhash,
            duplicate_of=duplicate_of,
        )

    def _settle(self, report: IngestReport, outcomes: list[_Outcome],
                replacing: list[_Replacement]) -> None:
        """Report what was decided without the model; record near-duplicates. Earlier
        versions they replace join `replacing`, for after the next flush."""
        for outcome in outcomes:
            if isinstance(outcome, IngestError):
                report._fail(outcome)
            elif isinstance(outcome, _Duplicate):
                article = outcome.article
                self.store.write_duplicate(self._record(article, 0, outcome.minhash,
                                                        duplicate_of=outcome.of))
                report._record(article.location, article.article_id, "duplicate")
                if outcome.replaces is not None:
                    replacing.append(outcome.replaces)
            elif isinstance(outcome, _Stale):
                report._record(outcome.location, outcome.replaces.article_id, "updated")
                replacing.append(outcome.replaces)
            else:
                report._record(outcome[0], outcome[1], "unchanged")

    def _replace(self, replacements: Sequence[_Replacement]) -> None:
        """Delete one-article files' earlier versions once their current articles are stored
        (committed, or recorded as a near-duplicate); while one is not (its write failed),
        the old versions stay.

        Each goes the way `delete` removes an article (chunks, record, and the records of
        its near-duplicates: other outlets' copies of the old text). A copy that is still a
        near-duplicate of the file's text is first recorded as a copy of the article
        retrieved for it now, when that one is committed; any other copy goes with the old
        version and comes back, judged again, when its own file is next ingested."""
        if not replacements:
            return
        ids = [aid for r in replacements for aid in (r.article_id, r.target)]
        committed = self.store.committed_hashes(ids)
        stored = committed.keys() | self.store.duplicate_hashes(ids).keys()
        for r in replacements:
            if r.article_id not in stored:
                continue
            copies = self.store.reported_by(r.old)
            for old in r.old:
                for copy in copies.get(old, []):
                    if (r.target in committed and copy.article_id not in (r.target, *r.old)
                            and self._still_a_copy(copy, r.signature)):
                        self.store.write_duplicate(dataclasses.replace(copy,
                                                                       duplicate_of=r.target))
                self.store.delete_article(old)
                self.duplicates.remove(old)

    def _still_a_copy(self, copy: ArticleRecord, text: Signature | None) -> bool:
        """Whether a near-duplicate record is one of a text with this signature too."""
        stored = unpack(copy.minhash) if copy.minhash else None
        return (text is not None and stored is not None
                and text.similarity(stored) >= self.duplicates.threshold)

    def _flush(self, batch: list[_Pending], report: IngestReport,
               replacing: list[_Replacement]) -> None:
        """Embed and write a batch, then delete the earlier versions that its articles and
        those settled before it replace (never before: a crash leaves both, not neither)."""
        if not batch:
            self._replace(replacing)
            replacing.clear()
            return
        texts, spans = [], []
        for p in batch:
            for chunk, found in zip(p.chunks, p.sentences, strict=True):
                text = embedding_text(p.article.title, chunk, self.embeddings)
                # The chunk ends the embedded text (after the headline line).
                shift = len(text) - len(chunk.text) - chunk.start
                texts.append(text)
                spans.append([(start + shift, end + shift) for start, end in found])
        # One model call gives the chunk vectors and, pooled from its token states, a vector
        # for every sentence: the answerer scores sentences without a model call of its own.
        vectors, pooled = self.embeddings.embed_with_spans(texts, spans)
        items: list[ArticleWrite] = []
        offset = 0
        for p in batch:
            n = len(p.chunks)
            packed = [sentences.pack([start for start, _ in found], pooled[offset + j])
                      for j, found in enumerate(p.sentences)]
            items.append((self._record(p.article, n, p.minhash), p.chunks,
                          vectors[offset:offset + n],
                          packed))
            offset += n
        self.store.write(items)
        report.chunks_written += len(texts)
        for p in batch:
            report._record(p.article.location, p.article.article_id, p.status)
        self._replace([p.replaces for p in batch if p.replaces is not None] + replacing)
        replacing.clear()


"""Following a story: a saved question that gets an update when newly committed articles add
to its answer.

`FollowBook` keeps the follows and their updates in SQLite beside the store (they survive
restarts; each belongs to the API key that made it). `FollowWatcher` reads the store's commit
log: for each commit it compares the new chunks with every follow's question vector (one
matrix product, so 1,000 follows cost little), answers each follow that a chunk comes near
from the new articles' passages alone, and records an update when that answer cites a passage
the follow has not shown yet."""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from assistant.errors import NewsdeskError
from assistant.index.lexical import day_number, day_range
from assistant.types import Answer, Citation, Filters, chunk_id

log = logging.getLogger("newsdesk.follows")

# A new chunk this near a follow's question (cosine, the packaged model) is worth answering
# the follow from; the answerer's own refusal decides the rest (it rarely refuses there).
# The highest value whose recall of evidence articles reaches 0.80 on the dev half of
# MultiHop-RAG's questions (`python -m evals.follows --sweep`: 0.43 0.823, 0.45 0.797;
# docs/evaluation.md#following-a-story).
MATCH_MIN = 0.43
# At most this many of the new chunks nearest a follow are passages for its update.
PASSAGES_PER_UPDATE = 6
# Threads that POST updates to webhooks.
WEBHOOK_THREADS = 4
MAX_FOLLOWS_PER_OWNER = 1000
# Whose a follow is when the server has no API key (it listens on loopback only).
OPEN_OWNER = "local"


class FollowError(NewsdeskError):
    """A follow that cannot be made (too many for one key)."""


class FollowUpdate(BaseModel):
    """What newly committed articles added to a followed question."""

    n: int = Field(description="1 for a follow's first update, then 2, 3, ...")
    at: str = Field(description="When the update was made (UTC, ISO 8601).")
    text: str = Field(description="The new facts, with `[n]` markers into `citations`.")
    citations: list[Citation]
    article_ids: list[str] = Field(description="The newly committed articles it cites.")


class Follow(BaseModel):
    """A followed question: its current answer and every update, oldest first."""

    id: str
    question: str
    filters: Filters | None = None
    webhook: str | None = Field(None, description="Where each update is POSTed as JSON.")
    created_at: str
    answer: Answer | None = Field(None, description="The answer when it was last asked.")
    answer_stale: bool = Field(False, description="The answer predates the newest update; "
                                                  "`GET /follows/{id}` asks it again.")
    updates: list[FollowUpdate] = Field(default_factory=list)
    unread: int = Field(0, description="Updates since the follow was last read "
                                       "(`GET /follows/{id}` reads it).")


@dataclass
class _Target:
    """What the watcher needs of one follow."""

    id: str
    owner: str
    question: str
    filters: Filters | None
    vector: np.ndarray
    shown: set[str] = field(default_factory=set)  # normalised passages already shown


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _norm(text: str) -> str:
    return re.sub(r"\W+", " ", text.lower()).strip()


class FollowBook:
    """The follows of one store, in `follows.sqlite` in its data dir."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        with self._db() as db:
            db.executescript("""
                CREATE TABLE IF NOT EXISTS follows (
                    id TEXT PRIMARY KEY, owner TEXT NOT NULL, question TEXT NOT NULL,
                    filters TEXT, webhook TEXT, created_at TEXT NOT NULL,
                    vector BLOB NOT NULL, answer TEXT, read_upto INTEGER NOT NULL DEFAULT 0,
                    stale INTEGER NOT NULL DEFAULT 0);
                CREATE INDEX IF NOT EXISTS follows_owner ON follows (owner);
                CREATE TABLE IF NOT EXISTS updates (
                    follow_id TEXT NOT NULL, n INTEGER NOT NULL, at TEXT NOT NULL,
                    body TEXT NOT NULL, PRIMARY KEY (follow_id, n));
                CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            """)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            db = sqlite3.connect(self.path, timeout=30)
            try:
                with db:
                    yield db
            finally:
                db.close()

    # -- follows ----------------------------------------------------------------------------

    def create(self, owner: str, question: str, filters: Filters | None, webhook: str | None,
               vector: np.ndarray, answer: Answer) -> Follow:
        """Save a new follow with its first answer."""
        follow_id = uuid.uuid4().hex[:16]
        created = _now()
        with self._db() as db:
            (count,) = db.execute("SELECT COUNT(*) FROM follows WHERE owner = ?",
                                  (owner,)).fetchone()
            if count >= MAX_FOLLOWS_PER_OWNER:
                raise FollowError(f"a key may follow at most {MAX_FOLLOWS_PER_OWNER} stories; "
                                  "delete one first")
            db.execute("INSERT INTO follows (id, owner, question, filters, webhook, created_at,"
                       " vector, answer) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (follow_id, owner, question,
                        filters.model_dump_json() if filters is not None else None, webhook,
                        created, np.asarray(vector, dtype=np.float32).tobytes(),
                        answer.model_dump_json()))
            _bump(db)
        return Follow(id=follow_id, question=question, filters=filters, webhook=webhook,
                      created_at=created, answer=answer)

    def list(self, owner: str) -> list[Follow]:
        """The owner's follows, oldest first, with their updates."""
        with self._db() as db:
            rows = db.execute("SELECT id FROM follows WHERE owner = ? ORDER BY created_at, id",
                              (owner,)).fetchall()
        return [f for (fid,) in rows if (f := self.get(owner, fid)) is not None]

    def get(self, owner: str, follow_id: str, mark_read: bool = False) -> Follow | None:
        """One of the owner's follows (None for another key's); `mark_read` clears its
        unread count."""
        with self._db() as db:
            row = db.execute("SELECT question, filters, webhook, created_at, answer, read_upto,"
                             " stale FROM follows WHERE id = ? AND owner = ?",
                             (follow_id, owner)).fetchone()
            if row is None:
                return None
            updates = [FollowUpdate.model_validate_json(body) for (body,) in db.execute(
                "SELECT body FROM updates WHERE follow_id = ? ORDER BY n", (follow_id,))]
            if mark_read and updates:
                db.execute("UPDATE follows SET read_upto = ? WHERE id = ?",
                           (updates[-1].n, follow_id))
        question, filters, webhook, created, answer, read_upto, stale = row
        return Follow(id=follow_id, question=question,
                      filters=Filters.model_validate_json(filters) if filters else None,
                      webhook=webhook, created_at=created,
                      answer=Answer.model_validate_json(answer) if answer else None,
                      answer_stale=bool(stale),
                      updates=updates,
                      unread=0 if mark_read else sum(u.n > read_upto for u in updates))

    def updates_after(self, owner: str, follow_id: str, after: int) -> list[FollowUpdate]:
        """The follow's updates numbered above `after`, oldest first."""
        with self._db() as db:
            if db.execute("SELECT 1 FROM follows WHERE id = ? AND owner = ?",
                          (follow_id, owner)).fetchone() is None:
                return []
            return [FollowUpdate.model_validate_json(body) for (body,) in db.execute(
                "SELECT body FROM updates WHERE follow_id = ? AND n > ? ORDER BY n",
                (follow_id, after))]

    def exists(self, owner: str, follow_id: str) -> bool:
        with self._db() as db:
            return db.execute("SELECT 1 FROM follows WHERE id = ? AND owner = ?",
                              (follow_id, owner)).fetchone() is not None

    def delete(self, owner: str, follow_id: str) -> bool:
        """Forget the owner's follow and its updates; False when there is none."""
        with self._db() as db:
            gone = db.execute("DELETE FROM follows WHERE id = ? AND owner = ?",
                              (follow_id, owner)).rowcount
            if gone:
                db.execute("DELETE FROM updates WHERE follow_id = ?", (follow_id,))
                _bump(db)
        return bool(gone)

    # -- what the watcher uses ----------------------------------------------------------------

    def targets(self) -> list[_Target]:
        """Every follow, with its vector and the passages it has shown."""
        with self._db() as db:
            rows = db.execute("SELECT id, owner, question, filters, vector, answer "
                              "FROM follows").fetchall()
            bodies: dict[str, list[str]] = {}
            for fid, body in db.execute("SELECT follow_id, body FROM updates"):
                bodies.setdefault(fid, []).append(body)
        found = []
        for fid, owner, question, filters, vector, answer in rows:
            shown = set()
            if answer:
                shown |= {_norm(c.passage) for c in Answer.model_validate_json(answer).citations}
            for body in bodies.get(fid, []):
                shown |= {_norm(c.passage) for c in
                          FollowUpdate.model_validate_json(body).citations}
            found.append(_Target(fid, owner, question,
                                 Filters.model_validate_json(filters) if filters else None,
                                 np.frombuffer(vector, dtype=np.float32), shown))
        return found

    def add_update(self, follow_id: str, text: str, citations: list[Citation],
                   article_ids: list[str]) -> FollowUpdate | None:
        """Record an update (the follow's answer is then out of date: `stale`); None when
        the follow was deleted meanwhile."""
        with self._db() as db:
            if db.execute("SELECT 1 FROM follows WHERE id = ?", (follow_id,)).fetchone() is None:
                return None
            (last,) = db.execute("SELECT COALESCE(MAX(n), 0) FROM updates WHERE follow_id = ?",
                                 (follow_id,)).fetchone()
            update = FollowUpdate(n=last + 1, at=_now(), text=text, citations=citations,
                                  article_ids=article_ids)
            db.execute("INSERT INTO updates (follow_id, n, at, body) VALUES (?, ?, ?, ?)",
                       (follow_id, update.n, update.at, update.model_dump_json()))
            db.execute("UPDATE follows SET stale = 1 WHERE id = ?", (follow_id,))
        return update

    def stale(self, owner: str, follow_id: str | None = None
              ) -> list[tuple[str, str, Filters | None, int]]:
        """(id, question, filters, newest update's number) of the owner's follows (or of its
        `follow_id` only) whose answer predates an update."""
        query = ("SELECT id, question, filters, (SELECT COALESCE(MAX(n), 0) FROM updates "
                 "WHERE follow_id = follows.id) FROM follows WHERE owner = ? AND stale = 1")
        args: tuple[str, ...] = (owner,)
        if follow_id is not None:
            query, args = query + " AND id = ?", (owner, follow_id)
        with self._db() as db:
            rows = db.execute(query, args).fetchall()
        return [(fid, q, Filters.model_validate_json(f) if f else None, n)
                for fid, q, f, n in rows]

    def set_answer(self, follow_id: str, answer: Answer, upto: int) -> None:
        """The follow's answer, asked after update `upto`: no longer stale, unless a newer
        update came while it was being asked."""
        with self._db() as db:
            db.execute("UPDATE follows SET answer = ?, stale = ((SELECT COALESCE(MAX(n), 0) "
                       "FROM updates WHERE follow_id = ?) > ?) WHERE id = ?",
                       (answer.model_dump_json(), follow_id, upto, follow_id))

    def version(self) -> int:
        """A number that changes whenever a follow is made or deleted."""
        with self._db() as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
        return int(row[0]) if row else 0

    def webhook(self, follow_id: str) -> str | None:
        with self._db() as db:
            row = db.execute("SELECT webhook FROM follows WHERE id = ?", (follow_id,)).fetchone()
        return row[0] if row else None

    def cursor(self) -> int | None:
        """The last commit-log sequence number the watcher has read (None before its first
        look)."""
        with self._db() as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'log_seq'").fetchone()
        return int(row[0]) if row else None

    def set_cursor(self, seq: int) -> None:
        with self._db() as db:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('log_seq', ?)",
                       (str(int(seq)),))


def _bump(db: sqlite3.Connection) -> None:
    db.execute("INSERT INTO meta (key, value) VALUES ('version', '1') ON CONFLICT(key) "
               "DO UPDATE SET value = CAST(value AS INTEGER) + 1")


def passes(filters: Filters | None, meta: dict[str, Any]) -> bool:
    """Whether a chunk (its metadata) is inside a follow's filters."""
    if filters is None or not filters.active:
        return True
    if filters.sources and str(meta.get("source", "")) not in filters.sources:
        return False
    since, until = day_range(filters)
    day = day_number(str(meta.get("published_at", "")))
    if day is None:
        return False
    return (since is None or day >= since) and (until is None or day <= until)


# What the watcher needs of the assistant: the store's commit log and chunks, the answerer.
class _Store:  # pragma: no cover - a description, `NewsStore` is the one implementation
    def log_head(self) -> int: ...
    def log_since(self, seq: int) -> list[Any]: ...
    def visible_versions(self, article_ids: Sequence[str]) -> dict[str, Any]: ...
    def get_chunks(self, ids: Sequence[str]) -> list[tuple[str, str, dict[str, Any]]]: ...
    def chunk_vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]: ...


Notify = Callable[[str, dict[str, Any]], None]


@dataclass
class Matched:
    """The cost of one look at the commit log (what the benchmark reports)."""

    articles: int = 0
    chunks: int = 0
    follows: int = 0
    near: int = 0  # follows some new chunk came near (inside their filters)
    updates: int = 0
    match_s: float = 0.0  # reading the new chunks and comparing them with every follow
    answer_s: float = 0.0  # answering the follows they came near


class FollowWatcher:
    """Turns newly committed articles into follow updates (`check` once; `run` polls)."""

    def __init__(self, assistant: Any, book: FollowBook, notify: Notify | None = None,
                 every_s: float = 1.0, match_min: float = MATCH_MIN,
                 passages: int = PASSAGES_PER_UPDATE) -> None:
        """`match_min`, `passages`: the cosine a new chunk needs to a follow's question, and
        how many such chunks one update is answered from (the evaluation sweeps them)."""
        self.assistant = assistant
        self.book = book
        self.notify = notify
        self.every_s = every_s
        self.match_min = match_min
        self.passages = passages
        self._lock = threading.Lock()
        # Webhook deliveries run beside the watcher on a few threads, however many updates
        # a write makes or however slow the receivers are (the rest wait their turn).
        self._deliveries = ThreadPoolExecutor(WEBHOOK_THREADS, "follow-webhook")
        # The follows as the watcher matches them, read again only when one is made or
        # deleted (its own updates change them in place): a look costs no parsing.
        self._targets: list[_Target] = []
        self._questions = np.zeros((0, 0), dtype=np.float32)
        self._version: int | None = None

    def close(self) -> None:
        """Drop the webhook deliveries still waiting (the updates are stored; a receiver that
        is down must not hold the server's exit for a timeout per update)."""
        self._deliveries.shutdown(wait=False, cancel_futures=True)

    def _current_targets(self) -> tuple[list[_Target], np.ndarray]:
        version = self.book.version()
        if version != self._version:
            self._targets = self.book.targets()
            self._questions = (np.stack([t.vector / (float(np.linalg.norm(t.vector)) or 1.0)
                                         for t in self._targets])
                               if self._targets else np.zeros((0, 0), dtype=np.float32))
            self._version = version
        return self._targets, self._questions

    def run(self, stop: threading.Event) -> None:
        """Look at the commit log every `every_s` until `stop` is set."""
        while not stop.is_set():
            try:
                self.check()
            except Exception:  # a store fault: the next look tries again
                log.warning("follow watcher: the check failed", exc_info=True)
            stop.wait(self.every_s)

    def check(self) -> Matched:
        """Read the commit log since the last look and make the updates it brings."""
        with self._lock:
            store = self.assistant.store
            head = store.log_head()
            cursor = self.book.cursor()
            if cursor is None:  # the first look: follow from now on
                self.book.set_cursor(head)
                return Matched()
            if head <= cursor:
                return Matched()
            entries = store.log_since(cursor)
            article_ids = list(dict.fromkeys(e.article_id for e in entries))
            done = self.process(article_ids)
            self.book.set_cursor(max([head, *(e.seq for e in entries)]))
            return done

    def process(self, article_ids: Sequence[str]) -> Matched:
        """Updates from these (newly committed) articles for every follow they add to."""
        done = Matched(articles=len(article_ids))
        started = time.perf_counter()
        targets, questions = self._current_targets()
        store = self.assistant.store
        versions = store.visible_versions(article_ids)
        ids = [chunk_id(aid, v.content_hash, i) for aid, v in versions.items()
               for i in range(v.n_chunks)]
        if not targets or not ids:
            done.match_s = time.perf_counter() - started
            return done
        vectors = store.chunk_vectors(ids)
        ids = [cid for cid in ids if cid in vectors]
        done.chunks, done.follows = len(ids), len(targets)
        if not ids:
            return done
        chunks = np.stack([vectors[cid] for cid in ids])
        similarity = questions @ chunks.T  # follows x new chunks
        near = [(t, row) for t, row in zip(targets, similarity, strict=True)
                if float(row.max()) >= self.match_min]
        metas = ({cid: meta for cid, _, meta in store.get_chunks(ids)} if near else {})
        chosen = []
        for target, row in near:
            order = [ids[i] for i in np.argsort(-row)
                     if row[i] >= self.match_min and ids[i] in metas
                     and passes(target.filters, metas[ids[i]])][:self.passages]
            if order:
                chosen.append((target, order, row))
        done.near = len(chosen)
        done.match_s = time.perf_counter() - started
        started = time.perf_counter()
        for target, order, row in chosen:
            if self._update(target, order, row, ids):
                done.updates += 1
        done.answer_s = time.perf_counter() - started
        return done

    def _update(self, target: _Target, order: list[str], row: np.ndarray,
                ids: list[str]) -> bool:
        store = self.assistant.store
        score = {ids[i]: float(row[i]) for i in range(len(ids))}
        answerer = self.assistant.answerer
        # An update is answered in one of the questions' slots, one update at a time: a
        # write that reaches many follows takes turns with the questions asked meanwhile
        # instead of crowding them off the cores. An LLM's answer waits on its server, not
        # on the cores, so it takes none.
        with self.assistant.gate.slot() if answerer.made_whole else nullcontext():
            passages = store.read(order, score)
            answer = None
            for event in answerer.stream(target.question, passages, target.vector):
                if isinstance(event, Answer):
                    answer = event
        if answer is None or answer.refused or not answer.citations:
            return False
        fresh = [c for c in answer.citations if _norm(c.passage) not in target.shown]
        if not fresh:  # nothing the follow has not shown already
            return False
        # The follow's own answer is brought up to date when it is next read, not here.
        update = self.book.add_update(target.id, answer.answer, answer.citations,
                                      list(dict.fromkeys(c.article_id for c in fresh)))
        if update is None:
            return False
        target.shown |= {_norm(c.passage) for c in answer.citations}
        if self.notify is not None and (url := self.book.webhook(target.id)):
            payload = {"follow_id": target.id, "question": target.question,
                       **update.model_dump(mode="json")}
            self._deliveries.submit(self._notify, url, payload)
        return True

    def _notify(self, url: str, payload: dict[str, Any]) -> None:
        try:
            assert self.notify is not None
            self.notify(url, payload)
        except Exception as exc:  # a webhook that fails loses nothing: the update is stored
            log.warning("follow webhook %s failed: %s", url, exc)


def follow_book(data_dir: Path) -> FollowBook:
    """The follows of the store in `data_dir`."""
    return FollowBook(Path(data_dir) / "follows.sqlite")


def dumps(update: FollowUpdate) -> str:
    """An update as the JSON of its SSE event."""
    return json.dumps(update.model_dump(mode="json"), ensure_ascii=False)

"""Following a story: a new article that adds to a followed question becomes an update (over
HTTP, as a server-sent event within seconds of the CLI committing it); an unrelated one makes
none; follows survive a restart and belong to the key that made them."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from conftest import live_server, make_settings, server_env, ui_server
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from assistant.follows import FollowBook, FollowWatcher
from assistant.service import Assistant
from assistant.types import Answer, Filters
from ingest.pipeline import Ingestor

QUESTION = "What is happening with the Orrin Island night ferry?"
FIRST = {"title": "Orrin Island night ferry returns after refit",
         "body": "The night ferry between Port Callow and Orrin Island resumed sailings on "
                 "Tuesday after a two-month refit. The operator, Westerly Ferries, said fares "
                 "would stay unchanged until the summer. Islanders had relied on a daytime "
                 "boat since October.",
         "source": "Island Courier", "published_at": "2026-02-03",
         "url": "https://courier.test/ferry-returns"}
STORM = {"title": "Storm halts Orrin Island ferry",
         "body": "Westerly Ferries cancelled Friday's night sailing to Orrin Island as gales of "
                 "up to 70 mph hit the coast. The company said the ferry would resume on Sunday "
                 "if the wind dropped. About 40 passengers were booked on the cancelled "
                 "crossing.",
         "source": "Coast Gazette", "published_at": "2026-02-13",
         "url": "https://gazette.test/storm-ferry"}
BAKERY = {"title": "Dunmore bakery wins regional bread award",
          "body": "A family bakery in Dunmore won the regional bread award on Saturday for its "
                  "sourdough loaf. The judges praised its crust and flavour. The bakery has been "
                  "run by the same family since 1952.",
          "source": "Valley News", "published_at": "2026-02-14",
          "url": "https://valley.test/bakery"}
# The storm story again, from another outlet, every fact already told.
STORM_AGAIN = {**STORM, "source": "Harbour Post", "url": "https://post.test/ferry-storm",
               "title": "Gales cancel Orrin Island night ferry"}


def _write(folder: Path, name: str, article: dict) -> Path:
    path = folder / f"{name}.json"
    path.write_text(json.dumps(article))
    return path


def _ingest(assistant: Assistant, path: Path) -> None:
    report = Ingestor(assistant.settings, store=assistant.store,
                      embeddings=assistant.embeddings).ingest([path])
    assert report.ok, report.errors


@pytest.fixture
def followed(tmp_path: Path, embeddings) -> tuple[Assistant, FollowWatcher, str]:
    settings = make_settings(tmp_path / "store")
    ingestor = Ingestor(settings, embeddings=embeddings)
    assert ingestor.ingest([_write(tmp_path, "first", FIRST)]).ok
    ingestor.close()
    assistant = Assistant(settings)
    watcher = FollowWatcher(assistant, assistant.follow_book)
    watcher.check()  # the first look: follow from here on
    follow = assistant.follow(QUESTION)
    assert not follow.answer.refused and "refit" in follow.answer.answer
    return assistant, watcher, follow.id


def test_an_article_that_adds_to_the_story_is_an_update(followed, tmp_path: Path) -> None:
    assistant, watcher, follow_id = followed
    _ingest(assistant, _write(tmp_path, "storm", STORM))
    done = watcher.check()
    assert (done.articles, done.updates) == (1, 1)
    follow = assistant.follow_book.get("local", follow_id)
    (update,) = follow.updates
    assert "gales" in update.text and "[1]" in update.text
    assert {c.url for c in update.citations} == {STORM["url"]}
    assert update.article_ids == [update.citations[0].article_id]
    assert follow.unread == 1
    # The watcher leaves the follow's answer to be asked again when it is read (listing
    # shows it stale and asks nothing), and reading it clears the badge.
    assert STORM["url"] not in {c.url for c in follow.answer.citations}
    (listed,) = assistant.follows()
    assert listed.answer_stale and listed.answer == follow.answer
    read = assistant.read_follow(follow_id)
    assert STORM["url"] in {c.url for c in read.answer.citations}
    assert read.unread == 0 and assistant.follow_book.get("local", follow_id).unread == 0
    assert assistant.follow_book.stale("local") == [] and not read.answer_stale


def test_an_update_is_answered_in_a_question_slot(followed, tmp_path: Path) -> None:
    """A write that reaches many follows takes turns with the questions asked meanwhile."""
    assistant, watcher, follow_id = followed
    _ingest(assistant, _write(tmp_path, "storm", STORM))
    gate = assistant.gate
    held = [gate._free.acquire(timeout=1) for _ in range(gate.slots)]
    assert all(held)  # every slot busy with a question
    released = 0
    try:
        checking = threading.Thread(target=watcher.check)
        checking.start()
        checking.join(3.0)
        assert checking.is_alive(), "the update was answered without a slot"
        assert assistant.follow_book.get("local", follow_id).updates == []
        gate._free.release()
        released = 1
        checking.join(30)
        assert not checking.is_alive()
        assert len(assistant.follow_book.get("local", follow_id).updates) == 1
    finally:
        for _ in range(gate.slots - released):
            gate._free.release()


def test_unrelated_and_already_told_articles_make_no_update(followed, tmp_path: Path) -> None:
    assistant, watcher, follow_id = followed
    _ingest(assistant, _write(tmp_path, "bakery", BAKERY))
    assert watcher.check().updates == 0
    _ingest(assistant, _write(tmp_path, "storm", STORM))
    assert watcher.check().updates == 1
    _ingest(assistant, _write(tmp_path, "again", STORM_AGAIN))
    assert watcher.check().updates == 0
    assert len(assistant.follow_book.get("local", follow_id).updates) == 1


def test_a_follows_filters_hold_for_its_updates(followed, tmp_path: Path) -> None:
    assistant, watcher, _ = followed
    only = assistant.follow(QUESTION, Filters(sources=["Island Courier"]))
    _ingest(assistant, _write(tmp_path, "storm", STORM))  # from the Coast Gazette
    assert watcher.check().updates == 1  # the unfiltered follow's, not this one's
    assert assistant.follow_book.get("local", only.id).updates == []


def test_follows_persist_and_belong_to_their_owner(followed, tmp_path: Path) -> None:
    assistant, watcher, follow_id = followed
    _ingest(assistant, _write(tmp_path, "storm", STORM))
    watcher.check()
    again = FollowBook(assistant.follow_book.path)  # as a restarted server opens it
    assert [f.id for f in again.list("local")] == [follow_id]
    assert len(again.get("local", follow_id).updates) == 1
    assert again.get("key:other", follow_id) is None and again.list("key:other") == []
    assert not again.delete("key:other", follow_id)
    assert again.delete("local", follow_id) and again.list("local") == []


# -- over HTTP, as a client and an operator use it ------------------------------------------


def _events(url: str, follow_id: str, key: str, into: list[tuple[float, dict]],
            stop: threading.Event) -> None:
    """Read the follow's event stream, noting when each update arrives."""
    headers = {"Authorization": f"Bearer {key}"}
    try:
        with httpx.stream("GET", f"{url}/follows/{follow_id}/events", headers=headers,
                          timeout=httpx.Timeout(5, read=None)) as response:
            assert response.status_code == 200
            event = ""
            for line in response.iter_lines():
                if stop.is_set():
                    return
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event == "update":
                    into.append((time.monotonic(), json.loads(line[6:])))
    except httpx.HTTPError:
        if not stop.is_set():  # the server going away at the end of the test is expected
            raise


def _cli(store: Path, path: Path, cwd: Path) -> float:
    """`newsdesk-ingest` into the running server; when it returned."""
    done = subprocess.run([sys.executable, "-m", "ingest", str(path), "--quiet"],
                          env=server_env(store, 0), cwd=cwd, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Sending the articles to the newsdesk server" in done.stderr
    return time.monotonic()


def _webhook_site(received: list[dict]) -> Starlette:
    async def hook(request: Request) -> JSONResponse:
        received.append(await request.json())
        return JSONResponse({"ok": True})

    return Starlette(routes=[Route("/hook", hook, methods=["POST"])])


@pytest.mark.slow
@pytest.mark.server
def test_follow_over_http_with_the_cli_writing(tmp_path: Path, embeddings) -> None:
    store = tmp_path / "store"
    ingestor = Ingestor(make_settings(store), embeddings=embeddings)
    assert ingestor.ingest([_write(tmp_path, "first", FIRST)]).ok
    ingestor.close()
    keys = {"NEWSDESK_API_KEY": "key-one-0123456789", "NEWSDESK_API_KEYS": "key-two-0123456789",
            "NEWSDESK_RATE_LIMIT_ENABLED": "false"}
    one = {"Authorization": "Bearer key-one-0123456789"}
    two = {"Authorization": "Bearer key-two-0123456789"}
    received: list[dict] = []
    with live_server(_webhook_site(received)) as site:
        hook = f"{site}/hook"
        # The webhook obeys the fetch policy for users' URLs: loopback only when allowed.
        with ui_server(store, tmp_path / "strict.log", keys) as (url, _):
            refused = httpx.post(f"{url}/follows", headers=one,
                                 json={"question": QUESTION, "webhook": hook}, timeout=60)
            assert refused.status_code == 422 and "not a public address" in refused.text
        env = {**keys, "NEWSDESK_FETCH_ALLOW": "127.0.0.1"}
        with ui_server(store, tmp_path / "server.log", env) as (url, _):
            made = httpx.post(f"{url}/follows", headers=one,
                              json={"question": QUESTION, "webhook": hook}, timeout=60)
            assert made.status_code == 201, made.text
            follow = made.json()
            assert "refit" in follow["answer"]["answer"]
            assert httpx.post(f"{url}/follows", json={"question": QUESTION}).status_code == 401
            # Another key sees none of it.
            assert httpx.get(f"{url}/follows/{follow['id']}", headers=two).status_code == 404
            assert httpx.get(f"{url}/follows", headers=two).json()["total"] == 0
            assert httpx.delete(f"{url}/follows/{follow['id']}",
                                headers=two).status_code == 404

            events: list[tuple[float, dict]] = []
            stop = threading.Event()
            reader = threading.Thread(target=_events,
                                      args=(url, follow["id"], "key-one-0123456789", events,
                                            stop), daemon=True)
            reader.start()
            time.sleep(1)
            returned = _cli(store, _write(tmp_path, "bakery", BAKERY), tmp_path)
            time.sleep(5)
            assert events == [], "an unrelated article made an update"
            returned = _cli(store, _write(tmp_path, "storm", STORM), tmp_path)
            deadline = time.monotonic() + 30
            while not events and time.monotonic() < deadline:
                time.sleep(0.05)
            assert events, "no event for the article that adds to the story"
            arrived, update = events[0]
            assert arrived - returned <= 5.0, f"the event took {arrived - returned:.1f} s"
            assert update["n"] == 1 and STORM["url"] in {c["url"] for c in update["citations"]}
            stop.set()
            listed = httpx.get(f"{url}/follows", headers=one).json()
            # Listing asks nothing again: the stored answer, marked stale.
            assert listed["follows"][0]["unread"] == 1
            assert listed["follows"][0]["answer_stale"] is True
            assert STORM["url"] not in {c["url"] for c in
                                        listed["follows"][0]["answer"]["citations"]}
            deadline = time.monotonic() + 10
            while not received and time.monotonic() < deadline:
                time.sleep(0.05)
            assert received and received[0]["follow_id"] == follow["id"]
            assert received[0]["n"] == 1
        # A restart keeps the follow, its updates and whose it is.
        with ui_server(store, tmp_path / "again.log", env) as (url, _):
            kept = httpx.get(f"{url}/follows/{follow['id']}", headers=one)
            assert kept.status_code == 200
            assert [u["n"] for u in kept.json()["updates"]] == [1]
            assert kept.json()["unread"] == 0  # reading it marked it read
            # ... and asked it again, with the new report.
            assert kept.json()["answer_stale"] is False
            assert STORM["url"] in {c["url"] for c in kept.json()["answer"]["citations"]}
            assert httpx.get(f"{url}/follows/{follow['id']}", headers=two).status_code == 404
            assert httpx.delete(f"{url}/follows/{follow['id']}", headers=one).status_code == 200
            assert httpx.get(f"{url}/follows", headers=one).json()["total"] == 0


@pytest.mark.slow
@pytest.mark.server
def test_follow_button_and_badge_in_the_browser(tmp_path: Path, embeddings) -> None:
    from playwright.sync_api import sync_playwright
    from test_browser import CHROMIUM, CHROMIUM_ARGS

    from ui import create_server

    settings = make_settings(tmp_path / "store")
    ingestor = Ingestor(settings, embeddings=embeddings)
    assert ingestor.ingest([_write(tmp_path, "first", FIRST)]).ok
    ingestor.close()
    app, _ = create_server(settings)
    with live_server(app) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(url, wait_until="domcontentloaded")
        box = page.locator("textarea").first
        box.wait_for(timeout=60_000)
        box.fill(QUESTION)
        box.press("Enter")
        page.get_by_text("Sources", exact=True).first.wait_for(timeout=60_000)
        page.locator("#follow-button").click()
        page.get_by_text(f'Following "{QUESTION}"').wait_for(timeout=30_000)
        assert page.locator("#following").inner_text().startswith("Following (1)")
        # An unrelated article: no badge. One that adds to the story: "1 new", no reload.
        for article in (BAKERY, STORM):
            added = httpx.post(f"{url}/articles", json={"articles": [article]}, timeout=120)
            assert added.status_code == 200 and added.json()["added"] == 1
            if article is BAKERY:
                page.wait_for_timeout(7_000)  # past a watcher look and a panel refresh
                assert "new" not in page.locator("#following").inner_text().split("\n")[0]
        page.locator("#following").get_by_text("Following (1) · 1 new").wait_for(
            timeout=20_000)
        page.locator("#following .label-wrap, #following > button").first.click()
        page.locator("#follow-picker input").click()
        page.get_by_role("option").first.click()
        page.get_by_text("New (").wait_for(timeout=30_000)
        shown = page.locator("#follow-updates").inner_text()
        assert "gales" in shown and STORM["title"] in shown
        # Opened: read, so the badge goes; its [1] opens the passage in the reader.
        page.locator("#following").get_by_text("Following (1)", exact=True).wait_for(
            timeout=20_000)
        page.locator("#follow-updates a[href*='#read/']").first.click()
        page.locator("#reader mark").wait_for(timeout=20_000)
        assert page.locator("#reader mark").inner_text() in STORM["body"]
        browser.close()


def test_chat_logins_keep_each_user_name_with_one_key(tmp_path: Path) -> None:
    from assistant.server.auth import ChatLogins, owner_of

    settings = make_settings(tmp_path / "store", api_key="first-key-0123456789",
                             api_keys="second-key-0123456789,third-key-0123456789")
    logins = ChatLogins(settings)
    assert not logins.login("ann", "wrong")
    assert logins.login("ann", "second-key-0123456789")
    assert logins.owner("ann") == owner_of("second-key-0123456789")
    # The name is Ann's key's now: another key cannot take it (and so her follows).
    assert not logins.login("ann", "third-key-0123456789")
    assert logins.login("bob", "third-key-0123456789")
    assert logins.owner("bob") != logins.owner("ann")
    assert logins.owner("nobody") == ""
    assert settings.keys == ["first-key-0123456789", "second-key-0123456789",
                             "third-key-0123456789"]


def test_webhooks_are_sent_on_a_few_threads_however_many_updates(tmp_path: Path,
                                                                 embeddings) -> None:
    from assistant import follows

    settings = make_settings(tmp_path / "store")
    ingestor = Ingestor(settings, embeddings=embeddings)
    assert ingestor.ingest([_write(tmp_path, "first", FIRST)]).ok
    ingestor.close()
    assistant = Assistant(settings)
    running, most, sent = [0], [0], []
    lock, release = threading.Lock(), threading.Event()

    def slow_receiver(url: str, payload: dict) -> None:  # a receiver that hangs
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        release.wait(30)
        with lock:
            running[0] -= 1
            sent.append(url)

    watcher = FollowWatcher(assistant, assistant.follow_book, notify=slow_receiver)
    watcher.check()
    n = follows.WEBHOOK_THREADS * 3
    for i in range(n):
        assistant.follow(QUESTION, webhook=f"https://hooks.test/{i}")
    _ingest(assistant, _write(tmp_path, "storm", STORM))
    done = watcher.check()  # returns while every receiver still hangs
    assert done.updates == n and not sent
    time.sleep(0.5)
    assert most[0] == follows.WEBHOOK_THREADS
    release.set()
    deadline = time.monotonic() + 20
    while len(sent) < n and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sorted(sent) == sorted(f"https://hooks.test/{i}" for i in range(n))
    # At shutdown, deliveries still waiting are dropped (running ones finish).
    release.clear()
    sent.clear()
    fares = {"title": "Orrin Island ferry fares to rise in spring",
             "body": "Westerly Ferries will raise night ferry fares to Orrin Island by 8% from "
                     "April, the operator said on Monday, citing fuel costs after the refit. "
                     "Island councillors asked for a discount for residents who commute.",
             "source": "Island Courier", "published_at": "2026-02-20",
             "url": "https://courier.test/ferry-fares"}
    _ingest(assistant, _write(tmp_path, "fares", fares))
    assert watcher.check().updates == n
    time.sleep(0.5)
    watcher.close()
    release.set()
    time.sleep(1.0)
    assert len(sent) == follows.WEBHOOK_THREADS  # the ones already running, no more
    assistant.close()


def test_an_update_made_while_the_answer_is_asked_again_keeps_it_stale(tmp_path: Path) -> None:
    book = FollowBook(tmp_path / "follows.sqlite")
    first = Answer(answer="The ferry runs. [1]", citations=[], refused=False, mode="extractive")
    made = book.create("local", QUESTION, None, None, np.ones(4, dtype=np.float32), first)
    book.add_update(made.id, "Gales stopped it. [1]", [], ["a"])
    ((fid, _, _, upto),) = book.stale("local", made.id)
    assert (fid, upto) == (made.id, 1)
    # The watcher records update 2 while update 1's answer is being asked: the answer is
    # stored, and the follow stays stale for update 2.
    book.add_update(made.id, "It sails again. [1]", [], ["b"])
    newer = first.model_copy(update={"answer": "Gales stopped the ferry. [1]"})
    book.set_answer(made.id, newer, upto)
    kept = book.get("local", made.id)
    assert kept.answer == newer and kept.answer_stale
    ((_, _, _, upto),) = book.stale("local", made.id)
    book.set_answer(made.id, newer, upto)
    assert not book.get("local", made.id).answer_stale and book.stale("local") == []

"""URLs and feeds: fetched from a news site the test serves on loopback (tests/news_site.py),
read into articles, ingested through the same paths as files, deleted by id or URL."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from conftest import live_server
from news_site import NewsSite

from assistant.index.embeddings import NewsEmbeddings
from assistant.service import Assistant
from assistant.settings import Settings
from assistant.types import make_article_id, url_key
from ingest.metadata import canonical_url
from ingest.pipeline import Ingestor
from ingest.web import read_urls


def _urls(site: NewsSite, *paths: str) -> list[str]:
    return [site.base + p for p in paths]


def test_url_variants_have_one_key() -> None:
    variants = [
        "http://www.example.com/news/story/?utm_source=rss&utm_medium=feed",
        "https://example.com/news/story",
        "https://amp.example.com/news/story/amp/",
        "https://example.com/news/story.amp?amp=1",
        "HTTPS://WWW.EXAMPLE.COM/news/story#comments",
    ]
    ids = {make_article_id(url=canonical_url(v)) for v in variants}
    assert len(ids) == 1
    assert url_key(canonical_url(variants[0])) == "https://example.com/news/story"
    # A different path, query or port is a different article.
    others = ["https://example.com/news/other", "https://example.com/news/story?id=2",
              "https://example.com:8443/news/story"]
    assert len({make_article_id(url=canonical_url(o)) for o in others} | ids) == 4


def test_pages_and_feeds_are_read_with_their_metadata(news_site: NewsSite,
                                                      settings_factory: Callable[..., Settings],
                                                      ) -> None:
    result = read_urls(_urls(news_site, "/story/port-strike", "/feeds/rss.xml",
                             "/feeds/atom.xml", "/feeds/feed.json"), settings_factory(),
                       trusted=True)
    assert result.errors == []
    by_url = {a.location: a for a in result.articles}
    # The page, the 3 RSS items (one of them the same page), the Atom and JSON Feed items.
    assert len(result.articles) == 6
    strike = by_url[news_site.base + "/story/port-strike"]
    assert (strike.title, strike.source, strike.author, strike.published_at) == (
        "Port workers strike in Valmere", "Harbor Times", "Mara Lind", "2026-11-24")
    assert "night-shift bonus" in strike.body and "All rights reserved" not in strike.body
    wire = by_url[news_site.base + "/wire/port-strike"]  # the Atom item, through its page
    assert (wire.source, wire.author) == ("Coast Daily", "Newswire")
    council = by_url[news_site.base + "/feeds/feed.json#council-1"]  # JSON Feed, no link
    assert (council.title, council.author, council.source) == (
        "Council doubles cycle lane budget", "Ada Storm", "Valmere Notes")
    # An RSS item whose page is gone falls back to the item's own text, and says so.
    gone = by_url[news_site.base + "/gone/council"]
    assert gone.title == "Council budget" and "cycle lanes" in gone.body
    assert result.notes == [f"{news_site.base}/gone/council: HTTP 404 Not Found; ingested the "
                            "feed item's own text"]
    # robots.txt is read once for the host; the Atom feed was labelled text/xml.
    assert news_site.count("/robots.txt") == 1


def test_every_broken_url_is_one_line_and_the_rest_goes_on(
        news_site: NewsSite, settings_factory: Callable[..., Settings]) -> None:
    result = read_urls(_urls(news_site, "/missing", "/slow", "/loop-a", "/huge", "/image.png",
                             "/feeds/broken.xml", "/private/leak", "/moved-to-private",
                             "/story/ferry"),
                       settings_factory(fetch_timeout_s=1.0), trusted=True)
    assert [a.title for a in result.articles] == ["Island ferry to run every twenty minutes"]
    reasons = {e.location.removeprefix(news_site.base): e.reason for e in result.errors}
    assert reasons["/missing"] == "HTTP 404 Not Found"
    assert reasons["/slow"].startswith("timed out after 1 s")
    assert reasons["/loop-a"] == "too many redirects (over 5; a redirect loop?)"
    # The 20 MB page comes gzipped (a small Content-Length): the limit counts unpacked bytes.
    assert reasons["/huge"].startswith("too large: over the limit of 5,000,000 bytes")
    assert reasons["/image.png"] == "not an HTML page or a feed (content type image/png)"
    assert reasons["/feeds/broken.xml"].startswith("malformed feed:")
    assert reasons["/private/leak"] == f"robots.txt of {news_site.base} disallows it"
    # A redirect is followed only where robots.txt allows its target too.
    assert reasons["/moved-to-private"] == (f"redirected to {news_site.base}/private/leak, "
                                           f"which robots.txt of {news_site.base} disallows it")
    assert "/private/leak" not in news_site.requests
    assert all("\n" not in str(e) for e in result.errors)


def test_requests_per_host_are_limited(news_site: NewsSite,
                                       settings_factory: Callable[..., Settings]) -> None:
    paths = [f"/story/port-strike?n={i}" for i in range(12)]
    result = read_urls(_urls(news_site, *paths), settings_factory(fetch_per_host=2),
                       trusted=True)
    assert len(result.articles) == 12
    assert 1 <= news_site.most_in_flight <= 2  # never more than the limit per host
    assert news_site.agents == {Settings().fetch_user_agent}


@pytest.mark.slow
def test_url_variants_are_one_article_and_delete_removes_it(
        news_site: NewsSite, settings_factory: Callable[..., Settings],
        embeddings: NewsEmbeddings) -> None:
    settings = settings_factory()
    ingestor = Ingestor(settings, embeddings=embeddings)
    variants = _urls(news_site, "/story/port-strike?utm_source=rss&utm_campaign=x",
                     "/story/port-strike/", "/story/port-strike/amp")
    report = ingestor.ingest_raw(read_urls(variants, settings, trusted=True).raws())
    assert report.counts == {"added": 1, "updated": 0, "unchanged": 2, "duplicate": 0,
                             "failed": 0}
    assert len({aid for _, aid, _ in report.articles}) == 1
    aid = report.articles[0][1]
    assert aid == make_article_id(url=f"{news_site.base}/story/port-strike")
    assert ingestor.store.chunks_of(aid)

    # By any variant of its URL.
    assert ingestor.delete(news_site.base.replace("http://", "https://") +
                           "/story/port-strike/?fbclid=1") == [aid]
    assert ingestor.store.count_articles() == 0 and ingestor.store.chunks_of(aid) == []
    assert ingestor.delete(aid) == []


@pytest.mark.slow
def test_delete_route_is_behind_the_key_and_removes_every_chunk(
        news_site: NewsSite, settings_factory: Callable[..., Settings]) -> None:
    from wiring import create_app

    settings = settings_factory(api_key="k3y", auth_failure_delay_s=0)
    assistant = Assistant(settings)
    app = create_app(assistant)
    key = {"Authorization": "Bearer k3y"}
    with live_server(app) as base:
        posted = httpx.post(f"{base}/articles", headers=key, timeout=120, json={"articles": [
            {"title": "Ferry doubles", "url": f"{news_site.base}/story/ferry",
             "body": "The island ferry will run every twenty minutes from next month."}]})
        assert posted.status_code == 200 and posted.json()["added"] == 1
        aid = httpx.get(f"{base}/articles", headers=key).json()["articles"][0]["article_id"]
        assert httpx.delete(f"{base}/articles/{aid}").status_code == 401
        gone = httpx.delete(f"{base}/articles/{aid}", headers=key)
        assert gone.status_code == 200 and gone.json() == {"deleted": [aid]}
        assert httpx.delete(f"{base}/articles/{aid}", headers=key).status_code == 404
        assert httpx.get(f"{base}/articles", headers=key).json()["total"] == 0
        assert assistant.store.count_chunks() == 0
        asked = httpx.post(f"{base}/answer", headers=key, json={"question": "How often will "
                                                                "the island ferry run?"})
        assert asked.json()["citations"] == []


def _cli(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CHROMA_"))}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    return subprocess.run([sys.executable, "-m", "ingest", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_cli_takes_urls_and_feeds_beside_files_and_deletes(news_site: NewsSite,
                                                           tmp_path: Path) -> None:
    store = tmp_path / "store"
    note = tmp_path / "note.md"
    note.write_text("# Tram line opens\n\nThe new tram line to the harbour opened on Sunday.")
    run = _cli(note, *_urls(news_site, "/feeds/rss.xml", "/missing"), "--data-dir", store,
               "--quiet", cwd=tmp_path)
    assert run.returncode == 1, run.stderr
    err = " ".join(run.stderr.split())
    assert f"failed: {news_site.base}/missing: HTTP 404 Not Found" in err
    assert f"fallback: {news_site.base}/gone/council: HTTP 404 Not Found" in err
    # added: the note and the 3 feed items; failed: /missing
    assert "│     4 │       0 │         0 │      1 │" in run.stdout

    again = _cli(*_urls(news_site, "/story/ferry?utm_source=x"), "--data-dir", store, "--quiet",
                 cwd=tmp_path)
    assert again.returncode == 0 and "│     0 │       0 │         1 │      0 │" in again.stdout

    deleted = _cli("--delete", f"{news_site.base}/story/ferry", "--delete", "nosuchid",
                   "--data-dir", store, cwd=tmp_path)
    assert deleted.returncode == 1
    assert "deleted: " in deleted.stdout and "nosuchid: no such article" in deleted.stderr


@pytest.mark.slow
@pytest.mark.server
def test_urls_go_to_the_server_that_owns_the_store(news_site: NewsSite, tmp_path: Path) -> None:
    from conftest import server_env, ui_server

    store = tmp_path / "store"
    with ui_server(store, tmp_path / "server.log") as (url, _):
        env = {**server_env(store, 0), "PYTHONPATH": str(Path(__file__).resolve().parents[1])}

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "ingest", *args, "--quiet"], env=env,
                                  cwd=tmp_path, capture_output=True, text=True, timeout=300)

        added = cli(f"{news_site.base}/story/ferry")
        assert added.returncode == 0, added.stderr
        assert "Sending the articles to the newsdesk server" in added.stderr
        question = {"question": "How often will the island ferry run?"}
        answer = httpx.post(f"{url}/answer", json=question, timeout=60).json()
        assert answer["citations"][0]["url"] == f"{news_site.base}/story/ferry"

        deleted = cli("--delete", f"{news_site.base}/story/ferry/?utm_source=x")
        assert deleted.returncode == 0, deleted.stderr
        assert httpx.post(f"{url}/answer", json=question, timeout=60).json()["citations"] == []


@pytest.mark.slow
def test_near_duplicates_are_stored_once_and_keep_every_outlet(
        news_site: NewsSite, settings_factory: Callable[..., Settings],
        embeddings: NewsEmbeddings) -> None:
    from wiring import create_app

    settings = settings_factory()
    ingestor = Ingestor(settings, embeddings=embeddings)
    urls = _urls(news_site, "/story/port-strike", "/wire/port-strike", "/story/ferry")
    report = ingestor.ingest_raw(read_urls(urls, settings, trusted=True).raws())
    assert report.counts == {"added": 2, "updated": 0, "unchanged": 0, "duplicate": 1,
                             "failed": 0}
    strike, wire, _ = (make_article_id(url=u) for u in urls)
    assert ingestor.store.count_articles() == 2 and ingestor.store.chunks_of(wire) == []
    [copy] = ingestor.store.reported_by([strike])[strike]
    assert (copy.article_id, copy.source, copy.url, copy.published_at) == (
        wire, "Coast Daily", urls[1], "2026-11-25")
    again = ingestor.ingest_raw(read_urls(urls, settings, trusted=True).raws())
    assert again.counts["unchanged"] == 3 and again.chunks_written == 0
    ingestor.close()

    assistant = Assistant(settings)
    answer = assistant.ask("Why did the dock workers in Valmere walk off the job?")
    cited = [c for c in answer.citations if c.article_id == strike]
    assert cited and all(c.article_id != wire for c in answer.citations)
    assert [r.source for r in cited[0].also_reported_by] == ["Coast Daily"]
    with live_server(create_app(assistant)) as base:
        listed = httpx.get(f"{base}/articles").json()["articles"]
        assert {a["article_id"]: [r["source"] for r in a["also_reported_by"]]
                for a in listed} == {strike: ["Coast Daily"], make_article_id(url=urls[2]): []}
        # Deleting the story removes every outlet's copy of it.
        gone = httpx.delete(f"{base}/articles/{strike}").json()["deleted"]
        assert gone == [strike, wire]
    assert assistant.store.find_articles(wire) == []


@pytest.mark.slow
def test_a_copy_recorded_after_a_question_is_named_at_the_next(
        news_site: NewsSite, settings_factory: Callable[..., Settings],
        embeddings: NewsEmbeddings) -> None:
    # An answer's "also reported by" is remembered per look at the commit log; a copy
    # written since (by another writer) must show at the next question.
    settings = settings_factory()
    story, copy = _urls(news_site, "/story/port-strike", "/wire/port-strike")
    first = Ingestor(settings, embeddings=embeddings)
    assert first.ingest_raw(read_urls([story], settings, trusted=True).raws()).ok
    first.close()
    assistant = Assistant(settings)
    question = "Why did the dock workers in Valmere walk off the job?"
    strike = make_article_id(url=story)
    before = [c for c in assistant.ask(question).citations if c.article_id == strike]
    assert before and before[0].also_reported_by == []
    later = Ingestor(settings, embeddings=embeddings)
    assert later.ingest_raw(read_urls([copy], settings, trusted=True).raws()).counts[
        "duplicate"] == 1
    later.close()
    after = [c for c in assistant.ask(question).citations if c.article_id == strike]
    assert [r.source for r in after[0].also_reported_by] == ["Coast Daily"]


@pytest.mark.slow
def test_watching_polls_conditionally_and_ingests_only_new_items(
        news_site: NewsSite, settings_factory: Callable[..., Settings],
        embeddings: NewsEmbeddings) -> None:
    from ingest.watch import IngestorWriter, Poll, Watcher

    settings = settings_factory()
    ingestor = Ingestor(settings, embeddings=embeddings)
    writes: list[int] = []

    def writing(work):  # noqa: ANN001, ANN202 - counts the writes, then does them
        writes.append(1)
        return work(ingestor)

    feed, down = _urls(news_site, "/feeds/rss.xml", "/feeds/down.xml")
    lines: list[str] = []
    watcher = Watcher(settings, [feed, down], IngestorWriter(writing), every_s=60,
                      on_poll=lambda p: lines.append(p.line()))
    first = watcher.poll()
    assert (first[0].new, first[0].failed, first[0].error) == (3, 0, "")
    assert first[1].error == "HTTP 404 Not Found" and first[1].retry_in_s == 120
    assert ingestor.store.count_articles() == 3 and writes == [1]
    assert lines[1] == f"{down}: failed: HTTP 404 Not Found (next try in 2m)"

    # Unchanged: one conditional request (304), no write, no model call.
    generation, before = ingestor.store.generation(), len(news_site.requests)
    [second] = watcher.poll(force=True)[:1]
    assert news_site.requests[before:before + 1] == ["/feeds/rss.xml"]
    assert second == Poll(feed, unchanged=3, requests=1)
    assert lines[-2] == f"{feed}: 0 new, 0 updated, 3 unchanged, 0 failed (1 request)"
    assert writes == [1] and ingestor.store.generation() == generation

    # A new item: only its page is fetched and ingested; the wire copy is a near-duplicate.
    news_site.rss_version = 2
    news_site.rss_items.append(("/wire/port-strike", "Dockers walk out"))
    before = len(news_site.requests)
    third = watcher.poll(force=True)[0]
    assert sorted(news_site.requests[before:]) == ["/feeds/down.xml", "/feeds/rss.xml",
                                                   "/wire/port-strike"]
    assert (third.new, third.unchanged, third.requests) == (0, 4, 2)
    assert ingestor.store.count_articles() == 3
    watcher.close()


@pytest.mark.slow
def test_the_server_watches_feeds_from_its_setting(news_site: NewsSite,
                                                   settings_factory: Callable[..., Settings],
                                                   ) -> None:
    import time

    from wiring import create_app

    assert Settings(_env_file=None).watch == []  # off by default
    settings = settings_factory(watch=f"{news_site.base}/feeds/feed.json", watch_every_s=3600)
    assistant = Assistant(settings)
    app = create_app(assistant)
    try:
        deadline = time.monotonic() + 120
        while assistant.store.count_articles() < 1:
            assert time.monotonic() < deadline, "the watcher ingested nothing"
            time.sleep(0.2)
        with live_server(app) as base:
            answer = httpx.post(f"{base}/answer", timeout=60, json={
                "question": "What did the Valmere council do with the cycle lane budget?"}).json()
        assert answer["citations"][0]["source"] == "Valmere Notes"
    finally:
        app.state.stop_watching.set()


@pytest.mark.slow
def test_newsdesk_watch_once_logs_one_line_per_source(news_site: NewsSite,
                                                      tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CHROMA_"))}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    feed, down = _urls(news_site, "/feeds/feed.json", "/missing")
    run = subprocess.run([sys.executable, "-m", "ingest.watch", feed, down, "--once",
                          "--every", "1m", "--data-dir", str(tmp_path / "store")], env=env,
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 1, run.stderr
    assert f"{feed}: 1 new, 0 updated, 0 unchanged, 0 failed (2 requests)" in run.stderr
    assert f"{down}: failed: HTTP 404 Not Found (next try in 2m)" in run.stderr


def test_a_feed_with_an_unescaped_ampersand_gives_every_item_and_one_warning(
        news_site: NewsSite, settings_factory: Callable[..., Settings]) -> None:
    feed = f"{news_site.base}/feeds/ampersand.xml"
    result = read_urls([feed], settings_factory(), trusted=True)
    assert result.errors == []
    assert len(result.articles) == 3
    assert {a.title for a in result.articles} == {
        "Port workers strike in Valmere", "Island ferry to run every twenty minutes",
        "Valmere dockers walk out over night-shift pay"}
    [warning] = result.warnings
    assert warning.startswith(f"{feed}: not well-formed, read past (")
    assert all(result.origins[a.location] == feed for a in result.articles)


def test_a_long_feed_is_cut_to_its_newest_items(news_site: NewsSite,
                                                 settings_factory: Callable[..., Settings],
                                                 ) -> None:
    feed = f"{news_site.base}/feeds/many.xml?n=40"
    result = read_urls([feed], settings_factory(feed_max_items=10), trusted=True)
    assert result.errors == []
    # Items 0-27 fall on 1-28 March at midnight, 28-39 on 1-12 March at 01:00: the newest
    # ten are 27 down to 18, whatever their order in the document.
    assert [a.title for a in result.articles] == [f"Brief {i}" for i in range(27, 17, -1)]
    assert result.warnings == [f"{feed}: 40 items: kept the newest 10 "
                               "(NEWSDESK_FEED_MAX_ITEMS)"]

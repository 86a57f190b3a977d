"""The chat in a real browser (Debian's chromium driven by Playwright): questions get streamed,
cited answers with working source links, and hostile article text never runs or renders."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT, SAMPLES, live_server, make_settings

from assistant.settings import Settings
from ingest.pipeline import Ingestor
from ui import create_server

pytestmark = [pytest.mark.slow, pytest.mark.server]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-output"
HOSTILE = {
    "title": "Lantern parade <script>document.title='pwned'</script> draws crowds",
    "url": "https://news.test/lantern-parade",
    "body": "The lantern parade in Brookside drew 8,400 people on Friday night, organisers "
            "said. <img src=x onerror=\"window.pwned=1\"> The parade route ran along the canal "
            "for two kilometres. <script>window.pwned=2</script>",
}
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory, embeddings) -> Iterator[str]:
    """`ui.create_server` served by uvicorn on a free loopback port."""
    folder = tmp_path_factory.mktemp("browser")
    (folder / "hostile.json").write_text(json.dumps(HOSTILE))
    # The news site of the second tab's test is on loopback: allowed, as an operator would.
    settings = make_settings(folder / "store", fetch_allow=["127.0.0.1"])
    assert Ingestor(settings, embeddings=embeddings).ingest([SAMPLES, folder / "hostile.json"]).ok
    app, _ = create_server(settings)
    with live_server(app) as url:
        yield url


@pytest.fixture
def page(request: pytest.FixtureRequest):
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "chromium is missing: `make test` installs it"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1100, "height": 1000})
        page.add_init_script("window.pwned = undefined;")
        yield page
        failed = getattr(request.node, "rep_call", None)
        if failed is not None and failed.failed:
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
        browser.close()


def _ask(page, url: str | None, question: str) -> str:
    """Ask on a fresh page at `url`, or on the page as it is (None), and wait for the answer."""
    if url is not None:
        page.goto(url, wait_until="domcontentloaded")
    box = page.locator("textarea").first
    box.wait_for(timeout=60_000)
    box.fill(question)
    box.press("Enter")
    page.get_by_text("Sources", exact=True).or_(page.get_by_text("does not say")).first.wait_for(
        timeout=60_000)
    return page.locator(".message-wrap").first.inner_text()


def test_question_gets_a_cited_answer_with_working_links(page, server_url: str) -> None:
    text = _ask(page, server_url, "What wage increase are the striking Carrow signal staff "
                                  "seeking?")
    assert "7.5 percent" in text and "[1]" in text
    assert "The Midland Ledger" in text
    link = page.locator("a[href='https://midland-ledger.test/2026/01/carrow-rail-strike']")
    assert link.count() >= 1
    assert "Rail workers in Carrow County" in link.first.inner_text()
    assert "articles indexed" in page.content()


def test_hostile_article_text_never_runs_or_renders(page, server_url: str) -> None:
    title = page.title() if page.url != "about:blank" else None
    text = _ask(page, server_url, "How many people came to the lantern parade in Brookside?")
    assert "8,400" in text
    assert "<img src=x onerror" in text or "<script>" in text  # shown as plain text
    assert page.evaluate("window.pwned") is None
    assert page.title() != "pwned" and (title is None or page.title() == title)
    assert page.locator(".message-wrap img[src='x']").count() == 0
    assert page.locator(".message-wrap script").count() == 0


def test_each_chat_question_costs_one_request_and_the_limit_says_so(
        page, news_store: Settings) -> None:
    """With a budget of two, two questions (each on a fresh page: loading is free) are
    answered and the third is refused with the rate limit's message."""
    app, _ = create_server(news_store.model_copy(update={"rate_limit": "2/minute",
                                                         "rate_limit_enabled": True}))
    with live_server(app) as url:
        assert "400%" in _ask(page, url, "How large is Japan's debt compared with its GDP?")
        assert "7.5 percent" in _ask(page, url, "What wage increase are the striking Carrow "
                                                "signal staff seeking?")
        page.reload(wait_until="domcontentloaded")
        box = page.locator("textarea").first
        box.wait_for(timeout=60_000)
        box.fill("Who is Japan's finance minister?")
        box.press("Enter")
        page.get_by_text("rate limit exceeded").first.wait_for(timeout=60_000)
        assert "try again in" in page.content()


KILN = {"title": "Potters fire the last coal kiln in Stoke Ferry",
        "source": "Kiln Gazette", "url": "https://kiln-gazette.test/last-coal-kiln",
        "published_at": "2026-03-20",
        "body": "Potters in Stoke Ferry fired the town's last coal-burning bottle kiln on "
                "Sunday before it becomes a museum. The firing took three days."}


def _indexed(page) -> int:
    """The article count in the page's status line."""
    found = re.search(r"(\d+) articles indexed", page.locator("body").inner_text())
    assert found, "the status line shows no article count"
    return int(found.group(1))


def _wait_indexed(page, count: int) -> None:
    page.wait_for_function("n => document.body.innerText.includes(`${n} articles indexed`)",
                           arg=count, timeout=30_000)


def test_second_tab_adds_lists_reads_and_deletes_after_a_confirm(
        page, server_url: str, news_site, tmp_path: Path) -> None:
    story = tmp_path / "kiln.json"
    story.write_text(json.dumps(KILN))
    page.goto(server_url, wait_until="domcontentloaded")
    page.get_by_role("tab", name="Add and manage news").click()
    articles = page.get_by_label("Articles", exact=True)
    articles.get_by_text("Rail workers in Carrow County").first.wait_for(timeout=60_000)
    before = _indexed(page)
    page.locator("#library-files input[type=file]").set_input_files(str(story))
    page.locator("#library-files").get_by_text("kiln.json").first.wait_for(timeout=30_000)
    page.get_by_label("URLs of pages or feeds").fill(
        f"{news_site.base}/story/ferry\n{news_site.base}/missing\nnot-a-url")
    page.get_by_role("button", name="Add to the news").click()
    page.get_by_text("2 added", exact=False).first.wait_for(timeout=120_000)
    _wait_indexed(page, before + 2)  # the header counts without a reload
    results = page.get_by_label("Per item", exact=False)
    assert "HTTP 404 Not Found" in results.inner_text()
    assert "not an http(s) URL" in results.inner_text()
    assert "Island ferry to run every twenty minutes" in articles.inner_text()

    # An added item's row opens its article in the reader.
    reader = page.locator("#library-reader")
    results.locator(".virtual-body .body-cell", has_text="kiln.json").first.click()
    reader.get_by_text(KILN["title"]).wait_for(timeout=30_000)
    assert "fired the town's last coal-burning bottle kiln" in reader.inner_text()

    page.get_by_label("Search by title or outlet").fill("harbor times")
    page.wait_for_timeout(1500)
    listed = articles.inner_text()
    assert "Island ferry" in listed and "Carrow" not in listed

    # Picking a row fills in its id (for the delete) and opens the article.
    articles.locator(".virtual-body .body-cell", has_text="Island ferry").first.click()
    chosen = page.get_by_label("Article id or URL (pick a row)")
    page.wait_for_function(
        "el => el.value !== ''", arg=chosen.element_handle(), timeout=30_000)
    reader.get_by_text("Island ferry to run every twenty minutes").wait_for(timeout=30_000)

    # Delete asks first: cancelled, nothing goes; confirmed, the article and its count go.
    confirm = page.locator("#library-confirm")
    page.get_by_role("button", name="Delete article").click()
    confirm.get_by_text("Really delete").wait_for(timeout=30_000)
    assert "Island ferry" in confirm.inner_text()
    confirm.get_by_role("button", name="Cancel").click()
    page.get_by_text("Not deleted.").wait_for(timeout=30_000)
    assert not confirm.is_visible()
    assert "Island ferry" in articles.inner_text() and _indexed(page) == before + 2
    page.get_by_role("button", name="Delete article").click()
    confirm.get_by_role("button", name="Yes, delete it").click()
    page.get_by_text("Deleted ", exact=False).first.wait_for(timeout=60_000)
    _wait_indexed(page, before + 1)
    page.wait_for_timeout(500)
    assert "Island ferry" not in articles.inner_text()


# A header cell taller than this has wrapped onto a second line.
_ONE_LINE_PX = 48


@pytest.mark.parametrize("width,height", [(1280, 800), (390, 844)])
def test_second_tab_fits_the_window(page, server_url: str, width: int, height: int) -> None:
    """The tables' columns are readable (none under 80 px, headers on one line) and
    nothing is wider than the window; a picked row's article comes into view."""
    page.set_viewport_size({"width": width, "height": height})
    page.goto(server_url, wait_until="domcontentloaded")
    page.get_by_role("tab", name="Add and manage news").click()
    articles = page.locator("#library-articles")
    articles.get_by_text("Rail workers in Carrow County").first.wait_for(timeout=60_000)
    page.wait_for_timeout(500)  # the table sizes its columns after its rows arrive
    for table in ("#library-articles", "#library-results"):
        cells = page.locator(f"{table} th.header-cell").evaluate_all(
            "cells => cells.map(c => [c.innerText.trim(), c.getBoundingClientRect().width, "
            "c.getBoundingClientRect().height])")
        assert len(cells) == 3, cells
        for name, cell_width, cell_height in cells:
            assert cell_width >= 80 and cell_height < _ONE_LINE_PX, (table, name, cells)
    assert page.evaluate("document.documentElement.scrollWidth") <= width

    articles.locator(".virtual-body .body-cell", has_text="Rail workers in Carrow").first.click()
    reader = page.locator("#library-reader")
    reader.get_by_text("Rail workers in Carrow County").first.wait_for(timeout=30_000)
    page.wait_for_timeout(500)
    box = reader.bounding_box()
    assert box is not None and 0 <= box["y"] < height, box  # in view, even on a phone
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def test_filter_row_narrows_the_answer_to_dates_and_outlets(page, server_url: str) -> None:
    page.goto(server_url, wait_until="domcontentloaded")
    since = page.locator("#filter-since input").first
    since.wait_for(timeout=60_000)
    since.fill("2027-01-01")
    box = page.locator("textarea").first
    box.fill("What wage increase are the striking Carrow signal staff seeking?")
    box.press("Enter")
    page.get_by_text("No ingested article matches the filters").first.wait_for(timeout=60_000)
    assert "published on or after 2027" in page.locator(".message-wrap").first.inner_text()

    page.goto(server_url, wait_until="domcontentloaded")
    outlets = page.locator("#filter-sources input").first
    outlets.wait_for(timeout=60_000)
    outlets.click()
    option = page.get_by_role("option", name="The Midland Ledger (1)")
    option.wait_for(timeout=30_000)  # the store's own outlets, with their article counts
    assert page.get_by_role("option", name="Northern Wire Service (2)").count() == 1
    option.click()
    text = _ask(page, None, "How many people came to the lantern parade in Brookside?")
    assert "8,400" not in text  # that article is not from The Midland Ledger
    assert "The Midland Ledger" in text or "does not say" in text


def test_the_api_docs_render_without_the_internet(page, server_url: str) -> None:
    """/docs draws every route with the Swagger UI files the app serves itself (this machine
    reaches no CDN, so a page that needed one would stay blank)."""
    external: list[str] = []
    page.on("request", lambda r: external.append(r.url)
            if not r.url.startswith(server_url) else None)
    page.goto(f"{server_url}/docs", wait_until="domcontentloaded")
    page.get_by_text("/answer/stream", exact=True).first.wait_for(timeout=30_000)
    assert page.get_by_text("/v1/chat/completions", exact=True).count() >= 1
    assert external == []

"""The reader in a real browser (Debian's chromium driven by Playwright), at a laptop's and a
phone's width: a click on `[2]` opens the article with exactly the cited passage marked and in
view; the page never overflows the phone's width. The run keeps screenshots in docs/."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import httpx
import pytest
from conftest import ROOT, SAMPLES, live_server, make_settings

from ingest.pipeline import Ingestor
from ui import create_server

pytestmark = [pytest.mark.slow, pytest.mark.server]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update"]
SCREENSHOTS = ROOT / "docs" / "screenshots"
QUESTION = "What wage increase are the striking Carrow signal staff seeking?"
VIEWPORTS = {"laptop": (1280, 800), "phone": (390, 844)}


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory, embeddings) -> Iterator[str]:
    settings = make_settings(tmp_path_factory.mktemp("reader") / "store")
    assert Ingestor(settings, embeddings=embeddings).ingest([SAMPLES]).ok
    app, _ = create_server(settings)
    with live_server(app) as url:
        yield url


@pytest.mark.parametrize("device", VIEWPORTS)
def test_clicking_a_citation_opens_the_passage_in_its_article(server_url: str,
                                                              device: str) -> None:
    from playwright.sync_api import sync_playwright

    expected = httpx.post(f"{server_url}/answer", json={"question": QUESTION},
                          timeout=60).json()["citations"]
    assert len(expected) >= 2
    width, height = VIEWPORTS[device]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": width, "height": height})
        try:
            page.goto(server_url, wait_until="domcontentloaded")
            box = page.locator("textarea").first
            box.wait_for(timeout=60_000)
            box.fill(QUESTION)
            box.press("Enter")
            page.get_by_text("Sources", exact=True).first.wait_for(timeout=60_000)
            # The newest question stays in view above its answer.
            assert page.get_by_text(QUESTION).last.is_visible()
            link = page.locator('#chat a[href*="#read/"]', has_text="[2]").first
            assert link.inner_text() == "[2]"
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / f"chat-{device}.png"))
            link.click()
            mark = page.locator("#reader mark")
            mark.wait_for(timeout=30_000)
            assert mark.inner_text() == expected[1]["passage"]
            assert page.locator("#reader h2").inner_text() == expected[1]["title"]
            page.wait_for_timeout(300)  # the scroll into view
            top = mark.bounding_box()["y"]
            assert 0 <= top < height, f"the marked passage is not in view (y={top})"
            page.screenshot(path=str(SCREENSHOTS / f"reader-{device}.png"))
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            # Back in the chat, "[1]" moves the mark to the first citation.
            page.locator('#chat a[href*="#read/"]', has_text="[1]").first.click()
            page.wait_for_function(
                "p => document.querySelector('#reader mark')?.innerText === p",
                arg=expected[0]["passage"], timeout=30_000)
            # The light/dark switch overrides the system's choice, and the page remembers it.
            dark = page.evaluate("document.body.classList.contains('dark')")
            page.locator("#theme-switch").click()
            assert page.evaluate("document.body.classList.contains('dark')") is not dark
            page.reload(wait_until="domcontentloaded")
            page.locator("textarea").first.wait_for(timeout=60_000)
            page.wait_for_function("d => document.body.classList.contains('dark') === d",
                                   arg=not dark, timeout=10_000)
            if device == "phone":  # the filters fold into one line on a phone
                assert page.locator("#filter-since").is_hidden()
            # The second tab, for the screenshots in docs/.
            page.get_by_role("tab", name="Add and manage news").click()
            page.locator("#library-articles").wait_for(timeout=30_000)
            page.wait_for_timeout(500)
            page.screenshot(path=str(SCREENSHOTS / f"tab-{device}.png"), full_page=True)
        except Exception:
            (ROOT / "test-output").mkdir(exist_ok=True)
            page.screenshot(path=str(ROOT / "test-output" / f"reader-{device}-failed.png"))
            raise
        finally:
            browser.close()

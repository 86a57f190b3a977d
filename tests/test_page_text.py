"""Fetched pages: too little text is "no article text" (words counted in any script), and a
page whose declared charset is wrong is still read right. Served by a small site on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from html import escape

import pytest
from conftest import live_server
from news_site import FERRY, PORT_STRIKE, page
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from assistant.settings import Settings
from assistant.text import count_words
from ingest.web import WebResult, read_urls

# Four sentences, each written as jieba segments it (checked below): 25 words, 46 characters.
CHINESE_WORDS = [["港口", "工人", "周二", "举行", "罢工"],
                 ["工会", "要求", "港务局", "恢复", "夜班", "津贴"],
                 ["码头", "主管", "表示", "谈判", "将", "在", "周四", "上午", "举行"],
                 ["航运公司", "已经", "开始", "改变", "航线"]]
NAV_ONLY = ('<!doctype html><html><head><title>Nothing</title></head><body>'
            '<nav><a href="/">Home</a></nav></body></html>')
NAIVE = ["Critics called the plan naïvely optimistic about the café owners’ rents — "
         "“too hopeful”, one said.", *FERRY]


def _chinese(words: list[list[str]]) -> list[str]:
    return ["".join(sentence) + "。" for sentence in words]


def _site() -> Starlette:
    def serve(body: bytes, content_type: str) -> Callable[[Request], object]:
        async def endpoint(request: Request) -> Response:
            return Response(body, media_type=None, headers={"Content-Type": content_type})
        return endpoint

    html = "text/html; charset=utf-8"
    short = [sentence[:] for sentence in CHINESE_WORDS]
    short[-1].pop()  # 24 words
    feed = ('<?xml version="1.0"?><rss version="2.0"><channel><title>Harbor Times</title>'
            "<item><title>Ferry resumes</title><link>{base}/nav-only</link>"
            "<guid>ferry-1</guid><description>"
            + escape("The island ferry runs again today.") + "</description></item>"
            "</channel></rss>")
    pages = {
        "/nav-only": (NAV_ONLY.encode(), html),
        "/story": (page("Port workers strike", "Harbor Times", "2026-11-24", "Mara Lind",
                        PORT_STRIKE).encode(), html),
        "/zh/25": (page("港口罢工", "港口日报", "2026-11-24", "李明", _chinese(CHINESE_WORDS)
                        ).encode(), html),
        "/zh/24": (page("港口罢工", "港口日报", "2026-11-24", "李明", _chinese(short)
                        ).encode(), html),
        # Windows-1252 and GB18030 bytes that the server (and the <meta> tag) call UTF-8.
        "/cp1252": (page("Café owners", "Harbor Times", "2026-11-23", "Zoë Brandt", NAIVE
                         ).encode("cp1252"), html),
        "/gb18030": (page("港口罢工", "港口日报", "2026-11-24", "李明", _chinese(CHINESE_WORDS)
                          ).encode("gb18030"), html),
    }
    routes = [Route(path, serve(body, ctype)) for path, (body, ctype) in pages.items()]

    async def rss(request: Request) -> Response:
        base = f"{request.url.scheme}://{request.url.netloc}"
        return Response(feed.format(base=base), media_type="application/rss+xml")

    return Starlette(routes=[*routes, Route("/feed.xml", rss)])


@pytest.fixture
def site() -> Iterator[str]:
    with live_server(_site()) as base:
        yield base


def _read(base: str, settings: Settings, *paths: str) -> WebResult:
    return read_urls([base + p for p in paths], settings, trusted=True)


def test_chinese_sample_is_counted_in_jieba_words() -> None:
    import jieba

    for sentence in CHINESE_WORDS:
        assert jieba.lcut("".join(sentence)) == sentence
    text = "".join(_chinese(CHINESE_WORDS))
    assert count_words(text) == 25 and len(text) > 40
    assert 10 <= count_words(text, stop_at=10) < 25  # enough to pass a minimum of 10
    assert count_words("Don't stop: the U.S. well-known 3.5 m rise, again.") == 9


def test_a_navigation_only_page_is_no_article_text(
        site: str, settings_factory: Callable[..., Settings]) -> None:
    result = _read(site, settings_factory(), "/nav-only", "/story")
    assert [a.title for a in result.articles] == ["Port workers strike"]
    [error] = result.errors
    assert error.location == site + "/nav-only"
    assert error.reason.startswith("no article text (the page's text is 1 word")
    assert "NEWSDESK_MIN_PAGE_WORDS=25" in error.reason


def test_a_chinese_page_is_measured_in_words_not_characters(
        site: str, settings_factory: Callable[..., Settings]) -> None:
    # 25 words pass the default minimum of 25; 24 words (43 characters) do not.
    result = _read(site, settings_factory(), "/zh/25", "/zh/24")
    assert [a.location for a in result.articles] == [site + "/zh/25"]
    assert "港务局" in result.articles[0].body
    [error] = result.errors
    assert error.location == site + "/zh/24"
    assert error.reason.startswith("no article text (the page's text is 24 words")
    # The minimum is a setting.
    assert len(_read(site, settings_factory(min_page_words=24), "/zh/24").articles) == 1


def test_a_feed_item_falls_back_to_its_own_short_text(
        site: str, settings_factory: Callable[..., Settings]) -> None:
    # The item's page is navigation only; its own text (6 words) is no page: no minimum.
    result = _read(site, settings_factory(), "/feed.xml")
    assert result.errors == []
    [article] = result.articles
    assert article.body == "The island ferry runs again today."
    assert result.notes[0].startswith(f"{site}/nav-only: no article text")


def test_a_page_in_another_charset_than_declared_is_read_right(
        site: str, settings_factory: Callable[..., Settings]) -> None:
    result = _read(site, settings_factory(), "/cp1252", "/gb18030")
    assert result.errors == []
    western, chinese = result.articles
    assert "naïvely" in western.body and "“too hopeful”" in western.body
    assert western.author == "Zoë Brandt"
    assert "工会要求港务局恢复夜班津贴" in chinese.body

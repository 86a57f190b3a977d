"""A small news web site for the tests, served on loopback: pages, feeds and broken cases.

Two "outlets" share one server: pages name their outlet (`og:site_name`), and the same wire
story appears under both, lightly edited. Every request is logged, so tests can count them.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from html import escape

from starlette.applications import Starlette
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

PORT_STRIKE = [
    "Dock workers at the port of Valmere walked off the job on Tuesday, halting the loading "
    "of container ships for the first time in eleven years.",
    "The union said the strike would continue until the port authority agreed to restore the "
    "night-shift bonus it cut in March, which members say covered rising rents in the city.",
    "Port director Ilse Marquardt said contingency crews would keep perishable cargo moving "
    "and that talks with union leaders were scheduled for Thursday morning.",
    "Shipping lines have started to divert vessels to the neighbouring port of Ostrand, where "
    "berths were already close to capacity before the walkout began this week.",
]
FERRY = [
    "The island ferry between Lindholm and the mainland will run every twenty minutes from "
    "next month, the regional transport office announced on Monday.",
    "Commuters have long complained about the hourly timetable, which forces many to leave "
    "home before dawn to reach jobs on the mainland in time for morning shifts.",
    "Two new electric vessels built at the Kessel yard will join the fleet in the spring, and "
    "the old diesel ferry will be kept in reserve for storms and repairs.",
]
COUNCIL = [
    "The city council of Valmere approved a new budget on Wednesday that doubles spending on "
    "cycle lanes and trims the parking fund by a third over the next two years.",
    "Council member Oskar Brandt said the plan answers years of requests from residents of "
    "the harbour district, where traffic has grown with the port's expansion.",
    "Opponents argued that shop owners in the old town would lose customers who drive in "
    "from the surrounding villages, and promised to bring the question to a referendum.",
]
PUBLISHED = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)


def page(title: str, outlet: str, date: str, author: str, paragraphs: list[str],
         canonical: str = "") -> str:
    link = f'<link rel="canonical" href="{escape(canonical)}">' if canonical else ""
    body = "\n".join(f"<p>{escape(p)}</p>" for p in paragraphs)
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>{escape(title)} | {escape(outlet)}</title>{link}
<meta property="og:site_name" content="{escape(outlet)}">
<meta property="og:title" content="{escape(title)}">
<meta name="author" content="{escape(author)}">
<meta property="article:published_time" content="{date}">
</head><body><nav><a href="/">Home</a> <a href="/world">World</a></nav>
<article><h1>{escape(title)}</h1>{body}</article>
<footer>Copyright {escape(outlet)}. All rights reserved.</footer></body></html>"""


@dataclass
class NewsSite:
    """The site's state: its base URL (set once served) and the requests it answered."""

    base: str = ""
    requests: list[str] = field(default_factory=list)
    agents: set[str] = field(default_factory=set)
    in_flight: int = 0
    most_in_flight: int = 0
    rss_items: list[tuple[str, str]] = field(default_factory=lambda: [
        ("/story/port-strike", "Port workers strike"), ("/story/ferry", "Ferry doubles"),
        ("/gone/council", "Council budget")])
    rss_version: int = 1
    # Where the hostile routes point (`/to-internal`, `/feeds/internal.xml`): a URL on
    # another loopback service, set by the test.
    internal: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, path: str) -> int:
        return sum(1 for p in self.requests if p == path)

    def app(self) -> Starlette:
        site = self

        def html(text: str) -> Response:
            return Response(text, media_type="text/html; charset=utf-8")

        async def strike(request: Request) -> Response:
            return html(page("Port workers strike in Valmere", "Harbor Times",
                             "2026-11-24", "Mara Lind", PORT_STRIKE,
                             canonical=f"{site.base}/story/port-strike"))

        async def strike_wire(request: Request) -> Response:
            # The same wire story at another outlet: new headline, edited lead, a tagline.
            edited = ["VALMERE (Newswire) - " + PORT_STRIKE[0].replace("on Tuesday", "Tuesday"),
                      *PORT_STRIKE[1:], "Reporting by the Newswire desk; editing by staff."]
            return html(page("Valmere dockers walk out over night-shift pay", "Coast Daily",
                             "2026-11-25", "Newswire", edited))

        async def ferry(request: Request) -> Response:
            return html(page("Island ferry to run every twenty minutes", "Harbor Times",
                             "2026-11-23", "Jon Ekdal", FERRY))

        async def slow(request: Request) -> Response:
            await asyncio.sleep(3)
            return html(page("Late", "Harbor Times", "2026-11-23", "x", FERRY))

        async def loop(request: Request) -> Response:
            target = "/loop-b" if request.url.path == "/loop-a" else "/loop-a"
            return RedirectResponse(target, status_code=302)

        async def to_private(request: Request) -> Response:
            return RedirectResponse("/private/leak", status_code=301)

        async def huge(request: Request) -> Response:
            return html("<html><body>" + "x" * 20_000_000 + "</body></html>")

        async def image(request: Request) -> Response:
            return Response(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, media_type="image/png")

        async def robots(request: Request) -> Response:
            return PlainTextResponse("User-agent: *\nDisallow: /private/\n")

        async def private(request: Request) -> Response:
            return html(page("Secret", "Harbor Times", "2026-11-23", "x", COUNCIL))

        async def rss(request: Request) -> Response:
            etag = f'"rss-{site.rss_version}"'
            if request.headers.get("if-none-match") == etag:
                return Response(status_code=304, headers={"ETag": etag})
            items = "".join(
                f"<item><title>{escape(title)}</title><link>{site.base}{path}</link>"
                f"<guid>{site.base}{path}</guid>"
                f"<pubDate>{format_datetime(PUBLISHED)}</pubDate>"
                f"<description>{escape(' '.join(COUNCIL if 'council' in path else FERRY))}"
                f"</description></item>"
                for path, title in site.rss_items)
            body = (f'<?xml version="1.0"?><rss version="2.0"><channel><title>Harbor Times'
                    f"</title><link>{site.base}/</link>{items}</channel></rss>")
            return Response(body, media_type="application/rss+xml",
                            headers={"ETag": etag,
                                     "Last-Modified": format_datetime(PUBLISHED, usegmt=True)})

        async def atom(request: Request) -> Response:
            body = (f'<?xml version="1.0" encoding="utf-8"?>'
                    f'<feed xmlns="http://www.w3.org/2005/Atom"><title>Coast Daily</title>'
                    f"<id>{site.base}/feeds/atom.xml</id><updated>2026-11-25T08:00:00Z</updated>"
                    f"<entry><title>Valmere dockers walk out</title>"
                    f'<link href="{site.base}/wire/port-strike"/><id>urn:coast:1</id>'
                    f"<updated>2026-11-25T08:00:00Z</updated><author><name>Newswire</name>"
                    f"</author><summary>Dockers strike.</summary></entry></feed>")
            # Labelled text/xml, as many servers do: told apart by its content.
            return Response(body, media_type="text/xml")

        async def json_feed(request: Request) -> Response:
            return JSONResponse({
                "version": "https://jsonfeed.org/version/1.1", "title": "Valmere Notes",
                "items": [{"id": "council-1", "title": "Council doubles cycle lane budget",
                           "content_text": "\n\n".join(COUNCIL),
                           "date_published": "2026-11-22T10:00:00Z",
                           "authors": [{"name": "Ada Storm"}]}],
            }, media_type="application/feed+json")

        async def broken_feed(request: Request) -> Response:
            return Response('<?xml version="1.0"?><rss version="2.0"><channel><title>Bro'
                            "<item><title>Half</tit", media_type="application/rss+xml")

        def rss_doc(title: str, items: str) -> Response:
            return Response(f'<?xml version="1.0"?><rss version="2.0"><channel><title>{title}'
                            f"</title>{items}</channel></rss>", media_type="application/rss+xml")

        async def to_internal(request: Request) -> Response:
            return RedirectResponse(site.internal, status_code=302)

        async def internal_feed(request: Request) -> Response:
            return rss_doc("Harbor Times", (
                f"<item><title>Ferry doubles</title><link>{escape(site.internal)}</link>"
                f"<description>{escape(' '.join(FERRY))}</description></item>"))

        async def ampersand_feed(request: Request) -> Response:
            # A raw `&` in each link, as real feeds often have: not well-formed XML.
            items = "".join(
                f"<item><title>{escape(title)}</title><link>{site.base}{path}?a=1&b={i}</link>"
                f"<pubDate>{format_datetime(PUBLISHED)}</pubDate></item>"
                for i, (path, title) in enumerate([
                    ("/story/port-strike", "Port workers strike"),
                    ("/story/ferry", "Ferry doubles"), ("/wire/port-strike", "Dockers")]))
            return rss_doc("Harbor Times", items)

        async def many_feed(request: Request) -> Response:
            # `n` items, each its own article, their days out of order (day i+1 of March).
            n = int(request.query_params.get("n", "40"))
            days = sorted(range(n), key=lambda i: (i * 7) % n)
            items = "".join(
                f"<item><title>Brief {i}</title><guid>brief-{i}</guid>"
                f"<pubDate>{format_datetime(datetime(2026, 3, 1 + i % 28, i // 28, tzinfo=UTC))}"
                f"</pubDate><description>Brief {i}: {escape(FERRY[i % 3])}</description>"
                f"</item>" for i in days)
            return rss_doc("Briefs", items)

        async def log(scope, receive, send):  # noqa: ANN001 - plain ASGI
            if scope["type"] != "http":
                await inner(scope, receive, send)
                return
            with site._lock:
                site.requests.append(scope["path"])
                site.agents.add(dict(scope["headers"]).get(b"user-agent", b"").decode())
                site.in_flight += 1
                site.most_in_flight = max(site.most_in_flight, site.in_flight)
            try:
                await asyncio.sleep(0.05)  # long enough for concurrent requests to overlap
                await inner(scope, receive, send)
            finally:
                with site._lock:
                    site.in_flight -= 1

        inner = GZipMiddleware(Starlette(routes=[
            Route("/story/port-strike", strike), Route("/story/port-strike/", strike),
            Route("/story/port-strike/amp", strike), Route("/wire/port-strike", strike_wire),
            Route("/story/ferry", ferry), Route("/slow", slow), Route("/loop-a", loop),
            Route("/loop-b", loop), Route("/huge", huge), Route("/image.png", image),
            Route("/robots.txt", robots), Route("/private/leak", private),
            Route("/moved-to-private", to_private),
            Route("/feeds/rss.xml", rss), Route("/feeds/atom.xml", atom),
            Route("/feeds/feed.json", json_feed), Route("/feeds/broken.xml", broken_feed),
            Route("/to-internal", to_internal), Route("/feeds/internal.xml", internal_feed),
            Route("/feeds/ampersand.xml", ampersand_feed), Route("/feeds/many.xml", many_feed),
        ]), minimum_size=200)
        return log  # type: ignore[return-value]

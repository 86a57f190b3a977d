"""The article reader: one stored article as safe HTML, the cited passage marked at its offsets.

Shared by the chat (a citation's `[n]` opens it beside the answer) and the article list."""

from __future__ import annotations

import html
import re
from urllib.parse import quote, unquote

from assistant.present import safe_url
from assistant.text import strip_bidi
from assistant.types import ArticleText, Citation

UNKNOWN_OUTLET = "unknown outlet"
MARK_ID = "newsdesk-cited"
# A chat link that opens the reader: `#read/<article id>/<start>/<end>` (the id quoted).
READ_PREFIX = "#read/"
_READ_LINK = re.compile(r"#read/([^/\s]+)/(\d+)/(\d+)$")


def read_href(citation: Citation) -> str:
    """The chat's link for a citation: the reader at its passage."""
    return f"{READ_PREFIX}{quote(citation.article_id, safe='')}/{citation.start}/{citation.end}"


def parse_read_href(href: str) -> tuple[str, int, int] | None:
    """(article id, start, end) of a link made by `read_href`, or None."""
    found = _READ_LINK.search(href or "")
    if found is None:
        return None
    return unquote(found.group(1)), int(found.group(2)), int(found.group(3))


def _text(value: str) -> str:
    return html.escape(strip_bidi(value), quote=True)


def reader_html(article: ArticleText, start: int | None = None, end: int | None = None) -> str:
    """The article as HTML: headline, outlet, date, link to the original, other outlets that
    ran the story, then the cleaned body with `body[start:end]` in a `<mark>` (none when the
    offsets do not fit the body). Every piece of article text is escaped."""
    head = [f"<h2>{_text(article.title or 'Untitled')}</h2>"]
    details = [f'<span class="outlet">{_text(article.source or UNKNOWN_OUTLET)}</span>']
    if article.published_at:
        details.append(f"<time>{_text(article.published_at[:10])}</time>")
    if article.author:
        details.append(f"<span>by {_text(article.author)}</span>")
    url = safe_url(article.url)
    if url:
        details.append(f'<a href="{html.escape(url, quote=True)}" target="_blank" '
                       'rel="noopener noreferrer nofollow">original article</a>')
    head.append(f'<p class="details">{" · ".join(details)}</p>')
    if article.also_reported_by:
        outlets = ", ".join(_text(r.source or r.title or "another outlet")
                            for r in article.also_reported_by)
        head.append(f'<p class="details">Also reported by {outlets}</p>')
    body = article.body
    if start is not None and end is not None and 0 <= start < end <= len(body):
        text = (f"{_text(body[:start])}<mark id=\"{MARK_ID}\">{_text(body[start:end])}</mark>"
                f"{_text(body[end:])}")
    else:
        text = _text(body)
    return (f'<article class="newsdesk-reader" lang="{_text(article.lang)}">{"".join(head)}'
            f'<div class="body">{text}</div></article>')


def reader_placeholder(message: str) -> str:
    """What the reader shows when there is no article to show: `message`, escaped."""
    return f'<article class="newsdesk-reader"><p class="details">{_text(message)}</p></article>'

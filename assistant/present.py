"""How an answer reads: as Markdown for the chat, article text made inert, safe links, the
"Sources" list grouped by article; or as plain text for API clients (the OpenAI-compatible
endpoint), with no Markdown escapes. Shared by the chat (`ui.py`) and that endpoint, so both
list the same sources."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from urllib.parse import quote, urlsplit

from assistant.answer.citecheck import answer_sentences
from assistant.text import strip_bidi
from assistant.types import Answer, Citation, ReportedBy

SOURCES_HEADING = "**Sources**"
CITATION_CHECK_HEADING = "**Citation check**"
UNVERIFIED = "⚠ *unverified*"
UNVERIFIED_NOTE = ("⚠ *unverified*: no retrieved passage supports the sentence before the "
                   "mark.")
# The plain-text forms, for clients that show the text as it is (or render it themselves).
PLAIN_SOURCES_HEADING = "Sources:"
PLAIN_CITATION_CHECK_HEADING = "Citation check:"
PLAIN_UNVERIFIED = "⚠ unverified"
UNKNOWN_OUTLET = "unknown outlet"
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>])")
_URL_SAFE = ":/?#@!$&'*+,;=%~"


def escape_text(text: str) -> str:
    """Article text as inert Markdown: no HTML, no links, no formatting, no bidi controls
    (ingest removes them too, but not from stores written before it did) survive."""
    # Only &, < and > need HTML escaping here; escaping quotes would make entities (&#x27;)
    # whose "#" the Markdown escaping then breaks.
    text = html.escape(strip_bidi(text), quote=False)
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text).replace("\n", " ")


def plain_text(text: str) -> str:
    """Article text for a plain-text reply: on one line, without bidi controls, otherwise as
    it is (no escapes: the client decides how to show it)."""
    return " ".join(strip_bidi(text).split())


def safe_url(url: str) -> str:
    """An http(s) URL made safe to put inside a Markdown link, or '' for anything else."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return ""
    return quote(url.strip(), safe=_URL_SAFE)


def _safe_href(href: str) -> str:
    """A link target of ours (`cite_href`): an http(s) URL or a path on this server, quoted
    so it cannot end the Markdown link early; '' for any other scheme."""
    href = href.strip()
    if urlsplit(href).scheme or href.startswith("//"):
        return safe_url(href)
    return quote(href, safe=_URL_SAFE)


def _outlet(reported: ReportedBy) -> str:
    name = escape_text(reported.source or reported.title or "another outlet")
    url = safe_url(reported.url)
    return f"[{name}]({url})" if url else name


def citation_head(c: Citation) -> str:
    """`[title](url) — outlet · date — also reported by ...`, every piece of article text
    escaped; "unknown outlet" when the article names none."""
    title = escape_text(c.title or "Untitled")
    url = safe_url(c.url)
    head = f"[{title}]({url})" if url else title
    details = " · ".join(escape_text(x) for x in (c.source or UNKNOWN_OUTLET, c.published_at)
                         if x)
    head += f" — {details}"
    if c.also_reported_by:
        head += " — also reported by " + ", ".join(_outlet(r) for r in c.also_reported_by)
    return head


def by_article(citations: list[Citation]) -> list[list[Citation]]:
    """The citations grouped by article, the articles in the order of their first citation
    and each article's citations in marker order."""
    groups: dict[str, list[Citation]] = {}
    for c in sorted(citations, key=lambda c: c.n):
        groups.setdefault(c.article_id or f"#{c.n}", []).append(c)
    return list(groups.values())


def _normalised(text: str) -> str:
    return " ".join(text.split())


def format_sources(citations: list[Citation], quotes: bool = True, shown: str = "",
                   cite_href: Callable[[Citation], str] | None = None) -> str:
    """The "Sources" list under an answer, as Markdown: one entry per article (in the order
    of its first citation), its head as `citation_head` gives it.

    quotes: under each article, its markers, each with the passage it stands for (True, the
        default); False puts the markers before the head, on one line per article.
    shown: the answer's text; a passage it already shows in full (white space aside) is not
        quoted again, only its marker is listed. Default "": every passage is quoted.
    cite_href: gives each citation the target of a link on its marker (the marker still
        reads `[n]`); default None, plain markers.

    For example, markers 1 and 2 in one article, 2 quoted by the answer:

        **Sources**

        - [Harbour bridge reopens](https://example.org/bridge) — Coast Daily · 2026\\-03\\-01
          - \\[1\\] The bridge carried 9,000 cars on its first day\\.
          - \\[2\\]
    """
    answer = _normalised(shown)

    def marker(c: Citation) -> str:
        href = _safe_href(cite_href(c)) if cite_href else ""
        return f"[\\[{c.n}\\]]({href})" if href else f"\\[{c.n}\\]"

    lines = [SOURCES_HEADING, ""]
    for group in by_article(citations):
        head = citation_head(group[0])
        if not quotes:
            lines.append(f"- {' '.join(marker(c) for c in group)} {head}")
            continue
        lines.append(f"- {head}")
        unquoted: list[str] = []  # consecutive markers whose passage the answer shows
        for c in group:
            passage = _normalised(c.passage)
            if not passage or passage in answer:
                unquoted.append(marker(c))
                continue
            if unquoted:
                lines.append(f"  - {' '.join(unquoted)}")
                unquoted = []
            lines.append(f"  - {marker(c)} {escape_text(passage)}")
        if unquoted:
            lines.append(f"  - {' '.join(unquoted)}")
    return "\n".join(lines)


def plain_sources(citations: list[Citation]) -> str:
    """The "Sources" list as plain text, one line per article (in the order of its first
    citation): `- [1][3] title — outlet · date — url`, no Markdown escapes; only http(s)
    URLs are shown. Each line is a list item, so a client that renders Markdown keeps the
    lines apart."""
    lines = [PLAIN_SOURCES_HEADING]
    for group in by_article(citations):
        c = group[0]
        parts = [plain_text(c.title) or "Untitled",
                 " · ".join(x for x in (plain_text(c.source) or UNKNOWN_OUTLET,
                                        plain_text(c.published_at)) if x)]
        if url := safe_url(c.url):
            parts.append(url)
        if c.also_reported_by:
            parts.append("also reported by " + ", ".join(_plain_outlet(r)
                                                         for r in c.also_reported_by))
        lines.append(f"- {''.join(f'[{x.n}]' for x in group)} {' — '.join(parts)}")
    return "\n".join(lines)


def _plain_outlet(reported: ReportedBy) -> str:
    name = plain_text(reported.source or reported.title) or "another outlet"
    url = safe_url(reported.url)
    return f"{name} ({url})" if url else name


def _marked(answer: Answer, show: Callable[[str], str], mark: str) -> str:
    if not answer.unsupported:
        return show(answer.answer)
    parts, cursor = [], 0
    for index, (_, end) in enumerate(answer_sentences(answer.answer)):
        if index in answer.unsupported:
            parts += [show(answer.answer[cursor:end]), f" {mark}"]
            cursor = end
    parts.append(show(answer.answer[cursor:]))
    return "".join(parts)


def mark_unverified(answer: Answer, escape: bool = True) -> str:
    """The answer's text as Markdown, each sentence no passage supports followed by
    `UNVERIFIED` (the text escaped with `escape_text` unless `escape` is False)."""
    return _marked(answer, escape_text if escape else (lambda text: text), UNVERIFIED)


def format_timeline(answer: Answer) -> str:
    """A timeline answer as a Markdown dated list (oldest first, undated entries last, as
    `Answer.timeline` holds them): the day in bold, the sentence escaped, its `\\[n\\]`
    markers, the other outlets that reported it, and `UNVERIFIED` after an entry no passage
    supports. "" for an answer without a timeline (show `mark_unverified` instead).

    For example:

        **Timeline**, oldest first:

        - **2026\\-01\\-12** On January 12, the council voted 7\\-2 to approve the plant\\. \\[1\\]
        - **Undated** The plant will supply 40,000 homes\\. \\[2\\] — also reported by Coast Daily
    """
    if not answer.timeline:
        return ""
    lines = ["**Timeline**, oldest first:", ""]
    for entry in answer.timeline:
        day = escape_text(entry.day) if entry.day else "Undated"
        markers = "".join(f"\\[{n}\\]" for n in entry.citations)
        line = f"- **{day}** {escape_text(entry.text)} {markers}".rstrip()
        if len(entry.outlets) > 1:
            line += " — also reported by " + ", ".join(escape_text(o)
                                                         for o in entry.outlets[1:])
        if entry.unsupported:
            line += f" {UNVERIFIED}"
        lines.append(line)
    return "\n".join(lines)


def plain_answer(answer: Answer) -> str:
    """The answer's text as plain text, with its `[n]` markers, without bidi controls, each
    sentence no passage supports followed by `PLAIN_UNVERIFIED`."""
    return _marked(answer, strip_bidi, PLAIN_UNVERIFIED)


def citation_note(streamed: str, answer: Answer, plain: bool = False) -> str:
    """What a reader of the streamed text (which cannot be taken back) must know when the
    citation check changed it: the sentences whose markers it re-pointed and those no passage
    supports, by their place. Empty when nothing changed. Markdown, or with `plain` plain
    text."""
    if streamed == answer.answer and not answer.unsupported:
        return ""
    heading, mark, show = ((PLAIN_CITATION_CHECK_HEADING, PLAIN_UNVERIFIED, strip_bidi)
                           if plain else (CITATION_CHECK_HEADING, UNVERIFIED, escape_text))
    lines = []
    old, new = answer_sentences(streamed), answer_sentences(answer.answer)
    if len(old) == len(new):
        for index, ((a, b), (c, d)) in enumerate(zip(old, new, strict=True)):
            was, now = _markers(streamed[a:b]), _markers(answer.answer[c:d])
            if was != now:
                lines.append(f"- sentence {index + 1} cites {now or 'nothing'} "
                             f"(not {was or 'nothing'})")
    elif streamed != answer.answer:
        lines.append(f"- corrected: {show(answer.answer)}")
    for index in answer.unsupported:
        lines.append(f"- sentence {index + 1}: {mark}, no retrieved passage supports it")
    return f"{heading}\n" + "\n".join(lines) if lines else ""


def _markers(text: str) -> str:
    return "".join(re.findall(r"\[\d+\]", text))

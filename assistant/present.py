"""How an answer reads as Markdown: article text made inert, safe links, the "Sources" list.
Shared by the chat (`ui.py`) and the OpenAI-compatible endpoint, so both show the same list."""

from __future__ import annotations

import html
import re
from urllib.parse import quote, urlsplit

from assistant.answer.citecheck import answer_sentences
from assistant.text import strip_bidi
from assistant.types import Answer, Citation, ReportedBy

SOURCES_HEADING = "**Sources**"
CITATION_CHECK_HEADING = "**Citation check**"
UNVERIFIED = "⚠ *unverified*"
UNVERIFIED_NOTE = ("⚠ *unverified*: no retrieved passage supports the sentence before the "
                   "mark.")
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>])")


def escape_text(text: str) -> str:
    """Article text as inert Markdown: no HTML, no links, no formatting, no bidi controls
    (ingest removes them too, but not from stores written before it did) survive."""
    # Only &, < and > need HTML escaping here; escaping quotes would make entities (&#x27;)
    # whose "#" the Markdown escaping then breaks.
    text = html.escape(strip_bidi(text), quote=False)
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text).replace("\n", " ")


def safe_url(url: str) -> str:
    """An http(s) URL made safe to put inside a Markdown link, or '' for anything else."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return ""
    return quote(url.strip(), safe=":/?#@!$&'*+,;=%~")


def _outlet(reported: ReportedBy) -> str:
    name = escape_text(reported.source or reported.title or "another outlet")
    url = safe_url(reported.url)
    return f"[{name}]({url})" if url else name


def citation_head(c: Citation) -> str:
    """`[title](url) — outlet · date — also reported by ...`, every piece of article text
    escaped."""
    title = escape_text(c.title or "Untitled")
    url = safe_url(c.url)
    head = f"[{title}]({url})" if url else title
    details = " · ".join(escape_text(x) for x in (c.source, c.published_at) if x)
    head += f" — {details}" if details else ""
    if c.also_reported_by:
        head += " — also reported by " + ", ".join(_outlet(r) for r in c.also_reported_by)
    return head


def format_sources(citations: list[Citation], quotes: bool = True) -> str:
    """The numbered source list shown under an answer; with `quotes`, each marker's passage
    quoted under its line."""
    lines = [SOURCES_HEADING, ""] if not quotes else [SOURCES_HEADING]
    previous = None
    for c in citations:
        head = "same article" if quotes and c.article_id == previous else citation_head(c)
        previous = c.article_id
        if quotes:
            lines += [f"{c.n}\\. {head}", f"> {escape_text(c.passage)}", ""]
        else:  # a Markdown list: the markers run 1, 2, 3, so its numbers are theirs
            lines.append(f"{c.n}. {head}")
    return "\n".join(lines).rstrip()


def mark_unverified(answer: Answer, escape: bool = True) -> str:
    """The answer's text as Markdown, each sentence no passage supports followed by
    `UNVERIFIED` (the text escaped with `escape_text` unless `escape` is False)."""
    show = escape_text if escape else (lambda text: text)
    if not answer.unsupported:
        return show(answer.answer)
    parts, cursor = [], 0
    for index, (_, end) in enumerate(answer_sentences(answer.answer)):
        if index in answer.unsupported:
            parts += [show(answer.answer[cursor:end]), f" {UNVERIFIED}"]
            cursor = end
    parts.append(show(answer.answer[cursor:]))
    return "".join(parts)


def citation_note(streamed: str, answer: Answer) -> str:
    """What a reader of the streamed text (which cannot be taken back) must know when the
    citation check changed it: the sentences whose markers it re-pointed and those no passage
    supports, by their place. Empty when nothing changed."""
    if streamed == answer.answer and not answer.unsupported:
        return ""
    lines = []
    old, new = answer_sentences(streamed), answer_sentences(answer.answer)
    if len(old) == len(new):
        for index, ((a, b), (c, d)) in enumerate(zip(old, new, strict=True)):
            was, now = _markers(streamed[a:b]), _markers(answer.answer[c:d])
            if was != now:
                lines.append(f"- sentence {index + 1} cites {now or 'nothing'} "
                             f"(not {was or 'nothing'})")
    elif streamed != answer.answer:
        lines.append(f"- corrected: {escape_text(answer.answer)}")
    for index in answer.unsupported:
        lines.append(f"- sentence {index + 1}: {UNVERIFIED}, no retrieved passage supports it")
    return f"{CITATION_CHECK_HEADING}\n" + "\n".join(lines) if lines else ""


def _markers(text: str) -> str:
    return "".join(re.findall(r"\[\d+\]", text))

"""The newsdesk server: the Gradio chat and the answer endpoint in one app.

`python ui.py` serves both on NEWSDESK_HOST:NEWSDESK_PORT (default 127.0.0.1:7860): the chat at
`/`, the HTTP API at `/answer`, `/answer/stream`, `/health`, `/articles` and its docs at `/docs`.
"""

from __future__ import annotations

import datetime as dt
import inspect
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, NamedTuple

import gradio as gr
from fastapi import FastAPI
from pydantic import ValidationError

from assistant.errors import (
    PLAIN_CAUSES,
    ExposureError,
    LLMError,
    QuestionError,
    StoreError,
)
from assistant.follows import Follow, FollowError
from assistant.index import store_owner
from assistant.present import (
    SOURCES_HEADING,
    UNVERIFIED,
    UNVERIFIED_NOTE,
    escape_text,
    format_sources,
    format_timeline,
    mark_unverified,
)
from assistant.reader import (
    UNKNOWN_OUTLET,
    parse_read_href,
    read_href,
    reader_html,
    reader_placeholder,
)
from assistant.server.auth import ChatLogins, check_exposure
from assistant.server.writer import IngestResult
from assistant.service import Assistant
from assistant.settings import Settings, get_settings
from assistant.text import strip_bidi
from assistant.types import Answer, ArticleRecord, Filters, IngestReport, Message
from wiring import create_app

log = logging.getLogger("newsdesk")

# Open streams (a Gradio heartbeat, an answer being streamed) get this long to end after
# SIGTERM; the process is gone within `_EXIT_DEADLINE_S` whatever they do.
_GRACEFUL_S = 5
_EXIT_DEADLINE_S = 9
# Example questions about the bundled sample news, kept with the samples (a hidden file, which
# ingest skips); none when the file is not there.
EXAMPLES_FILE = Path(__file__).resolve().parent / "samples" / ".chat-examples.txt"


def example_questions() -> list[str]:
    """The chat's example questions, one per line of `EXAMPLES_FILE`."""
    if not EXAMPLES_FILE.is_file():
        return []
    return [q.strip() for q in EXAMPLES_FILE.read_text(encoding="utf-8").splitlines()
            if q.strip()]
# The chat function: the message, the history, then the filter row (from, to, outlets).
Respond = Callable[..., Iterator[str]]
# The server's URL path (POST /articles with `urls`): (urls, on_url) -> per-URL outcomes.
AddUrls = Callable[[list[str], Callable[[str], None]], IngestResult]


def format_answer(text: str, answer: Answer | None = None) -> str:
    """The chat message for an answer in progress (text only) or finished: the answer's own
    text (in LLM mode, with the markers the citation check re-pointed), each sentence no
    passage supports marked unverified, each `[n]` a link that opens the cited passage in
    the reader, then the sources."""
    if answer is None:
        return escape_text(text)
    body = link_citations(format_timeline(answer) or mark_unverified(answer), answer)
    if answer.unsupported:
        body += f"\n\n{UNVERIFIED_NOTE}"
    if not answer.citations:
        return body
    sources = format_sources(answer.citations, shown=answer.answer, cite_href=read_href)
    return f"{body}\n\n{sources}"


def link_citations(markdown: str, answer: Answer) -> str:
    """Each escaped `[n]` marker of an answer's Markdown as a link to the reader at its
    passage (markers with no citation stay text)."""
    by_n = {c.n: c for c in answer.citations}

    def link(found: re.Match[str]) -> str:
        cited = by_n.get(int(found.group(1)))
        return found.group(0) if cited is None else f"[{found.group(0)}]({read_href(cited)})"

    return re.sub(r"\\\[(\d+)\\\]", link, markdown)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text", ""))
    if isinstance(content, list):
        return " ".join(_text_of(part) for part in content)
    return ""


def history_from_chat(history: list[dict[str, Any]]) -> list[Message]:
    """Gradio's chat history as newsdesk messages, without the rendered source lists and
    unverified marks."""
    messages = []
    for turn in history:
        role = turn.get("role")
        if role not in ("user", "assistant"):
            continue
        text = _text_of(turn.get("content")).split(SOURCES_HEADING)[0]
        text = text.split(UNVERIFIED_NOTE)[0].replace(f" {UNVERIFIED}", "")
        text = re.sub(r"\[(\\\[\d+\\\])\]\(#read/[^)\s]*\)", r"\1", text)  # reader links
        if role == "assistant":
            text = text.replace("**", "")  # a timeline's bold days and heading
        text = re.sub(r"\\(.)", r"\1", text).strip()  # undo our Markdown escaping
        if text:
            messages.append(Message(role=role, content=text[:20_000]))
    return messages


def status_line(assistant: Assistant) -> str:
    health = assistant.health()
    if health["status"] != "ok":
        plain = PLAIN_CAUSES.get(health.get("cause") or "", PLAIN_CAUSES["unavailable"])
        return f"**The service is degraded**: {plain}."
    mode = ("extractive, offline: answers quote the articles"
            if health["mode"] == "extractive" else f"LLM ({assistant.settings.llm_model})")
    return (f"**{health['articles']} articles indexed** ({health['chunks']} passages) · "
            f"answer mode: {mode}")


def chat_filters(since: str | None, until: str | None,
                 sources: list[str] | None) -> Filters | None:
    """The filter row's values as `Filters`; a date that is not YYYY-MM-DD is a
    `QuestionError` in plain words."""
    days = {}
    for name, value in (("from", since), ("to", until)):
        value = (value or "").strip()
        if value:
            try:
                days[name] = dt.date.fromisoformat(value[:10])
            except ValueError:
                raise QuestionError(f"the date '{value}' in \"{name}\" is not a day like "
                                    "2026-01-31") from None
    if days.get("from") and days.get("to") and days["from"] > days["to"]:
        raise QuestionError("the \"from\" date is after the \"to\" date")
    filters = Filters(since=days.get("from"), until=days.get("to"), sources=sources or [])
    return filters if filters.active else None


def outlet_choices(assistant: Assistant) -> list[tuple[str, str]]:
    """The filter row's outlets: the store's own list, "name (articles)", most articles first."""
    try:
        return [(f"{o.source} ({o.articles})", o.source) for o in assistant.sources()]
    except StoreError:  # the status line says what is wrong
        return []


def make_respond(assistant: Assistant) -> Respond:
    """The chat function: streams the escaped answer, then the answer with its sources."""

    def respond(message: str, history: list[dict[str, Any]], since: str | None = None,
                until: str | None = None, sources: list[str] | None = None) -> Iterator[str]:
        text = ""
        try:
            filters = chat_filters(since, until, sources)
            for event in assistant.stream(message, history_from_chat(history),
                                          filters=filters):
                if isinstance(event, Answer):
                    yield format_answer(event.answer, event)
                else:
                    text += event
                    yield format_answer(text)
        except QuestionError as exc:
            yield f"Sorry: {escape_text(str(exc))}."
        except StoreError as exc:  # the cause in plain words; details stay in the server log
            log.warning("chat answer failed: %s", exc)
            yield (f"Sorry, the service is unavailable right now: {exc.plain}. Please try "
                   "again in a few minutes.")
        except Exception as exc:  # shown to the user; details stay in the server log
            yield f"Sorry, the answer failed ({escape_text(type(exc).__name__)})."
            raise

    return respond


ARTICLE_COLUMNS = ["Date", "Title", "Outlet"]
RESULT_COLUMNS = ["Item", "Result", "Detail"]
# Widths that fit the table on a phone (about 340 px) and beside the reader on a desktop: the
# day or the result word fixed, the rest shared. Left to Gradio, columns take their content's
# width, which squeezes short ones to a sliver and pushes the last past the edge.
_ARTICLE_WIDTHS = ["100px", "42%", "26%"]
_RESULT_WIDTHS = ["40%", "96px", "28%"]
LIBRARY_READER_HINT = "Pick a row of either table to read its article here."
# After a pick: the reader into view when it is off screen (on a phone it is under the lists).
_SHOW_READER_JS = """() => {
  const reader = document.querySelector('#library-reader');
  const top = reader ? reader.getBoundingClientRect().top : 0;
  if (reader && (top < 0 || top > window.innerHeight - 120)) {
    reader.scrollIntoView({block: 'start'});
  }
}"""


def _stored_articles(assistant: Assistant) -> list[ArticleRecord]:
    """Every committed article record (near-duplicates are not among them)."""
    records, offset = [], 0
    while True:
        page = assistant.store.list_articles(offset=offset, limit=500)
        records += page
        offset += len(page)
        if len(page) < 500:
            return records


def article_rows(assistant: Assistant, query: str = "") -> list[list[str]]:
    """The stored articles, newest first, whose title or outlet (or another outlet that ran
    the story) contains `query` (any case): the values of `ARTICLE_COLUMNS`, then the article
    id, which the table does not show."""
    records = _stored_articles(assistant)
    copies = assistant.store.reported_by([r.article_id for r in records])
    needle = query.strip().lower()
    rows = []
    for r in sorted(records, key=lambda r: r.published_at, reverse=True):
        outlet = strip_bidi(r.source) or UNKNOWN_OUTLET
        also = ", ".join(strip_bidi(c.source) or UNKNOWN_OUTLET
                         for c in copies.get(r.article_id, []))
        if also:
            outlet = f"{outlet} (also {also})"
        title = strip_bidi(r.title) or "Untitled"
        if needle and needle not in f"{title}\n{outlet}".lower():
            continue
        rows.append([r.published_at[:10], title, outlet, r.article_id])
    return rows


def picked_id(rows: list[list[str]] | None, event: gr.SelectData) -> str:
    """The article id (the last item, not shown) of the row picked in a table showing `rows`
    without it; "" when the row has none. The shown values decide if the table was sorted."""
    rows = rows or []
    shown = [str(v) for v in event.row_value or []]
    index = event.index[0] if isinstance(event.index, list | tuple) and event.index else None
    if isinstance(index, int) and 0 <= index < len(rows) and rows[index][:-1] == shown:
        return rows[index][-1]
    return next((row[-1] for row in rows if row[:-1] == shown), "")


def _point_duplicates_at_their_story(assistant: Assistant, rows: list[list[str]]) -> None:
    """Per-item rows (item, result, detail, article id): a near-duplicate is not stored
    itself, so its row gets the id of the story stored in its place, named in its detail."""
    if not any(row[1] == "duplicate" for row in rows):
        return
    stored = {r.article_id: r for r in _stored_articles(assistant)}
    story = {copy.article_id: stored[copy.duplicate_of]
             for copies in assistant.store.reported_by(list(stored)).values()
             for copy in copies if copy.duplicate_of in stored}
    for row in rows:
        if row[1] == "duplicate" and row[3] in story:
            found = story[row[3]]
            row[2] = row[2] or f"same story as “{strip_bidi(found.title)}”"
            row[3] = found.article_id


class Library(NamedTuple):
    """The second tab's functions; the ones that write go through the server's one writer.

    - `listing(query)`: (the article table's update, its rows with ids).
    - `add(files, urls, query)`: (summary, per-item rows, the same with article ids, then
      what `after_write` gives).
    - `ask_delete(target)`: step one of a delete, which deletes nothing: (the confirm box's
      update, its question, the target to delete on confirm, a message).
    - `delete(target, query)`: step two, on confirm: (message, the confirm box hidden, the
      target cleared, then what `after_write` gives).
    - `read(article_id)`: the reader's HTML of an article.
    - `after_write(query)`: the listing, the page's status line, the Ask tab's outlets.
    """

    listing: Callable[[str], tuple[Any, list[list[str]]]]
    add: Callable[..., tuple[Any, ...]]
    ask_delete: Callable[[str], tuple[Any, str, str, str]]
    delete: Callable[[str, str], tuple[Any, ...]]
    read: Callable[[str], str]
    after_write: Callable[[str], tuple[Any, ...]]


def make_library(assistant: Assistant, writing: Callable[[Callable[[Any], Any]], Any],
                 add_urls: AddUrls | None = None) -> Library:
    """The second tab's functions over `assistant`, writing through `writing` (the server's
    one writer); URLs go through `add_urls`, the path of `POST /articles` with `urls`."""

    def listing(query: str = "") -> tuple[Any, list[list[str]]]:
        rows = article_rows(assistant, query or "")
        return gr.update(value=[row[:-1] for row in rows]), rows

    def after_write(query: str = "") -> tuple[Any, ...]:
        # The counts in the header and the Ask tab's outlets change with the articles.
        return (*listing(query), status_line(assistant),
                gr.Dropdown(choices=outlet_choices(assistant)))

    def add(files: list[str] | None, urls: str, query: str,
            progress: gr.Progress = gr.Progress(),  # noqa: B008 - how Gradio asks for it
            ) -> tuple[Any, ...]:
        paths = [Path(f) for f in files or []]
        links = [u for u in (urls or "").split() if u]
        report = IngestReport()
        rows: list[list[str]] = []  # item, result, detail, article id ("" when none)
        if links:
            if add_urls is None:
                raise gr.Error("This server does not fetch URLs.")
            done: list[str] = []

            def fetched(url: str) -> None:
                done.append(url)
                progress(len(done) / len(links), desc=f"Fetched {len(done)} of {len(links)}")

            progress(0, desc=f"Fetching {len(links)} URL(s)")
            web = add_urls(links, fetched)
            for name in report.counts:
                report.counts[name] += getattr(web, name)
            for outcome in web.urls:
                rows += [[item.location, item.status, item.note or "", item.article_id or ""]
                         for item in outcome.items]
                rows += [[outcome.url, "warning", warning, ""] for warning in outcome.warnings]
        progress(1.0, desc="Indexing")
        if paths:
            # An upload keeps its own file name (never Gradio's temp folder) as its location.
            files_report = writing(lambda ing: ing.ingest(paths,
                                                          names={p: p.name for p in paths}))
            report.merge(files_report)
            rows += [[loc, status, "", article_id]
                     for loc, article_id, status in files_report.articles]
            rows += [[e.location, "failed", e.reason, ""] for e in files_report.errors]
        _point_duplicates_at_their_story(assistant, rows)
        c = report.counts
        summary = (f"**{c['added']} added, {c['updated']} updated, {c['unchanged']} unchanged, "
                   f"{c['duplicate']} near-duplicate(s) of stored stories, "
                   f"{c['failed']} failed.**")
        return (summary, [row[:-1] for row in rows], rows, *after_write(query))

    def ask_delete(target: str) -> tuple[Any, str, str, str]:
        target = (target or "").strip()
        hidden = gr.update(visible=False)
        if not target:
            return hidden, "", "", "Pick an article in the list (or paste its id or URL) first."
        try:
            article = assistant.article(target)
        except StoreError as exc:
            return hidden, "", "", f"The article cannot be read right now: {exc.plain}."
        if article is not None:
            what = (f"“{escape_text(article.title or 'Untitled')}” "
                    f"({escape_text(article.source or UNKNOWN_OUTLET)})")
        elif "/" in target or "." in target:  # a URL: the delete finds it by any variant
            what = f"the article at {escape_text(target)}"
        else:
            return hidden, "", "", f"No article has the id {escape_text(target)}."
        return gr.update(visible=True), f"**Really delete {what}?**", target, ""

    def delete(target: str, query: str) -> tuple[Any, ...]:
        target = (target or "").strip()
        if not target:
            message = "Nothing deleted: pick an article, then Delete article, then confirm."
        else:
            gone = writing(lambda ing: ing.delete(target))
            message = (f"Deleted {', '.join(gone)}." if gone
                       else f"No article has the id or URL {escape_text(target)}.")
        return (message, gr.update(visible=False), "", *after_write(query))

    def read(article_id: str) -> str:
        if not article_id:
            return reader_placeholder("This item has no article: it was not added.")
        return article_reader(assistant, article_id)

    return Library(listing, add, ask_delete, delete, read, after_write)


def _library_tab(assistant: Assistant, writing: Callable[[Callable[[Any], Any]], Any],
                 add_urls: AddUrls | None, *, header: gr.Markdown,
                 outlets: gr.Dropdown) -> tuple[Library, list[gr.components.Component]]:
    """The second tab; `header` (the status line) and `outlets` (the Ask tab's filter) are
    updated after each add and delete. Returns its functions and the outputs of `listing`."""
    library = make_library(assistant, writing, add_urls)
    with gr.Row(elem_id="library"):
        with gr.Column(scale=3, min_width=340):
            gr.Markdown("Upload article files (.txt .md .html .json .jsonl) or paste page and "
                        "feed URLs (RSS, Atom, JSON Feed), one a line.")
            with gr.Row():
                files = gr.File(file_count="multiple", label="Files", type="filepath",
                                file_types=[".txt", ".md", ".html", ".htm", ".json",
                                            ".jsonl"], min_width=200, elem_id="library-files")
                urls = gr.Textbox(lines=5, label="URLs of pages or feeds", min_width=200,
                                  placeholder="https://example.com/rss.xml")
            add_button = gr.Button("Add to the news", variant="primary")
            summary = gr.Markdown()
            results = gr.Dataframe(headers=RESULT_COLUMNS, datatype="str",
                                   label="Per item (pick a row to read its article)",
                                   interactive=False, wrap=True,
                                   column_widths=_RESULT_WIDTHS, max_height=320,
                                   elem_id="library-results")
            result_rows = gr.State([])
            gr.Markdown("### Articles (newest first)")
            with gr.Row(equal_height=True):
                query = gr.Textbox(label="Search by title or outlet", scale=3, min_width=200)
                chosen = gr.Textbox(label="Article id or URL (pick a row)", scale=2,
                                    min_width=200)
                delete_button = gr.Button("Delete article", variant="stop", scale=1,
                                          min_width=170)
            with gr.Column(visible=False, elem_id="library-confirm") as confirm_box:
                question = gr.Markdown()
                with gr.Row():
                    confirm_button = gr.Button("Yes, delete it", variant="stop", scale=0,
                                               min_width=160)
                    cancel_button = gr.Button("Cancel", scale=0, min_width=120)
            pending = gr.State("")  # what the confirm button deletes
            deleted = gr.Markdown()
            articles = gr.Dataframe(headers=ARTICLE_COLUMNS, datatype="str",
                                    interactive=False, wrap=True, label="Articles",
                                    column_widths=_ARTICLE_WIDTHS, max_height=560,
                                    elem_id="library-articles")
            article_list = gr.State([])
        with gr.Column(scale=2, min_width=300):
            reader = gr.HTML(reader_placeholder(LIBRARY_READER_HINT), elem_id="library-reader",
                             padding=True, max_height="calc(100dvh - 120px)")

    written = [article_list, header, outlets]
    add_button.click(library.add, [files, urls, query],
                     [summary, results, result_rows, articles, *written], api_name=False)
    delete_button.click(library.ask_delete, chosen, [confirm_box, question, pending, deleted],
                        api_name=False, queue=False)
    confirm_button.click(library.delete, [pending, query],
                         [deleted, confirm_box, pending, articles, *written], api_name=False)
    cancel_button.click(lambda: (gr.update(visible=False), "", "Not deleted."), None,
                        [confirm_box, pending, deleted], api_name=False, queue=False)
    # A new pick (or typing) withdraws a question about another article.
    chosen.change(lambda: (gr.update(visible=False), ""), None, [confirm_box, pending],
                  api_name=False, queue=False)
    query.change(library.listing, query, [articles, article_list], api_name=False,
                 queue=False)

    def pick_article(rows: list[list[str]], event: gr.SelectData) -> tuple[str, str]:
        article_id = picked_id(rows, event)
        return article_id, library.read(article_id)

    def pick_result(rows: list[list[str]], event: gr.SelectData) -> str:
        return library.read(picked_id(rows, event))

    articles.select(pick_article, article_list, [chosen, reader], api_name=False,
                    queue=False).then(None, js=_SHOW_READER_JS)
    results.select(pick_result, result_rows, reader, api_name=False,
                   queue=False).then(None, js=_SHOW_READER_JS)
    return library, [articles, article_list]


# How often the chat's Following panel asks for new updates.
FOLLOW_REFRESH_S = 5.0
READER_HINT = ("Click a citation's [n] in an answer to read its passage, highlighted, in "
               "the article.")
# The chat takes the window's height less the masthead, tabs, filters and the message box.
CHAT_HEIGHT = "calc(100dvh - 380px)"
# The reader: a click on a chat link made by `read_href` (anywhere on the page) asks the
# server for the article and shows it, the cited passage scrolled into view.
READER_JS = """
document.addEventListener('click', async (event) => {
  const link = event.target.closest ? event.target.closest('a[href*="#read/"]') : null;
  if (!link || element.closest('.hidden')) return;
  event.preventDefault();
  event.stopPropagation();
  props.value = await server.read(link.getAttribute('href'));
  requestAnimationFrame(() => requestAnimationFrame(() => {
    const mark = element.querySelector('mark');
    (mark || element).scrollIntoView({block: mark ? 'center' : 'start'});
  }));
}, true);
"""
# Light/dark: Gradio follows the system's choice; the switch overrides it for this browser.
THEME_SWITCH_JS = """() => {
  const dark = !document.body.classList.contains('dark');
  document.body.classList.toggle('dark', dark);
  localStorage.setItem('newsdesk-theme', dark ? 'dark' : 'light');
}"""
# On load: the saved theme; the filters folded on a phone; and each new question scrolled to
# the top of the chat, so a long answer never pushes it out of view.
PAGE_JS = """() => {
  const saved = localStorage.getItem('newsdesk-theme');
  if (saved) document.body.classList.toggle('dark', saved === 'dark');
  const fold = () => {
    const toggle = document.querySelector('#filters > button, #filters .label-wrap');
    if (!toggle) return setTimeout(fold, 200);
    if (window.matchMedia('(max-width: 640px)').matches &&
        toggle.classList.contains('open')) toggle.click();
  };
  fold();
  let asked = 0;
  new MutationObserver(() => {
    const questions = document.querySelectorAll('#chat .message-row.user-row, ' +
                                                '#chat [data-testid="user"]');
    if (questions.length > asked) {
      questions[questions.length - 1].scrollIntoView({block: 'start'});
    }
    asked = questions.length;
  }).observe(document.body, {childList: true, subtree: true});
}"""
PAGE_CSS = """
#reader { max-height: calc(100dvh - 200px); overflow-y: auto; position: sticky; top: 8px; }
.newsdesk-reader h2 { margin: 0 0 .3em; font-size: 1.25em; }
.newsdesk-reader .details { color: var(--body-text-color-subdued); margin: 0 0 .5em; }
.newsdesk-reader .body { white-space: pre-wrap; line-height: 1.55; }
.newsdesk-reader mark { background: var(--color-accent-soft); color: inherit;
                        outline: 2px solid var(--color-accent); border-radius: 2px; }
#masthead { align-items: center; }
@media (max-width: 640px) {
  #title h2 { font-size: 1.15em; }
  #reader { max-height: none; position: static; }
  #filters .form { flex-wrap: wrap; }
}
"""


def read_passage(assistant: Assistant, href: str) -> str:
    """The reader's HTML for a chat link (`assistant.reader.read_href`): the article with
    the cited passage marked, or a line saying why there is none."""
    found = parse_read_href(href)
    if found is None:
        return reader_placeholder("That link does not point at a passage.")
    article_id, start, end = found
    return article_reader(assistant, article_id, start, end)


def article_reader(assistant: Assistant, article_id: str, start: int | None = None,
                   end: int | None = None) -> str:
    """The reader's HTML for a stored article (`body[start:end]` marked when given), or a
    line saying why it cannot be shown."""
    try:
        article = assistant.article(article_id)
    except StoreError as exc:
        return reader_placeholder(f"The article cannot be read right now: {exc.plain}.")
    if article is None:
        return reader_placeholder("This article is no longer in the news: it was deleted or "
                                  "replaced.")
    return reader_html(article, start, end)


def make_reader(assistant: Assistant) -> gr.HTML:
    """The reader panel: empty until a citation link is clicked (`READER_JS`)."""

    def read(href: str) -> str:
        return read_passage(assistant, str(href or "")[:1000])

    return gr.HTML(reader_placeholder(READER_HINT), elem_id="reader", server_functions=[read],
                   js_on_load=READER_JS, padding=True)


FOLLOW_HINT = ("Ask a question, then \"Follow this story\": what new articles add to its "
               "answer comes here.")


def last_question(history: list[dict[str, Any]]) -> str:
    """The newest question of the chat's history ("" when there is none)."""
    for turn in reversed(history or []):
        if turn.get("role") == "user" and (text := _text_of(turn.get("content")).strip()):
            return text
    return ""


def following_label(follows: list[Follow]) -> str:
    """The Following panel's title, with the count of unread updates as its badge."""
    unread = sum(f.unread for f in follows)
    return f"Following ({len(follows)})" + (f" · {unread} new" if unread else "")


def follow_choices(follows: list[Follow]) -> list[tuple[str, str]]:
    return [(f"{f.question[:80]}{f' ({f.unread} new)' if f.unread else ''}", f.id)
            for f in follows]


def follow_markdown(follow: Follow, read_upto: int) -> str:
    """A follow as the panel shows it: the updates numbered above `read_upto` (what is new
    since it was last read), each with its cited sources; or, with none new, the answer as
    of its latest update."""
    parts = [f"**{escape_text(follow.question)}**"]
    fresh = [u for u in follow.updates if u.n > read_upto]
    for update in fresh:
        shown = Answer(answer=update.text, citations=update.citations, refused=False,
                       mode="extractive")
        when = update.at[:16].replace("T", " ")
        sources = format_sources(update.citations, shown=update.text, cite_href=read_href)
        parts.append(f"*New ({when} UTC):* {link_citations(escape_text(update.text), shown)}"
                     f"\n\n{sources}")
    if not fresh:
        told = (f" ({len(follow.updates)} update(s) so far)" if follow.updates else "")
        parts.append(f"Nothing new since you last read it{told}.")
        if follow.answer is not None and not follow.answer.refused:
            parts.append(format_answer(follow.answer.answer, follow.answer))
    return "\n\n".join(parts)


def make_following(assistant: Assistant, logins: ChatLogins) -> SimpleNamespace:
    """The chat's follow functions: `follow` (the newest question, with the filter row),
    `refresh` (the panel's badge and list), `open` (one follow: what is new since it was last
    read, then marked read) and `stop`. Follows belong to the key the user logged in with."""
    book = assistant.follow_book

    def owner(request: gr.Request | None) -> str:
        return logins.owner(getattr(request, "username", None))

    def refresh(request: gr.Request) -> tuple[Any, Any]:
        follows = book.list(owner(request)) if owner(request) else []
        return (gr.Accordion(label=following_label(follows)),
                gr.Dropdown(choices=follow_choices(follows)))

    def follow(history: list[dict[str, Any]], since: str | None, until: str | None,
               sources: list[str] | None, request: gr.Request) -> tuple[str, Any, Any, Any]:
        question = last_question(history)
        who = owner(request)
        if not question or not who:
            return ("Ask a question first, then follow it.", *refresh(request), gr.update())
        try:
            made = assistant.follow(question, chat_filters(since, until, sources), owner=who)
        except QuestionError as exc:
            return (f"Sorry: {escape_text(str(exc))}.", *refresh(request), gr.update())
        except (StoreError, FollowError) as exc:
            return (f"Sorry, the story cannot be followed now: {escape_text(str(exc))}.",
                    *refresh(request), gr.update())
        label, _ = refresh(request)
        follows = book.list(who)
        return (f"Following \"{escape_text(question)}\": new reports on it will show in the "
                "Following panel.", label, gr.Dropdown(choices=follow_choices(follows),
                                                       value=made.id), gr.update())

    def open_follow(follow_id: str | None, request: gr.Request) -> tuple[str, Any, Any]:
        who = owner(request)
        before = book.get(who, follow_id) if follow_id and who else None
        if before is None:
            return FOLLOW_HINT, *refresh(request)
        read_upto = max((u.n for u in before.updates), default=0) - before.unread
        now = assistant.read_follow(before.id, who, mark_read=True) or before
        label, choices = refresh(request)
        return follow_markdown(now, read_upto), label, choices

    def stop(follow_id: str | None, request: gr.Request) -> tuple[str, Any, Any]:
        who = owner(request)
        if follow_id and who:
            book.delete(who, follow_id)
        label, _ = refresh(request)
        follows = book.list(who) if who else []
        return (FOLLOW_HINT, label, gr.Dropdown(choices=follow_choices(follows), value=None))

    return SimpleNamespace(follow=follow, refresh=refresh, open=open_follow, stop=stop)


def build_chat(assistant: Assistant, respond: Respond | None = None,
               writing: Callable[[Callable[[Any], Any]], Any] | None = None,
               add_urls: AddUrls | None = None) -> gr.Blocks:
    """The Gradio app over `assistant`: the chat, answering with `respond` (default:
    `make_respond`), and with `writing` (the server's one writer) a second tab to add and
    delete news, fetching URLs through `add_urls` (the server's, as POST /articles)."""
    with gr.Blocks(title="newsdesk") as demo:
        demo.logins = ChatLogins(assistant.settings)
        with gr.Row(elem_id="masthead"):
            gr.Markdown("## newsdesk: questions about the news, with a source for every claim",
                        elem_id="title")
            gr.Button("Light / dark", elem_id="theme-switch", size="sm", scale=0,
                      min_width=110).click(None, js=THEME_SWITCH_JS)
        header = gr.Markdown(status_line(assistant), elem_id="status")
        with gr.Tab("Ask"), gr.Row(elem_id="ask"):
            with gr.Column(scale=3, min_width=340):
                with gr.Accordion("Filters: published between, outlets", open=True,
                                  elem_id="filters"), gr.Row(equal_height=True):
                    since = gr.DateTime(include_time=False, type="string",
                                        label="Published from", elem_id="filter-since",
                                        scale=1, min_width=130)
                    until = gr.DateTime(include_time=False, type="string", label="to",
                                        elem_id="filter-until", scale=1, min_width=130)
                    outlets = gr.Dropdown(choices=outlet_choices(assistant), multiselect=True,
                                          label="Outlets (all when empty)",
                                          elem_id="filter-sources", scale=2, min_width=200)
                chat = gr.ChatInterface(
                    respond or make_respond(assistant),
                    # No auto-scroll to the bottom: the page script keeps the newest question
                    # in view, with as much of its answer under it as fits.
                    chatbot=gr.Chatbot(height=CHAT_HEIGHT, min_height=320,
                                       sanitize_html=True, render_markdown=True,
                                       autoscroll=False, buttons=["copy"], label="newsdesk",
                                       elem_id="chat"),
                    # Lists: the filter row is an input too.
                    examples=[[q] for q in example_questions()] or None,
                    cache_examples=False,
                    api_name="chat",
                    additional_inputs=[since, until, outlets],
                    fill_height=False,
                )
                with gr.Row(elem_id="follow-row"):
                    follow_button = gr.Button("Follow this story", size="sm", scale=0,
                                              min_width=160, elem_id="follow-button")
                    followed_note = gr.Markdown(elem_id="follow-note")
            with gr.Column(scale=2, min_width=300, elem_id="reader-column"):
                with gr.Accordion("Following (0)", open=False,
                                  elem_id="following") as following:
                    picker = gr.Dropdown(choices=[], label="Stories you follow",
                                         elem_id="follow-picker")
                    updates = gr.Markdown(FOLLOW_HINT, elem_id="follow-updates")
                    stop_button = gr.Button("Stop following", size="sm", elem_id="unfollow")
                make_reader(assistant)
        follows = make_following(assistant, demo.logins)
        demo.follow_fns = [follows.follow]
        follow_button.click(follows.follow, [chat.chatbot, since, until, outlets],
                            [followed_note, following, picker, updates], api_name=False)
        picker.select(follows.open, picker, [updates, following, picker], api_name=False)
        stop_button.click(follows.stop, picker, [updates, following, picker], api_name=False)
        # The badge and the list, kept fresh without a reload.
        gr.Timer(FOLLOW_REFRESH_S).tick(follows.refresh, None, [following, picker],
                                        api_name=False, queue=False, show_progress="hidden")
        demo.load(follows.refresh, None, [following, picker], queue=False)
        if writing is not None:
            with gr.Tab("Add and manage news"):
                library, listed = _library_tab(assistant, writing, add_urls, header=header,
                                               outlets=outlets)
            demo.library_fns = [library.add, library.delete]
            demo.load(library.listing, outputs=listed, queue=False)
        # On every page load: what is indexed now, and the outlets a later ingest added.
        demo.load(lambda: (status_line(assistant),
                           gr.Dropdown(choices=outlet_choices(assistant))),
                  outputs=[header, outlets])
    # Queued functions (the chat) then run only through the queue, where assistant.server.access
    # charges them; with the REST routes open, /gradio_api/run/chat would skip the rate limit.
    return demo.queue(api_open=False)


def answering_fns(demo: gr.Blocks, *fns: Callable[..., Any]) -> set[int]:
    """Ids of the app's functions that run one of `fns` (Gradio wraps them, keeping
    `__wrapped__`): for the chat's `respond`, the submit, retry, edit and example events and
    the `chat` API; for the second tab, adding and deleting news. Each costs one request."""
    return {i for i, fn in demo.fns.items() if fn.fn is not None
            and any(inspect.unwrap(fn.fn) is f for f in fns)}


def create_server(settings: Settings | None = None) -> tuple[FastAPI, Assistant]:
    """The API app with the chat mounted at `/`."""
    settings = settings or get_settings()
    assistant = Assistant(settings)
    respond = make_respond(assistant)
    served: list[FastAPI] = []  # the app's one writer, once the app exists
    demo = build_chat(assistant, respond, writing=lambda work: served[0].state.writing(work),
                      add_urls=lambda urls, on_url: served[0].state.add_urls(urls, on_url))
    charged = (answering_fns(demo, respond) | answering_fns(demo, *demo.library_fns)
               | answering_fns(demo, *demo.follow_fns))
    app = create_app(assistant, chat_fns=charged)
    served.append(app)
    app = gr.mount_gradio_app(
        app, demo, path="", ssr_mode=False, css=PAGE_CSS, js=PAGE_JS,
        # Gradio's login page asks once per browser session; a key is the password.
        auth=demo.logins.login if settings.keys else None,
        auth_message="Enter a newsdesk API key as the password (any user name).",
    )
    return app, assistant


def own_store(settings: Settings) -> store_owner.StoreLock | None:
    """Hold the embedded store directory for this server (waiting for an ingest that holds
    it to finish); `StoreBusyError` when another server serves it."""
    if settings.chroma_host:
        return None
    return store_owner.acquire(
        settings.data_dir, role="server", wait=True,
        on_wait=lambda owner: print(
            f"newsdesk: waiting for {owner.describe() if owner else 'another process'} to "
            f"finish with {settings.data_dir}...", flush=True))


def local_url(settings: Settings) -> str:
    """Where a process on this machine reaches the server."""
    host = settings.host
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://{f'[{host}]' if ':' in host else host}:{settings.port}"


def main() -> None:
    import uvicorn

    from assistant.malloc import limit_arenas

    limit_arenas(2)  # before the server's threads allocate (assistant/malloc.py says why)
    try:
        settings = get_settings()
    except ValidationError as exc:  # a setting out of range: one line per field, no traceback
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                             for e in exc.errors())
        raise SystemExit(f"newsdesk: bad settings: {problems}") from None
    try:
        check_exposure(settings)
        lock = own_store(settings)
    except (ExposureError, StoreError) as exc:
        raise SystemExit(f"newsdesk: {exc}") from None
    try:
        app, assistant = create_server(settings)
    except LLMError as exc:  # the local model (NEWSDESK_LLM_GGUF) cannot be loaded
        if lock is not None:
            lock.release()
        raise SystemExit(f"newsdesk: {exc}") from None
    # assistant.server.access reads X-Forwarded-For from NEWSDESK_TRUSTED_PROXIES only;
    # uvicorn's own reading would trust it from 127.0.0.1 before the app sees the request.
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level="info",
                            timeout_graceful_shutdown=_GRACEFUL_S, proxy_headers=False)
    server = _server_class()(config)
    print(f"newsdesk: chat and API on http://{settings.host}:{settings.port}  (docs: /docs)")

    def announce() -> None:
        # newsdesk-ingest sends its articles here once the server listens.
        while not server.started and not server.should_exit:
            threading.Event().wait(0.1)
        if lock is not None and server.started:
            lock.publish(local_url(settings))

    threading.Thread(target=announce, daemon=True).start()
    try:
        server.run()
    finally:
        assistant.close()  # the local model's server, if newsdesk runs one
        if lock is not None:
            lock.release()


def _server_class() -> type:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server, with a deadline: a stuck request (a store call that never
        returns) must not keep the process alive after SIGTERM or Ctrl-C. uvicorn shuts
        down gracefully (open streams get `_GRACEFUL_S`), and a timer ends the process
        `_EXIT_DEADLINE_S` after the signal if it is still there."""

        def handle_exit(self, sig: int, frame: Any) -> None:
            if not self.should_exit:
                timer = threading.Timer(_EXIT_DEADLINE_S, os._exit, args=(1,))
                timer.daemon = True
                timer.start()
            super().handle_exit(sig, frame)

    return Server


if __name__ == "__main__":
    main()

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
from typing import Any

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
from assistant.index import store_owner
from assistant.present import (
    SOURCES_HEADING,
    UNVERIFIED,
    UNVERIFIED_NOTE,
    escape_text,
    format_sources,
    mark_unverified,
)
from assistant.server.auth import check_exposure, key_matches
from assistant.server.writer import IngestResult
from assistant.service import Assistant
from assistant.settings import Settings, get_settings
from assistant.text import strip_bidi
from assistant.types import Answer, Filters, IngestReport, Message
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
    passage supports marked unverified, then the sources."""
    if answer is None:
        return escape_text(text)
    body = mark_unverified(answer)
    if answer.unsupported:
        body += f"\n\n{UNVERIFIED_NOTE}"
    if not answer.citations:
        return body
    return f"{body}\n\n{format_sources(answer.citations)}"


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


ARTICLE_COLUMNS = ["date", "title", "outlet", "also reported by", "id"]
RESULT_COLUMNS = ["item", "result", "detail"]


def article_rows(assistant: Assistant, query: str = "") -> list[list[str]]:
    """The stored articles, newest first, whose title or outlet (or another outlet that ran
    the story) contains `query` (any case)."""
    records, offset = [], 0
    while True:
        page = assistant.store.list_articles(offset=offset, limit=500)
        records += page
        offset += len(page)
        if len(page) < 500:
            break
    copies = assistant.store.reported_by([r.article_id for r in records])
    needle = query.strip().lower()
    rows = []
    for r in sorted(records, key=lambda r: r.published_at, reverse=True):
        also = ", ".join(c.source for c in copies.get(r.article_id, []))
        if needle and needle not in f"{r.title}\n{r.source}\n{also}".lower():
            continue
        rows.append([r.published_at[:10], strip_bidi(r.title), strip_bidi(r.source),
                     strip_bidi(also), r.article_id])
    return rows


def make_library(assistant: Assistant, writing: Callable[[Callable[[Any], Any]], Any],
                 add_urls: AddUrls | None = None,
                 ) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """The second tab's `add` (files and URLs -> summary, per-item rows, article list) and
    `delete` (id -> message, article list), writing through the server's one writer; URLs
    go through `add_urls`, the path of `POST /articles` with `urls`."""

    def add(files: list[str] | None, urls: str, query: str,
            progress: gr.Progress = gr.Progress(),  # noqa: B008 - how Gradio asks for it
            ) -> tuple[str, list[list[str]], Any]:
        paths = [Path(f) for f in files or []]
        links = [u for u in (urls or "").split() if u]
        report = IngestReport()
        rows: list[list[str]] = []
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
                rows += [[item.location, item.status, item.note or ""]
                         for item in outcome.items]
                rows += [[outcome.url, "warning", warning] for warning in outcome.warnings]
        progress(1.0, desc="Indexing")
        if paths:
            files_report = writing(lambda ing: ing.ingest(paths))
            report.merge(files_report)
            uploaded = {str(p): p.name for p in paths}
            rows += [[uploaded.get(loc, loc), status, ""]
                     for loc, _, status in files_report.articles]
            rows += [[uploaded.get(e.location, e.location), "failed", e.reason]
                     for e in files_report.errors]
        c = report.counts
        summary = (f"**{c['added']} added, {c['updated']} updated, {c['unchanged']} unchanged, "
                   f"{c['duplicate']} near-duplicate(s) of stored stories, "
                   f"{c['failed']} failed.**")
        return summary, rows, gr.update(value=article_rows(assistant, query))

    def delete(article_id: str, query: str) -> tuple[str, Any]:
        article_id = (article_id or "").strip()
        if not article_id:
            return "Pick an article in the list (or paste its id or URL) first.", gr.update()
        gone = writing(lambda ing: ing.delete(article_id))
        message = (f"Deleted {', '.join(gone)}." if gone
                   else f"No article has the id or URL {escape_text(article_id)}.")
        return message, gr.update(value=article_rows(assistant, query))

    return add, delete


def _library_tab(assistant: Assistant, writing: Callable[[Callable[[Any], Any]], Any],
                 add_urls: AddUrls | None) -> list[Callable[..., Any]]:
    add, delete = make_library(assistant, writing, add_urls)
    gr.Markdown("Upload article files (.txt .md .html .json .jsonl) or paste page and feed "
                "URLs (RSS, Atom, JSON Feed), one a line.")
    with gr.Row():
        files = gr.File(file_count="multiple", label="Files", type="filepath",
                        file_types=[".txt", ".md", ".html", ".htm", ".json", ".jsonl"])
        urls = gr.Textbox(lines=5, label="URLs of pages or feeds",
                          placeholder="https://example.com/rss.xml")
    add_button = gr.Button("Add to the news", variant="primary")
    summary = gr.Markdown()
    results = gr.Dataframe(headers=RESULT_COLUMNS, datatype="str", label="Per item",
                           interactive=False, wrap=True)
    gr.Markdown("### Articles (newest first)")
    with gr.Row():
        query = gr.Textbox(label="Search by title or outlet", scale=3)
        chosen = gr.Textbox(label="Article id or URL (pick a row)", scale=2)
        delete_button = gr.Button("Delete article", variant="stop", scale=1)
    deleted = gr.Markdown()
    articles = gr.Dataframe(headers=ARTICLE_COLUMNS, datatype="str", interactive=False,
                            wrap=True, label="Articles")

    def pick(event: gr.SelectData) -> str:
        return str(event.row_value[-1]) if event.row_value else ""

    add_button.click(add, [files, urls, query], [summary, results, articles],
                     api_name=False)
    delete_button.click(delete, [chosen, query], [deleted, articles], api_name=False)
    query.change(lambda q: article_rows(assistant, q), query, articles, api_name=False,
                 queue=False)
    articles.select(pick, None, chosen, api_name=False, queue=False)
    return [add, delete], articles


def build_chat(assistant: Assistant, respond: Respond | None = None,
               writing: Callable[[Callable[[Any], Any]], Any] | None = None,
               add_urls: AddUrls | None = None) -> gr.Blocks:
    """The Gradio app over `assistant`: the chat, answering with `respond` (default:
    `make_respond`), and with `writing` (the server's one writer) a second tab to add and
    delete news, fetching URLs through `add_urls` (the server's, as POST /articles)."""
    with gr.Blocks(title="newsdesk") as demo:
        gr.Markdown("## newsdesk: questions about the news, with a source for every claim")
        header = gr.Markdown(status_line(assistant))
        with gr.Tab("Ask"):
            with gr.Row(equal_height=True, elem_id="filters"):
                since = gr.DateTime(include_time=False, type="string", label="Published from",
                                    elem_id="filter-since", scale=1, min_width=140)
                until = gr.DateTime(include_time=False, type="string", label="to",
                                    elem_id="filter-until", scale=1, min_width=140)
                outlets = gr.Dropdown(choices=outlet_choices(assistant), multiselect=True,
                                      label="Outlets (all when empty)",
                                      elem_id="filter-sources", scale=3)
            gr.ChatInterface(
                respond or make_respond(assistant),
                chatbot=gr.Chatbot(height=560, sanitize_html=True, render_markdown=True,
                                   label="newsdesk"),
                # Lists: the filter row is an input too.
                examples=[[q] for q in example_questions()] or None,
                cache_examples=False,
                api_name="chat",
                additional_inputs=[since, until, outlets],
            )
        if writing is not None:
            with gr.Tab("Add and manage news"):
                demo.library_fns, articles = _library_tab(assistant, writing, add_urls)
            demo.load(lambda: article_rows(assistant), outputs=articles, queue=False)
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
    charged = answering_fns(demo, respond) | answering_fns(demo, *demo.library_fns)
    app = create_app(assistant, chat_fns=charged)
    served.append(app)
    key = settings.api_key.get_secret_value() if settings.api_key else None
    app = gr.mount_gradio_app(
        app, demo, path="", ssr_mode=False,
        # Gradio's login page asks once per browser session; the key is the password.
        auth=(lambda _user, password: key_matches(password, key)) if key else None,
        auth_message="Enter the newsdesk API key as the password (any user name).",
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

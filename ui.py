"""The newsdesk server: the Gradio chat and the answer endpoint in one app.

`python ui.py` serves both on NEWSDESK_HOST:NEWSDESK_PORT (default 127.0.0.1:7860): the chat at
`/`, the HTTP API at `/answer`, `/answer/stream`, `/health`, `/articles` and its docs at `/docs`.
"""

from __future__ import annotations

import html
import inspect
import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, urlsplit

import gradio as gr
from fastapi import FastAPI

from assistant.http import ExposureError, check_exposure, create_app, key_matches
from assistant.models import Answer, Citation, Message
from assistant.service import Assistant, QuestionError
from assistant.settings import Settings, get_settings

SOURCES_HEADING = "**Sources**"
EXAMPLES = [
    "What did the US refuse to exempt Japan from in the trade talks?",
    "What was the final bill for fixing the Tessaly bridge?",
    "What wage increase are the striking Carrow signal staff seeking?",
    "Which player scored the winner in the Kelby cup final?",
]
Respond = Callable[[str, list[dict[str, Any]]], Iterator[str]]
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>])")


def escape_text(text: str) -> str:
    """Article text as inert Markdown: no HTML, no links, no formatting survives."""
    # Only &, < and > need HTML escaping here; escaping quotes would make entities (&#x27;)
    # whose "#" the Markdown escaping then breaks.
    return _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(text, quote=False)).replace("\n", " ")


def safe_url(url: str) -> str:
    """An http(s) URL made safe to put inside a Markdown link, or '' for anything else."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return ""
    return quote(url.strip(), safe=":/?#@!$&'*+,;=%~")


def format_sources(citations: list[Citation]) -> str:
    """The numbered source list shown under an answer."""
    lines = [SOURCES_HEADING]
    previous = None
    for c in citations:
        if c.article_id == previous:
            head = "same article"
        else:
            title = escape_text(c.title or "Untitled")
            url = safe_url(c.url)
            head = f"[{title}]({url})" if url else title
            details = " · ".join(escape_text(x) for x in (c.source, c.published_at) if x)
            head += f" — {details}" if details else ""
        previous = c.article_id
        lines.append(f"{c.n}\\. {head}")
        lines.append(f"> {escape_text(c.passage)}")
        lines.append("")
    return "\n".join(lines).rstrip()


def format_answer(text: str, answer: Answer | None = None) -> str:
    """The chat message for an answer in progress (text only) or finished (text and sources)."""
    body = escape_text(text)
    if answer is None or not answer.citations:
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
    """Gradio's chat history as newsdesk messages, without the rendered source lists."""
    messages = []
    for turn in history:
        role = turn.get("role")
        if role not in ("user", "assistant"):
            continue
        text = _text_of(turn.get("content")).split(SOURCES_HEADING)[0]
        text = re.sub(r"\\(.)", r"\1", text).strip()  # undo our Markdown escaping
        if text:
            messages.append(Message(role=role, content=text[:20_000]))
    return messages


def status_line(assistant: Assistant) -> str:
    health = assistant.health()
    mode = ("extractive, offline: answers quote the articles"
            if health["mode"] == "extractive" else f"LLM ({assistant.settings.llm_model})")
    return (f"**{health['articles']} articles indexed** ({health['chunks']} passages) · "
            f"answer mode: {mode}")


def make_respond(assistant: Assistant) -> Respond:
    """The chat function: streams the escaped answer, then the answer with its sources."""

    def respond(message: str, history: list[dict[str, Any]]) -> Iterator[str]:
        text = ""
        try:
            for event in assistant.stream(message, history_from_chat(history)):
                if isinstance(event, Answer):
                    yield format_answer(event.answer, event)
                else:
                    text += event
                    yield format_answer(text)
        except QuestionError as exc:
            yield f"Sorry: {escape_text(str(exc))}."
        except Exception as exc:  # shown to the user; details stay in the server log
            yield f"Sorry, the answer failed ({escape_text(type(exc).__name__)})."
            raise

    return respond


def build_chat(assistant: Assistant, respond: Respond | None = None) -> gr.Blocks:
    """The Gradio chat over `assistant`, answering with `respond` (default: `make_respond`)."""
    with gr.Blocks(title="newsdesk") as demo:
        gr.Markdown("## newsdesk: questions about the news, with a source for every claim")
        header = gr.Markdown(status_line(assistant))
        gr.ChatInterface(
            respond or make_respond(assistant),
            chatbot=gr.Chatbot(height=560, sanitize_html=True, render_markdown=True,
                               label="newsdesk"),
            examples=EXAMPLES,
            cache_examples=False,
            api_name="chat",
        )
        demo.load(lambda: status_line(assistant), outputs=header)
    # Queued functions (the chat) then run only through the queue, where assistant.access
    # charges them; with the REST routes open, /gradio_api/run/chat would skip the rate limit.
    return demo.queue(api_open=False)


def answering_fns(demo: gr.Blocks, respond: Respond) -> set[int]:
    """Ids of the chat's functions that run `respond` (Gradio wraps it, keeping `__wrapped__`):
    the submit, retry, edit and example events and the `chat` API."""
    return {i for i, fn in demo.fns.items() if inspect.unwrap(fn.fn) is respond}


def create_server(settings: Settings | None = None) -> tuple[FastAPI, Assistant]:
    """The API app with the chat mounted at `/`."""
    settings = settings or get_settings()
    assistant = Assistant(settings)
    respond = make_respond(assistant)
    demo = build_chat(assistant, respond)
    app = create_app(assistant, chat_fns=answering_fns(demo, respond))
    key = settings.api_key.get_secret_value() if settings.api_key else None
    app = gr.mount_gradio_app(
        app, demo, path="", ssr_mode=False,
        # Gradio's login page asks once per browser session; the key is the password.
        auth=(lambda _user, password: key_matches(password, key)) if key else None,
        auth_message="Enter the newsdesk API key as the password (any user name).",
    )
    return app, assistant


def main() -> None:
    import uvicorn

    settings = get_settings()
    try:
        check_exposure(settings)
    except ExposureError as exc:
        raise SystemExit(f"newsdesk: {exc}") from None
    app, _ = create_server(settings)
    print(f"newsdesk: chat and API on http://{settings.host}:{settings.port}  (docs: /docs)")
    # assistant.access reads X-Forwarded-For from NEWSDESK_TRUSTED_PROXIES only; uvicorn's own
    # reading would trust it from 127.0.0.1 before the app sees the request.
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info",
                proxy_headers=False)


if __name__ == "__main__":
    main()

"""The Gradio chat: built, mounted beside the API, its chat function called; article text
always shown as inert text."""

from __future__ import annotations

import json
from pathlib import Path

import gradio as gr
import httpx
from conftest import KATO_STATEMENT, make_settings
from fastapi.testclient import TestClient

from assistant.present import citation_note, escape_text, mark_unverified, safe_url
from assistant.reader import UNKNOWN_OUTLET
from assistant.service import Assistant
from assistant.settings import Settings
from assistant.types import Answer
from ingest.pipeline import Ingestor
from ui import (
    Library,
    build_chat,
    create_server,
    history_from_chat,
    make_library,
    make_respond,
    picked_id,
    status_line,
)

HOSTILE = {
    "title": "Harbour <script>document.title='pwned'</script> festival",
    "url": "javascript:alert(1)",
    "body": "The harbour festival drew 12,000 visitors on Saturday, organisers said. "
            "<img src=x onerror=\"window.pwned=1\"> The fireworks show over the harbour "
            "lasted forty minutes. [click me](javascript:alert(2)) **bold** _em_",
}


def test_chat_function_streams_then_lists_sources(news_assistant: Assistant) -> None:
    respond = make_respond(news_assistant)
    messages = list(respond("How large is Japan's debt compared with its GDP?", []))
    assert len(messages) >= 2
    final = messages[-1]
    assert "400%" in final and "**Sources**" in final
    assert "(https://www.toutiao.com/article/7500067747854959156)" in final
    assert "Sources" not in messages[0]


def test_chat_function_passes_history(news_assistant: Assistant, seed_body: str) -> None:
    respond = make_respond(news_assistant)
    history = [{"role": "user", "content": [{"type": "text",
                                             "text": "Who is Japan's finance minister?"}]},
               {"role": "assistant", "content": "Katsunobu Kato \\[1\\]\n\n**Sources**\n1. x"}]
    assert [m.content for m in history_from_chat(history)] == [
        "Who is Japan's finance minister?", "Katsunobu Kato [1]"]
    final = list(respond("What did he say?", history))[-1]
    # "he" is the minister of the history: the answer quotes what he said in the seed article,
    # and its sources list that article.
    assert KATO_STATEMENT in seed_body
    assert "**Sources**" in final, final
    answer, sources = final.split("**Sources**")
    assert escape_text(KATO_STATEMENT) in answer
    assert "(https://www.toutiao.com/article/7500067747854959156)" in sources


def test_a_timeline_reply_goes_back_into_the_history_as_plain_text() -> None:
    from assistant.types import Citation, TimelineEntry
    from ui import format_answer

    cited = Citation(n=1, article_id="a", title="Plant", url="https://x.test/a",
                     source="Coast Daily", published_at="2026-01-12", passage="p", start=0,
                     end=1, score=0.5)
    answer = Answer(answer="On January 12, the council voted 7-2 to approve the plant. [1]",
                    citations=[cited], refused=False, mode="extractive",
                    timeline=[TimelineEntry(day="2026-01-12", text="On January 12, the council "
                                            "voted 7-2 to approve the plant.", citations=[1],
                                            outlets=["Coast Daily", "Harbor Times"])])
    shown = format_answer(answer.answer, answer)
    assert "**2026\\-01\\-12**" in shown
    asked, message = history_from_chat([{"role": "user", "content": "Is 2**10 over 1000?"},
                                        {"role": "assistant", "content": shown}])
    assert message.content == ("Timeline, oldest first:\n\n- 2026-01-12 On January 12, the "
                               "council voted 7-2 to approve the plant. [1] — also reported by "
                               "Harbor Times")
    assert asked.content == "Is 2**10 over 1000?"  # what a user typed stays as typed


def test_hostile_article_text_is_escaped(tmp_path: Path, embeddings) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "festival.json").write_text(json.dumps(HOSTILE))
    settings = Settings(_env_file=None, data_dir=tmp_path / "store", openai_api_key=None,
                        openai_base_url=None)
    Ingestor(settings, embeddings=embeddings).ingest([tmp_path / "in"])
    final = list(make_respond(Assistant(settings))("How many visitors came to the harbour "
                                                   "festival?", []))[-1]
    assert "12,000" in final
    for raw in ("<script", "<img", "](javascript", "**bold**"):
        assert raw not in final
    assert "&lt;img" in final or "&lt;script" in final


def test_unverified_sentences_are_marked_and_the_marks_leave_the_history() -> None:
    answer = Answer(answer="The bridge reopened [1]. A stadium opens next spring [1].",
                    citations=[], refused=False, mode="llm", unsupported=[1])
    shown = mark_unverified(answer)
    assert shown == (r"The bridge reopened \[1\]\. A stadium opens next spring \[1\]\. "
                     "⚠ *unverified*")
    streamed = "The bridge reopened [2]. A stadium opens next spring [1]."
    assert citation_note(streamed, answer) == (
        "**Citation check**\n- sentence 1 cites [1] (not [2])\n"
        "- sentence 2: ⚠ *unverified*, no retrieved passage supports it")
    assert citation_note(answer.answer, answer.model_copy(update={"unsupported": []})) == ""
    from ui import format_answer

    history = [{"role": "assistant", "content": format_answer(answer.answer, answer)}]
    assert [m.content for m in history_from_chat(history)] == [answer.answer]


def test_escaping_and_url_rules() -> None:
    assert escape_text("<b>[x](y)</b>") == r"&lt;b&gt;\[x\]\(y\)&lt;/b&gt;"
    assert escape_text("the railway's 'operator'") == "the railway's 'operator'"
    assert safe_url("javascript:alert(1)") == ""
    assert safe_url("https://a.test/x (1)") == "https://a.test/x%20%281%29"


def test_bidi_controls_never_reach_the_chat() -> None:
    shown = escape_text("Invoice \u202eexe.txt\u202c \u2066x\u2069 \u200f\u061c")
    assert shown == r"Invoice exe\.txt x "


def test_server_serves_chat_and_api_together(news_store: Settings) -> None:
    app, assistant = create_server(news_store)
    client = TestClient(app)
    page = client.get("/")
    assert page.status_code == 200 and "<html" in page.text.lower()
    assert client.get("/health").json()["articles"] == assistant.store.count_articles()
    assert client.post("/answer", json={"question": "What is Japan's debt-to-GDP ratio?"}
                       ).status_code == 200
    assert isinstance(build_chat(assistant), gr.Blocks)


def test_chat_uploads_article_files_up_to_the_article_limit(news_store: Settings) -> None:
    client = TestClient(create_server(news_store)[0])
    limit = news_store.max_article_bytes
    line = b"The harbour board met again on Tuesday to discuss the ferry timetable.\n"

    def upload(size: int) -> httpx.Response:
        body = (line * (size // len(line) + 1))[:size]
        return client.post("/gradio_api/upload", files={"files": ("story.txt", body)})

    for size in (1_500_000, limit):  # over the 1 MiB request limit of the API
        response = upload(size)
        assert response.status_code == 200, response.text
        [path] = response.json()
        assert Path(path).stat().st_size == size
    too_large = upload(limit + 20_000)
    assert too_large.status_code == 413
    assert too_large.json()["detail"] == f"request body over {limit + 16_384} bytes"


def test_chat_filters_narrow_the_answer_and_bad_dates_are_explained(
        news_assistant: Assistant) -> None:
    respond = make_respond(news_assistant)
    question = "What wage increase are the striking Carrow signal staff seeking?"
    *_, last = respond(question, [], "2026-01-19", "2026-01-19", ["The Midland Ledger"])
    assert "Carrow" in last and "The Midland Ledger" in last
    *_, last = respond(question, [], None, None, ["Valley Courier"])
    assert "The Midland Ledger" not in last
    *_, last = respond(question, [], "19/01/2026", None, [])
    assert last.startswith("Sorry: the date") and "2026\\-01\\-31" in last
    *_, last = respond(question, [], "2026-02-01", "2026-01-01", None)
    assert "after" in last


QUARRY = ("The Linden council approved the quarry expansion on Monday by six votes to three. "
          "Residents had opposed the plan for a year, citing dust and lorry traffic on the "
          "narrow lanes around the village. The company says it will plant a screen of trees "
          "and limit blasting to weekday mornings.")
# Stories for the second tab: one from an outlet, its copy from another, one naming none.
TAB_STORIES = {
    "quarry.json": {"title": "Quarry expansion approved by Linden council",
                    "source": "Linden Post", "url": "https://linden-post.test/quarry",
                    "published_at": "2026-02-03", "body": QUARRY},
    # The same story from another outlet: a near-duplicate, stored as "also reported by".
    "quarry-copy.json": {"title": "Linden quarry gets the go-ahead",
                         "source": "Valley Courier", "url": "https://courier.test/quarry",
                         "published_at": "2026-02-04", "body": QUARRY},
    "orchard.json": {"title": "Orchard co-op opens a cider press",
                     "published_at": "2026-02-05",
                     "body": "A fruit growers' co-operative in Ashvale opened a shared cider "
                             "press on Saturday. Members can book it by the hour."},
}


def _tab(tmp_path: Path) -> tuple[Assistant, Library, list[str]]:
    """A library tab's functions over an empty store, writing as the server does, and the
    paths of `TAB_STORIES` to upload."""
    from wiring import create_app

    assistant = Assistant(make_settings(tmp_path / "store"))
    app = create_app(assistant)
    folder = tmp_path / "upload"
    folder.mkdir()
    for name, story in TAB_STORIES.items():
        (folder / name).write_text(json.dumps(story))
    return (assistant, make_library(assistant, app.state.writing, app.state.add_urls),
            [str(folder / name) for name in TAB_STORIES])


def _select(rows: list[list[str]], index: int) -> gr.SelectData:
    """The event of a click on row `index` of a table showing `rows` without their ids."""
    shown = rows[index][:-1]
    return gr.SelectData(None, {"index": [index, 1], "value": shown[1], "row_value": shown})


def test_second_tab_updates_the_header_counts_and_deletes_only_on_confirm(
        tmp_path: Path, embeddings) -> None:
    assistant, tab, paths = _tab(tmp_path)
    assert "**0 articles indexed**" in status_line(assistant)
    summary, shown, results, table, listed, header, outlets = tab.add(
        paths, "", "", progress=lambda *a, **k: None)
    assert summary.startswith("**2 added")
    assert header == status_line(assistant) and "**2 articles indexed**" in header
    assert ("Linden Post (1)", "Linden Post") in outlets.choices
    assert [row[:-1] for row in results] == shown and len(table["value"]) == 2
    quarry = next(row[-1] for row in listed if row[1].startswith("Quarry"))

    # Delete asks first; nothing is deleted until the confirm, and a confirm with nothing
    # asked about deletes nothing.
    row, question, pending, message = tab.ask_delete(quarry)
    assert row["visible"] is True and pending == quarry and message == ""
    assert "Really delete" in question and "Quarry expansion approved" in question
    assert assistant.store.count_articles() == 2
    message, row, pending, *_, header, _ = tab.delete("", "")
    assert message.startswith("Nothing deleted") and "**2 articles indexed**" in header
    message, row, pending, table, listed, header, outlets = tab.delete(quarry, "")
    assert message.startswith(f"Deleted {quarry}") and row["visible"] is False and pending == ""
    assert "**1 articles indexed**" in header and assistant.store.count_articles() == 1
    assert [r[1] for r in listed] == ["Orchard co-op opens a cider press"]
    assert "Linden Post" not in str(outlets.choices)
    hidden, _, pending, message = tab.ask_delete("no-such-article")
    assert hidden["visible"] is False and pending == "" and message.startswith("No article")


def test_the_delete_button_only_asks_and_the_confirm_button_deletes(
        news_store: Settings) -> None:
    assistant = Assistant(news_store)
    demo = build_chat(assistant, writing=lambda work: None)
    triggers = {fn.name: [demo.blocks[target].value for target, event in fn.targets
                          if event == "click"]
                for fn in demo.fns.values() if fn.name in ("ask_delete", "delete")}
    assert triggers == {"ask_delete": ["Delete article"], "delete": ["Yes, delete it"]}


def test_a_picked_row_opens_the_reader_and_an_unnamed_outlet_is_unknown(
        tmp_path: Path, embeddings) -> None:
    _, tab, paths = _tab(tmp_path)
    _, shown, results, _, listed, _, _ = tab.add(paths, "", "", progress=lambda *a, **k: None)
    orchard = next(i for i, row in enumerate(listed) if row[1].startswith("Orchard"))
    assert listed[orchard][2] == UNKNOWN_OUTLET
    assert tab.listing("unknown outlet")[1] == [listed[orchard]]  # the search finds it too
    html = tab.read(picked_id(listed, _select(listed, orchard)))
    assert "<h2>Orchard co-op opens a cider press</h2>" in html
    assert "A fruit growers&#x27; co-operative in Ashvale" in html
    assert UNKNOWN_OUTLET in html
    # In a table the browser sorted, the row's values decide, not its place.
    event = gr.SelectData(None, {"index": [1 - orchard, 0], "value": "",
                                 "row_value": listed[orchard][:-1]})
    assert picked_id(listed, event) == listed[orchard][-1]

    quarry = next(i for i, row in enumerate(results) if row[0] == "quarry.json")
    assert "Quarry expansion approved" in tab.read(picked_id(results, _select(results, quarry)))
    # A near-duplicate's row opens the story stored in its place.
    copy = next(i for i, row in enumerate(results) if row[0] == "quarry-copy.json")
    assert results[copy][1:3] == ["duplicate",
                                  "same story as “Quarry expansion approved by Linden council”"]
    assert "Also reported by Valley Courier" in tab.read(
        picked_id(results, _select(results, copy)))
    assert [row for row in listed if row[2] == "Linden Post (also Valley Courier)"]
    assert "no article" in tab.read(picked_id([["bad.txt", "failed", "unreadable", ""]],
                                              _select([["bad.txt", "failed", "x", ""]], 0)))

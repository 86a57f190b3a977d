"""How an answer reads: the chat's Markdown Sources list grouped by article, and the plain text
API clients get."""

from __future__ import annotations

from assistant.present import citation_note, format_sources, plain_answer, plain_sources
from assistant.types import Answer, Citation, ReportedBy

STRIKE_URL = "https://midland-ledger.test/2026/01/carrow-rail-strike"
FIRST = "About 1,450 workers began a 72-hour strike on 2026-01-19."
SECOND = "The union wants a 7.5 percent rise."
THIRD = "Trains will run again on Thursday, the company said."


def cite(n: int, passage: str, article_id: str = "strike", **fields: object) -> Citation:
    values: dict[str, object] = {
        "n": n, "article_id": article_id, "passage": passage, "start": 0, "end": len(passage),
        "score": 0.5, "title": "Rail workers begin 72-hour strike", "url": STRIKE_URL,
        "source": "The Midland Ledger", "published_at": "2026-01-19"}
    values.update(fields)
    return Citation.model_validate(values)


def three_citations() -> list[Citation]:
    """Markers 1 and 3 in the strike article, 2 in another one."""
    return [cite(1, FIRST), cite(2, "The bridge reopened.", "bridge", title="Bridge reopens",
                                 url="https://gazette.test/bridge", source="Port Gazette",
                                 published_at="2026-04-02"),
            cite(3, THIRD)]


def test_sources_are_grouped_by_article_in_order_of_first_citation() -> None:
    shown = format_sources(three_citations())
    assert shown.splitlines() == [
        "**Sources**",
        "",
        f"- [Rail workers begin 72\\-hour strike]({STRIKE_URL}) — The Midland Ledger · "
        "2026\\-01\\-19",
        "  - \\[1\\] About 1,450 workers began a 72\\-hour strike on 2026\\-01\\-19\\.",
        "  - \\[3\\] Trains will run again on Thursday, the company said\\.",
        "- [Bridge reopens](https://gazette.test/bridge) — Port Gazette · 2026\\-04\\-02",
        "  - \\[2\\] The bridge reopened\\.",
    ]
    assert "same article" not in shown


def test_a_passage_the_answer_shows_is_not_quoted_again() -> None:
    # The answer quotes passages 1 and 2 (white space aside), not passage 3.
    answer = f"{FIRST.replace(' ', '  ')} [1] The bridge\nreopened. [2] Strikers met. [3]"
    shown = format_sources(three_citations(), shown=answer)
    assert "About 1,450" not in shown and "bridge reopened" not in shown
    assert "  - \\[1\\]\n  - \\[3\\] Trains will run again" in shown
    assert shown.endswith("2026\\-04\\-02\n  - \\[2\\]")
    # Consecutive markers shown in the answer share one line.
    both = [cite(1, FIRST), cite(2, SECOND)]
    assert format_sources(both, shown=f"{FIRST} [1] {SECOND} [2]").endswith(
        "2026\\-01\\-19\n  - \\[1\\] \\[2\\]")


def test_markers_link_where_cite_href_says() -> None:
    shown = format_sources(three_citations(), shown=FIRST,
                           cite_href=lambda c: f"/read/{c.article_id}?at={c.start} (x)")
    assert "  - [\\[1\\]](/read/strike?at=0%20%28x%29)\n" in shown
    assert "  - [\\[3\\]](/read/strike?at=0%20%28x%29) Trains will run again" in shown
    # A link of any other scheme is dropped, the marker kept.
    hostile = format_sources([cite(1, FIRST)], cite_href=lambda c: "javascript:alert(1)")
    assert "javascript" not in hostile and "  - \\[1\\] About" in hostile


def test_article_text_stays_inert_and_a_missing_outlet_is_unknown() -> None:
    hostile = cite(1, "<img src=x onerror=alert(1)> [click](javascript:alert(2)) **bold**",
                   title="Harbour <script>x</script> [fest](javascript:alert(3))",
                   url="javascript:alert(4)", source="", published_at="",
                   also_reported_by=[ReportedBy(article_id="b", title="t", source="*Coast*",
                                                url="javascript:alert(5)", published_at="")])
    shown = format_sources([hostile])
    for raw in ("<img", "<script", "](javascript", "**bold**", "*Coast*"):
        assert raw not in shown
    assert shown.splitlines()[2] == (
        "- Harbour &lt;script&gt;x&lt;/script&gt; \\[fest\\]\\(javascript:alert\\(3\\)\\) — "
        "unknown outlet — also reported by \\*Coast\\*")
    assert format_sources([hostile], quotes=False).splitlines()[2].startswith(
        "- \\[1\\] Harbour &lt;script&gt;")


def test_plain_sources_give_one_line_per_article_without_escapes() -> None:
    citations = [*three_citations(), cite(4, SECOND, url="javascript:alert(1)")]
    citations[1].also_reported_by = [ReportedBy(
        article_id="c", title="Bridge", url="https://coast.test/b", source="Coast Daily",
        published_at="2026-04-03")]
    assert plain_sources(citations).splitlines() == [
        "Sources:",
        f"- [1][3][4] Rail workers begin 72-hour strike — The Midland Ledger · 2026-01-19 — "
        f"{STRIKE_URL}",
        "- [2] Bridge reopens — Port Gazette · 2026-04-02 — https://gazette.test/bridge — "
        "also reported by Coast Daily (https://coast.test/b)",
    ]
    odd = cite(1, FIRST, title="Two\nlines \u202eevil", source="", published_at="",
               url="ftp://x.test/a")
    assert plain_sources([odd]).splitlines()[1] == "- [1] Two lines evil — unknown outlet"


def test_plain_answer_and_note_carry_no_markdown() -> None:
    answer = Answer(answer="Fares rose 5-10% on 2026-01-19 [1]. A stadium opens \u202espring [1].",
                    citations=[], refused=False, mode="llm", unsupported=[1])
    assert plain_answer(answer) == ("Fares rose 5-10% on 2026-01-19 [1]. A stadium opens "
                                    "spring [1]. ⚠ unverified")
    assert citation_note(answer.answer, answer, plain=True) == (
        "Citation check:\n- sentence 2: ⚠ unverified, no retrieved passage supports it")

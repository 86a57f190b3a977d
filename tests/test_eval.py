"""newsdesk-eval: every metric on hand-built passages and answers whose right value is known,
the command end to end on tiny invented corpora (tests/data/eval, both formats, both modes),
and a slow CI slice of the MultiHop-RAG dev questions with floors on the figures."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, SHARED_DATA, make_settings
from openai_stub import REFUSAL, OpenAIStub, last_user_text

from assistant.types import Passage
from evals import follows as follow_eval
from evals.metrics import (
    METRIC_KEYS,
    EvalQuestion,
    EvidenceItem,
    QuestionResult,
    answer_correct,
    contains_answer,
    hits_item,
    locate_fact,
    score_retrieval,
    summarise,
    summarise_by_type,
)
from evals.run import load_articles, load_questions, main
from ingest.metadata import to_article
from ingest.readers import from_record

DATA = ROOT / "tests" / "data" / "eval"
MULTIHOP = SHARED_DATA / "multihop"

# Floors for the CI slice (test_multihop_dev_slice_meets_floors): the first SLICE_QUESTIONS dev
# questions (16 with evidence, 4 null) over their 27 evidence articles plus SLICE_OTHER_ARTICLES
# others. Measured 2026-11-25 at commit 8b4ac667 (hybrid retrieval, outlet/date awareness,
# name-first extractive answers): hits_at_4 1.000, hits_at_10 1.000, mrr_at_10 0.740,
# allhit_at_10 0.625, inference_accuracy 1.000 (of 7), citation_precision 0.938,
# rejection_rate 1.000 (of 4), false_rejection_rate 0.000. One question of 16 moves a rate by
# 0.0625: the floors allow about one or two. Re-measure (pytest -m slow -s prints the figures)
# and move them when retrieval or answering changes.
SLICE_FLOORS = {
    "hits_at_4": 0.875,
    "hits_at_10": 0.90,
    "mrr_at_10": 0.65,
    "allhit_at_10": 0.50,
    "inference_accuracy": 0.60,
    "citation_precision": 0.85,
    "rejection_rate": 0.75,
}
SLICE_MAX_FALSE_REJECTION = 0.15
SLICE_QUESTIONS = 20
SLICE_OTHER_ARTICLES = 60


# -- helpers -----------------------------------------------------------------------------


def passage(external_id: str, start: int = 0, end: int = 100, text: str = "") -> Passage:
    """A retrieved chunk of dataset article `external_id` covering [start, end)."""
    return Passage(chunk_id=f"{external_id}:{start}", article_id=f"store-{external_id}",
                   title="", url="", source="", published_at="", lang="en", text=text,
                   index=0, start=start, end=end, score=0.5, external_id=external_id)


def result(type_: str = "inference", answerable: bool = True, **fields: Any) -> QuestionResult:
    fields.setdefault("n_evidence", 2 if answerable else 0)
    return QuestionResult(id="q", type=type_, answerable=answerable, **fields)


def run_eval(tmp_path: Path, articles: Path, questions: Path, *args: str,
             cache: Path | None = None) -> dict[str, Any]:
    out = tmp_path / f"report-{len(list(tmp_path.glob('report-*.json')))}.json"
    code = main([str(articles), str(questions), "--json", str(out), "--quiet",
                 "--cache-dir", str(cache or tmp_path / "cache"), *args])
    assert code == 0
    return json.loads(out.read_text())


# -- retrieval matching ------------------------------------------------------------------


def test_fact_is_located_at_its_offsets_elsewhere_or_across_whitespace() -> None:
    body = "Intro line.\nThe mayor  resigned on\nMonday. Later: The mayor resigned."
    assert locate_fact(body, "Intro line.", 0) == (0, 11)
    # Not at the hint: the occurrence nearest the hint wins.
    later = body.index("The mayor resigned.")
    assert locate_fact(body, "The mayor resigned.", later + 3) == (later, later + 19)
    # Only with whitespace ignored.
    start = body.index("The mayor  resigned on")
    assert locate_fact(body, "The mayor resigned on Monday.", 0) == (start, start + 30)
    assert locate_fact(body, "The governor resigned.", 0) is None
    assert locate_fact(body, "   ", 0) is None


def test_evidence_is_located_in_the_cleaned_body_not_the_given_one() -> None:
    # The ferry article's raw body has \r\n and double spaces that cleaning normalises, so the
    # dataset's fact offsets are off in the stored body.
    articles = load_articles(DATA / "multihop_articles.jsonl")
    questions = load_questions(DATA / "multihop_questions.jsonl", articles)
    ferry = next(a for a in articles if a.dataset_id == "mh-a-ferry")
    body = to_article(from_record(ferry.location, ferry.record)).body
    raw = [json.loads(x) for x in (DATA / "multihop_questions.jsonl").read_text().splitlines()]
    moved = 0
    for question, record in zip(questions, raw, strict=True):
        for item, given in zip(question.evidence, record["evidence"], strict=True):
            assert item.span is not None
            if item.article == "mh-a-ferry":
                assert body[item.span[0]:item.span[1]] == item.fact
                moved += item.span != (given["fact_start"], given["fact_end"])
    assert moved >= 2
    assert questions[3].type == "null" and not questions[3].answerable
    assert questions[3].evidence == ()


def test_chunk_hits_an_evidence_item_when_its_span_overlaps_the_fact() -> None:
    item = EvidenceItem("a1", "The fact.", span=(100, 150))
    assert hits_item(passage("a1", 0, 101), item)
    assert hits_item(passage("a1", 149, 300), item)
    assert hits_item(passage("a1", 110, 120), item)
    assert not hits_item(passage("a1", 0, 100), item)  # [start, end): touching is no overlap
    assert not hits_item(passage("a1", 150, 300), item)
    assert not hits_item(passage("a2", 100, 150), item)  # another article


def test_without_offsets_the_fact_must_be_in_the_chunk_whitespace_ignored() -> None:
    item = EvidenceItem("a1", "Rates rose\nby 2 percent.")
    assert hits_item(passage("a1", text="Then Rates  rose by 2\npercent. More."), item)
    assert not hits_item(passage("a1", text="Then rates rose by 3 percent."), item)
    assert not hits_item(passage("a2", text="Rates rose by 2 percent."), item)
    # RGB: any chunk of a positive passage hits.
    assert hits_item(passage("p1", text="anything"), EvidenceItem("p1"))


def test_first_hit_rank_and_items_hit_in_the_top_ten() -> None:
    evidence = [EvidenceItem("a", span=(0, 10)), EvidenceItem("b", span=(0, 10)),
                EvidenceItem("c", span=(0, 10))]
    ranked = [passage("x"), passage("a", 50, 80), passage("b", 5, 30), passage("a", 0, 40)]
    assert score_retrieval(ranked, evidence) == (3, 2)
    # A hit below rank 10 is a first hit (for Hits@k with k > 10) but no item for Recall@10.
    late = [passage("x")] * 10 + [passage("c", 0, 5)]
    assert score_retrieval(late, evidence) == (11, 0)
    assert score_retrieval([], evidence) == (None, 0)


# -- answers -----------------------------------------------------------------------------


def test_answer_appears_case_insensitively_as_a_whole_word() -> None:
    assert contains_answer("No. The report came later [1].", "no")
    assert not contains_answer("The news does not say.", "no")  # "no" is not in "not"
    assert contains_answer("Yes, both did [2].", "Yes")
    assert contains_answer("It rose 12% last year", "12%")
    assert not contains_answer("It rose 120% last year", "12")
    assert contains_answer("Won by (Sam Bankman-Fried)", "sam bankman-fried")
    assert contains_answer("死亡人数为12人。", "12人")  # no word boundaries in Chinese
    assert not contains_answer("anything", "")


def test_every_gold_element_must_match_and_a_list_element_needs_any_string() -> None:
    assert answer_correct("Aska and Tind were born", ["Aska", "Tind"])
    assert not answer_correct("Aska was born", ["Aska", "Tind"])
    assert answer_correct("on 21 July 2017", [["July 21, 2017", "21 July 2017"]])
    assert answer_correct("1月3日和1月12日", [["1月3日", "1月三日"], "1月12日"])
    assert not answer_correct("1月3日", [["1月3日"], ["1月12日"]])
    assert not answer_correct("anything", [])


# -- summary figures ---------------------------------------------------------------------


def test_summary_figures_on_hand_built_results() -> None:
    results = [
        # inference: hit at rank 1, both items, right answer, 2 of 3 citations good.
        result("inference", first_hit=1, items_hit=2, correct=True, citations=3,
               good_citations=2, answer_ms=10, retrieve_ms=1),
        # comparison: hit at rank 5, one item of two, wrong answer, 1 good citation of 1.
        result("comparison", first_hit=5, items_hit=1, citations=1, good_citations=1,
               answer_ms=20, retrieve_ms=2),
        # temporal: no hit in the top 10, refused (its citations do not count).
        result("temporal", first_hit=12, items_hit=0, refused=True, answer_ms=30,
               retrieve_ms=3),
        # null: refused (right), then null: answered (wrong), its citations never count.
        result("null", answerable=False, refused=True, answer_ms=40, retrieve_ms=4),
        result("null", answerable=False, citations=2, answer_ms=50, retrieve_ms=5),
    ]
    figures = summarise(results, "extractive")
    assert list(figures) == list(METRIC_KEYS)
    assert figures["questions"] == 5
    assert figures["hits_at_1"] == pytest.approx(1 / 3, abs=1e-4)
    assert figures["hits_at_4"] == pytest.approx(1 / 3, abs=1e-4)
    assert figures["hits_at_5"] == pytest.approx(2 / 3, abs=1e-4)
    assert figures["hits_at_10"] == pytest.approx(2 / 3, abs=1e-4)
    assert figures["recall_at_10"] == pytest.approx((1 + 0.5 + 0) / 3, abs=1e-4)
    assert figures["allhit_at_10"] == pytest.approx(1 / 3, abs=1e-4)
    assert figures["mrr_at_10"] == pytest.approx((1 + 1 / 5 + 0) / 3, abs=1e-4)
    assert figures["answer_accuracy"] == pytest.approx(1 / 3, abs=1e-4)
    assert figures["inference_accuracy"] == 1.0
    assert figures["citation_precision"] == 0.75
    assert figures["rejection_rate"] == 0.5
    assert figures["false_rejection_rate"] == pytest.approx(1 / 3, abs=1e-4)
    assert figures["latency_p50_ms"] == 30
    assert figures["latency_p95_ms"] == pytest.approx(48.0)
    assert figures["retrieve_p50_ms"] == 3
    assert figures["mode"] == "extractive"

    by_type = summarise_by_type(results, "extractive")
    assert list(by_type) == ["inference", "comparison", "temporal", "null"]
    null = by_type["null"]
    assert null["questions"] == 2 and null["rejection_rate"] == 0.5
    for key in ("hits_at_10", "mrr_at_10", "answer_accuracy", "inference_accuracy",
                "citation_precision", "false_rejection_rate"):
        assert null[key] is None, key  # no question to compute it on: None, not 0
    assert by_type["comparison"]["inference_accuracy"] is None
    assert by_type["temporal"]["citation_precision"] is None  # refused: no citations


def test_retrieval_figures_skip_answerable_questions_without_evidence() -> None:
    # RGB-shaped questions without positive_ids still count for answers, not for retrieval.
    figures = summarise([result("answerable", n_evidence=0, correct=True)], "extractive")
    assert figures["hits_at_10"] is None and figures["recall_at_10"] is None
    assert figures["answer_accuracy"] == 1.0
    assert summarise([], "llm")["questions"] == 0


# -- the command -------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_env_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """main() reads settings like the other commands (environment, ./.env): run it away from
    any developer .env."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One eval cache for the module: the tiny corpora are ingested once."""
    return tmp_path_factory.mktemp("eval-cache")


def test_multihop_end_to_end(tmp_path: Path, cache: Path) -> None:
    report = run_eval(tmp_path, DATA / "multihop_articles.jsonl",
                      DATA / "multihop_questions.jsonl", cache=cache)
    assert set(METRIC_KEYS) | {"by_type"} <= set(report)
    assert report["questions"] == 4 and report["mode"] == "extractive"
    assert list(report["by_type"]) == ["inference", "comparison", "temporal", "null"]
    for figures in report["by_type"].values():
        assert list(figures) == list(METRIC_KEYS)
    # Four one-chunk articles: the top 10 holds every chunk, so every evidence item is hit.
    for key in ("hits_at_10", "recall_at_10", "allhit_at_10"):
        assert report[key] == 1.0, key
    per = {q["id"]: q for q in report["per_question"]}
    # Each answerable question uses its evidence article's own words (the ferry operator, the
    # bakery chain, the council's bridge): that article is retrieved first and cited first.
    for qid, first in (("mh-q1", "mh-a-ferry"), ("mh-q2", "mh-a-bakery"),
                       ("mh-q3", "mh-a-council")):
        assert per[qid]["first_hit"] == 1 and per[qid]["retrieved"][0] == first, per[qid]
        assert not per[qid]["refused"] and per[qid]["cited"][0] == first, per[qid]
    assert report["mrr_at_10"] == 1.0 and report["hits_at_1"] == 1.0
    assert report["false_rejection_rate"] == 0.0
    # The inference question's answer names the operator, and quotes only the ferry article.
    assert per["mh-q1"]["correct"] and "Bluewake Shipping" in per["mh-q1"]["answer"]
    assert set(per["mh-q1"]["cited"]) == {"mh-a-ferry"}
    assert report["inference_accuracy"] == 1.0
    # The Nobel prize question is about nothing ingested: refused, nothing cited.
    assert per["mh-q4"]["refused"] and per["mh-q4"]["cited"] == []
    assert per["mh-q4"]["answer"].startswith("The ingested news does not say")
    null = report["by_type"]["null"]
    assert null["questions"] == 1 and null["hits_at_10"] is None
    assert null["rejection_rate"] == 1.0 and null["answer_accuracy"] is None
    # The summary is the per-question results counted: citations of answered questions only.
    answered = [q for q in report["per_question"] if q["answerable"] and not q["refused"]]
    assert report["citation_precision"] == pytest.approx(
        sum(q["good_citations"] for q in answered) / sum(q["citations"] for q in answered),
        abs=1e-4)
    assert report["latency_p50_ms"] > 0 and report["retrieve_p50_ms"] > 0
    assert report["ingest"]["added"] + report["ingest"]["unchanged"] == 4
    assert [q["id"] for q in report["per_question"]] == ["mh-q1", "mh-q2", "mh-q3", "mh-q4"]


def test_rerun_reuses_the_cached_store(tmp_path: Path, cache: Path) -> None:
    first = run_eval(tmp_path, DATA / "multihop_articles.jsonl",
                     DATA / "multihop_questions.jsonl", cache=cache)
    again = run_eval(tmp_path, DATA / "multihop_articles.jsonl",
                     DATA / "multihop_questions.jsonl", "--limit", "2", cache=cache)
    assert again["store"] == first["store"] and Path(again["store"]).is_dir()
    assert again["ingest"] == {"added": 0, "updated": 0, "unchanged": 4, "duplicate": 0,
                               "failed": 0}
    assert again["questions"] == 2
    fresh = run_eval(tmp_path, DATA / "multihop_articles.jsonl",
                     DATA / "multihop_questions.jsonl", "--limit", "2", "--fresh", cache=cache)
    assert fresh["store"] is None and fresh["ingest"]["added"] == 4
    for key in ("hits_at_1", "mrr_at_10", "answer_accuracy"):
        assert fresh[key] == again[key], key


def test_rgb_end_to_end(tmp_path: Path, cache: Path) -> None:
    report = run_eval(tmp_path, DATA / "rgb_corpus.jsonl", DATA / "rgb_questions.jsonl",
                      cache=cache)
    assert list(report["by_type"]) == ["answerable", "unanswerable"]
    assert report["questions"] == 4
    answerable, unanswerable = report["by_type"]["answerable"], report["by_type"]["unanswerable"]
    assert answerable["questions"] == 3 and unanswerable["questions"] == 1
    # Five one-chunk passages: all in the top 10; one positive passage per question.
    assert answerable["hits_at_10"] == 1.0 and answerable["allhit_at_10"] == 1.0
    assert unanswerable["hits_at_10"] is None and unanswerable["false_rejection_rate"] is None
    assert report["inference_accuracy"] is None
    per = {q["id"]: q for q in report["per_question"]}
    # Each answerable question is answered (both cub names for rgb-q3, the list alternative
    # "260" for rgb-q2) from its positive passage, retrieved and cited first.
    for qid, positive in (("rgb-q1", "p-kite-1"), ("rgb-q2", "p-mine-1"),
                          ("rgb-q3", "p-zoo-1")):
        assert per[qid]["correct"] and not per[qid]["refused"], per[qid]
        assert per[qid]["first_hit"] == 1 and per[qid]["cited"][0] == positive, per[qid]
    assert answerable["answer_accuracy"] == 1.0 and answerable["mrr_at_10"] == 1.0
    assert answerable["false_rejection_rate"] == 0.0
    # The hockey final's passage is not in the corpus: refused without a citation.
    assert per["rgb-q4"]["refused"] and per["rgb-q4"]["cited"] == []
    assert unanswerable["rejection_rate"] == 1.0


def test_table_per_type_and_overall_on_stdout(tmp_path: Path, cache: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    code = main([str(DATA / "rgb_corpus.jsonl"), str(DATA / "rgb_questions.jsonl"),
                 "--cache-dir", str(cache), "--limit", "1"])
    out = capsys.readouterr().out
    assert code == 0
    for word in ("answerable", "overall", "hits_at_10", "rejection_rate", "retrieve_p50_ms"):
        assert word in out


@pytest.mark.parametrize(("name", "content", "where"), [
    ("questions.jsonl", '{"question": "q", "answers": ["a"]}\n{"question": "q2",\n', ":2:"),
    ("questions.jsonl", '{"question": "What?", "gold": "x"}\n', ":1: neither"),
    ("questions.jsonl", '{"question": "q", "type": "inference", "answer": "a", '
                        '"evidence": [{"fact": "f"}]}\n', "article_id"),
    ("questions.jsonl", '{"question": "", "answers": ["a"]}\n', "'question'"),
    ("articles.jsonl", '{"id": "a1", "title": "no body"}\n', ":1: no article text"),
    ("articles.jsonl", "[1, 2]\n", ":1: expected a JSON object"),
])
def test_bad_input_names_the_file_and_line_and_exits_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: str,
        where: str) -> None:
    files = {"articles.jsonl": (DATA / "rgb_corpus.jsonl").read_text(),
             "questions.jsonl": (DATA / "rgb_questions.jsonl").read_text(), name: content}
    for file, text in files.items():
        (tmp_path / file).write_text(text)
    code = main([str(tmp_path / "articles.jsonl"), str(tmp_path / "questions.jsonl"),
                 "--cache-dir", str(tmp_path / "cache")])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2
    assert str(tmp_path / name) in err and where in err


# -- LLM mode ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stub() -> Iterator[OpenAIStub]:
    with OpenAIStub() as server:
        yield server


GOLD_REPLIES = {  # question start -> what the stub model answers
    "Which company": "Bluewake Shipping said ticket prices would not change. [1]",
    "Did the Valley Courier": "Yes. Both reported news from Lorvik. [1][2]",
    "Was the cycle bridge": "Yes, the bridge came first. [1]",  # gold: No
    "Who won the Nobel": REFUSAL,
}


def scripted_reply(question: str) -> str:
    return next((reply for start, reply in GOLD_REPLIES.items() if question.startswith(start)),
                REFUSAL)


def scripted(messages: list[dict[str, Any]]) -> str:
    return scripted_reply(last_user_text(messages).rsplit("Question:", 1)[-1].strip())


def prompt_articles(request: dict[str, Any]) -> tuple[str, list[str]]:
    """The question of a chat request and the dataset ids of its passages, [1] first."""
    text = last_user_text(request["messages"])
    passages, question = text.split("Passages (JSON, quoted data only):", 1)[1].rsplit(
        "Question:", 1)
    ids = {a.record["title"]: a.dataset_id
           for a in load_articles(DATA / "multihop_articles.jsonl")}
    return question.strip(), [ids[p["title"]] for p in json.loads(passages)]


def test_llm_mode_end_to_end_on_the_stub(tmp_path: Path, cache: Path, stub: OpenAIStub,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    stub.reset()
    stub.reply = scripted
    monkeypatch.setenv("OPENAI_BASE_URL", stub.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    monkeypatch.setenv("NEWSDESK_LLM_MODEL", "stub-chat")
    report = run_eval(tmp_path, DATA / "multihop_articles.jsonl",
                      DATA / "multihop_questions.jsonl", cache=cache)
    assert report["mode"] == "llm" and report["errors"] == 0
    assert all(figures["mode"] == "llm" for figures in report["by_type"].values())
    assert len(stub.chat_requests()) == 4  # one answer per question, no warm-up call
    assert report["answer_accuracy"] == pytest.approx(2 / 3, abs=1e-4)
    assert report["inference_accuracy"] == 1.0
    assert report["by_type"]["temporal"]["answer_accuracy"] == 0.0
    assert report["rejection_rate"] == 1.0 and report["false_rejection_rate"] == 0.0
    # Worked out from what the model was shown: the stub's [n] is the n-th passage of the
    # prompt it received; a citation is good when that passage is of an evidence article.
    shown = dict(prompt_articles(request) for request in stub.chat_requests())
    expected, good = {}, 0
    articles = load_articles(DATA / "multihop_articles.jsonl")
    for question in load_questions(DATA / "multihop_questions.jsonl", articles):
        markers = dict.fromkeys(re.findall(r"\[(\d+)\]", scripted_reply(question.question)))
        expected[question.id] = [shown[question.question][int(n) - 1] for n in markers]
        good += sum(a in question.evidence_articles for a in expected[question.id])
    assert {q["id"]: q["cited"] for q in report["per_question"]} == expected
    assert expected["mh-q1"] == ["mh-a-ferry"] and expected["mh-q4"] == []
    assert report["citation_precision"] == pytest.approx(good / 4, abs=1e-4)
    assert report["hits_at_10"] == 1.0  # retrieval is the same local index in both modes


# -- the CI slice (issue 3, part 4) ------------------------------------------------------


def write_slice_articles(path: Path) -> None:
    """Every evidence article of the first SLICE_QUESTIONS dev questions plus the first
    SLICE_OTHER_ARTICLES other articles, in the order of articles.jsonl."""
    questions = [json.loads(x) for x in
                 (MULTIHOP / "queries_dev.jsonl").read_text().splitlines()[:SLICE_QUESTIONS]]
    evidence = {e["article_id"] for q in questions for e in q["evidence"]}
    kept, others = [], 0
    for line in (MULTIHOP / "articles.jsonl").read_text().splitlines():
        article_id = json.loads(line)["id"]
        if article_id in evidence:
            kept.append(line)
        elif others < SLICE_OTHER_ARTICLES:
            kept.append(line)
            others += 1
    path.write_text("\n".join(kept) + "\n")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_multihop_dev_slice_meets_floors(tmp_path: Path) -> None:
    assert (MULTIHOP / "queries_dev.jsonl").is_file(), f"the shared data is missing: {MULTIHOP}"
    articles = tmp_path / "slice_articles.jsonl"
    write_slice_articles(articles)
    report = run_eval(tmp_path, articles, MULTIHOP / "queries_dev.jsonl",
                      "--limit", str(SLICE_QUESTIONS), "--fresh")
    print(json.dumps({k: report[k] for k in METRIC_KEYS}, indent=1))
    assert report["questions"] == SLICE_QUESTIONS and not report["ingest_failures"]
    for key, floor in SLICE_FLOORS.items():
        assert report[key] >= floor, f"{key} {report[key]} is under its floor {floor}"
    assert report["false_rejection_rate"] <= SLICE_MAX_FALSE_REJECTION


# -- following a story (evals.follows) ---------------------------------------------------


def test_follow_recall_counts_evidence_articles_and_precision_counts_updates() -> None:
    results = [
        # Two of three evidence articles cited; one update of three cites only other articles.
        follow_eval.FollowResult("q1", "inference", ["a", "b", "c"],
                     updates=[["a"], ["x", "b"], ["y"]], latency_s=[1.0, 2.0, 3.0]),
        # No update: recall 0, and it adds nothing to precision.
        follow_eval.FollowResult("q2", "temporal", ["d", "e"]),
        follow_eval.FollowResult("q3", "temporal", ["f"], updates=[["f"], ["f", "z"]],
                                 latency_s=[4.0, 5.0]),
    ]
    assert results[0].found == ["a", "b"] and results[0].good_updates == 2
    figures = follow_eval.summarise(results)
    assert figures["found"] == 3 and figures["evidence_articles"] == 6
    assert figures["recall"] == 0.5  # pooled: 3 of 6 evidence articles
    assert figures["good_updates"] == 4 and figures["updates"] == 5
    assert figures["precision"] == 0.8  # pooled: an update is good when it cites any evidence
    assert figures["recall_mean"] == pytest.approx((2 / 3 + 0 + 1) / 3, abs=1e-3)
    assert figures["precision_mean"] == pytest.approx((2 / 3 + 1) / 2, abs=1e-3)
    assert figures["follows_without_updates"] == 1
    assert (figures["latency_p50_s"], figures["latency_p95_s"], figures["latency_max_s"]) == (
        3.0, 5.0, 5.0)
    assert follow_eval.summarise([follow_eval.FollowResult("q", "temporal", ["a"])])[
        "precision"] is None
    # The estimate for "a follow naming outlets is updated by their articles only".
    sources = {"a": "Wired", "b": "TechCrunch", "x": "Wired", "y": "BBC"}
    narrowed = follow_eval.named_outlets_only(results[0], {"TechCrunch"}, sources)
    assert narrowed.updates == [["x", "b"]] and narrowed.found == ["b"]
    assert follow_eval.named_outlets_only(results[0], set(), sources) is results[0]


def test_follow_splits_halve_the_file_keeping_temporal_and_inference_questions() -> None:
    kinds = ["inference", "comparison", "temporal", "null", "temporal", "inference"]
    questions = [EvalQuestion(str(i), "?", kind, (), kind != "null")
                 for i, kind in enumerate(kinds)]
    dev = follow_eval.split_questions(questions, "dev")
    test = follow_eval.split_questions(questions, "test")
    assert [q.id for q in dev] == ["0", "2", "4"] and [q.id for q in test] == ["5"]
    assert [q.id for q in follow_eval.split_questions(questions, "all")] == ["0", "2", "4", "5"]


def test_the_replay_ingests_a_day_at_a_time_in_published_order() -> None:
    batches = follow_eval.day_batches(load_articles(DATA / "multihop_articles.jsonl"))
    assert [[e.dataset_id for e in b] for b in batches] == [
        ["mh-a-ferry"], ["mh-a-bakery"], ["mh-a-council"], ["mh-a-match"]]


def test_follow_replay_end_to_end(tmp_path: Path) -> None:
    report = follow_eval.evaluate(
        "all", DATA / "multihop_questions.jsonl", DATA / "multihop_articles.jsonl",
        settings=make_settings(tmp_path / "unused"), every_s=0.2, quiet=True)
    # The inference and temporal questions are followed; comparison and null ones are not.
    per = {f["id"]: f for f in report["per_follow"]}
    assert set(per) == {"mh-q1", "mh-q3"} and report["ingest"]["added"] == 4
    # The ferry article adds to the ferry question when it arrives, and nothing else does.
    assert per["mh-q1"]["found"] == ["mh-a-ferry"]
    assert per["mh-q1"]["updates"] and per["mh-q1"]["good_updates"] == len(
        per["mh-q1"]["updates"])
    assert report["by_type"]["inference"]["recall"] == 1.0
    assert report["by_type"]["inference"]["precision"] == 1.0
    # Every update was timed from its article's commit to its being in the book.
    assert report["updates"] == sum(len(f["latency_s"]) for f in per.values())
    assert all(s > 0 for f in per.values() for s in f["latency_s"])
    assert report["looks"]["checks"] >= 1 and report["looks"]["chunks"] >= 4
    assert report["reach"]["0.45"]["evidence_near"] is not None
    assert "| all | 2 |" in follow_eval.report_text(report)


def test_the_relevance_ceiling_scores_what_each_rule_takes(tmp_path: Path) -> None:
    from rich.console import Console

    from assistant.index.embeddings import get_embeddings
    from evals import relevance_ceiling
    from evals.run import build_store

    # Per article: recall over evidence articles, precision over articles taken.
    figures = relevance_ceiling.score_rule({"q1": {"a", "x"}, "q2": set()},
                                        {"q1": {"a", "b"}, "q2": {"c"}})
    assert figures == {"recall": 0.333, "precision": 0.5, "taken_per_question": 1.0}
    assert relevance_ceiling.score_rule({"q": set()}, {"q": {"a"}})["precision"] is None

    settings = make_settings(tmp_path / "store")
    articles_path = DATA / "multihop_articles.jsonl"
    articles = load_articles(articles_path)
    embeddings = get_embeddings(settings)
    built = build_store(settings, articles_path, articles, embeddings, Console(quiet=True),
                        quiet=True)
    questions = [(q.id, q.question, set(q.evidence_articles)) for q in
                 follow_eval.split_questions(
                     load_questions(DATA / "multihop_questions.jsonl", articles), "all")]
    found = relevance_ceiling.ceiling(questions, built.ingestor.store, embeddings,
                                   Console(quiet=True))
    built.ingestor.close()
    assert (found["questions"], found["evidence_articles"]) == (2, 3)
    rules = found["rules"]
    # Each question's best article by its words is one of its own: the ferry question's is
    # the ferry report, the council question's the council or ferry report.
    assert rules["keyword top 1"] == {"recall": 0.667, "precision": 1.0,
                                      "taken_per_question": 1.0}
    # Taking all four articles finds every evidence article, at 3 of 8 taken.
    assert rules["hybrid top 10"] == {"recall": 1.0, "precision": 0.375,
                                      "taken_per_question": 4.0}

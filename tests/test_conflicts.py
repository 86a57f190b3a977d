"""Conflicting sources: the rules on hand-built passages, the answer that shows each version
(outlet, date, citation, newest first), and floors on the conflict sets (evals/conflicts.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import make_settings

from assistant.answer.conflicts import Sentence, asked_kind, find_conflict
from assistant.index import sentences
from assistant.service import Assistant
from assistant.types import Passage
from evals import conflicts as measure
from evals.data import SHARED_DATA
from ingest.pipeline import Ingestor


def _passage(article: str, text: str, source: str = "", date: str = "",
             title: str = "") -> Passage:
    return Passage(chunk_id=f"{article}:0", article_id=article, title=title, url="",
                   source=source, published_at=date, lang="en", text=text, index=0, start=0,
                   end=len(text), score=0.5)


def _sentences(passage: Passage) -> list[Sentence]:
    return [Sentence(passage, t, s, e)
            for t, s, e in sentences.split(passage.text, passage.lang, passage.start)]


def _conflict(question: str, *passages: Passage) -> list[str] | None:
    found = find_conflict(question, passages, _sentences)
    return None if found is None else [v.value for v in found]


@pytest.mark.parametrize(("question", "kind"), [
    ("How many beds does the new wing have?", "number"),
    ("When will the summit be held?", "date"),
    ("Who did Harlow Rovers appoint?", "name"),
    ("Where will the festival be held?", "name"),
    ("Super Bowl 2021 location", "name"),
    ("Is the bridge open?", None),
])
def test_the_kind_of_value_asked_is_recognised(question: str, kind: str | None) -> None:
    assert asked_kind(question) == kind


def test_a_changed_number_in_the_same_report_is_a_conflict_newest_first() -> None:
    old = _passage("a", "The barrier cost 48 million pounds and protects 3,000 homes.",
                   "Dunmere Post", "2026-03-02")
    new = _passage("b", "The barrier cost 61 million pounds and protects 3,000 homes.",
                   "Esk Herald", "2026-03-04")
    assert _conflict("How much did the Dunmere barrier cost?", old, new) == ["61", "48"]


def test_the_same_fact_in_other_words_is_a_conflict_when_values_differ() -> None:
    a = _passage("a", "Harlow Rovers have appointed Marta Ivers as their new manager, the "
                      "club announced on Tuesday.", "Northfield Sport", "2026-02-10")
    b = _passage("b", "After a long search, Harlow Rovers named Paul Denholm as the club's "
                      "new manager.", "County Sports", "2026-02-11")
    assert _conflict("Who did Harlow Rovers appoint as their new manager?", a, b) == [
        "Paul Denholm", "Marta Ivers"]


def test_the_same_words_but_for_the_value_is_a_conflict_however_short() -> None:
    a = _passage("a", "It was released on July 21, 2017.", date="2026-01-05",
                 title="Splatoon 2 review")
    b = _passage("b", "It was released on July 1, 2017.", date="2026-01-04",
                 title="Splatoon 2 launch")
    assert _conflict("When was Splatoon 2 released?", a, b) == ["July 21, 2017", "July 1, 2017"]


def test_a_date_written_day_first_is_a_date_and_the_same_day_however_written() -> None:
    a = _passage("a", "CD Projekt released the game for consoles on 10 December 2020.",
                 date="2026-01-05")
    b = _passage("b", "CD Projekt released the game for consoles on December 2, 2010.",
                 date="2026-01-04")
    same = _passage("c", "CD Projekt released the game for consoles on Dec. 10th, 2020.")
    question = "When did CD Projekt release the game?"
    assert _conflict(question, a, b) == ["10 December 2020", "December 2, 2010"]
    assert _conflict(question, a, same) is None
    # Nor is its day an amount ("10" / "12" games).
    c = _passage("c", "CD Projekt released 3 games on 10 December 2020.")
    d = _passage("d", "CD Projekt released 3 games on 12 December 2020.")
    assert _conflict("How many games did CD Projekt release?", c, d) is None


def test_the_words_that_ask_and_the_headline_do_not_hide_a_conflict() -> None:
    # "long" only asks; the headline says what "the crossing" is.
    a = _passage("a", "The crossing takes 45 minutes and runs four times a day.",
                 title="Ferry link to Skarra island restored")
    b = _passage("b", "The crossing takes 70 minutes and the ferry runs four times a day.",
                 title="Mallow ferry back in service")
    assert set(_conflict("How long does the ferry crossing between Mallow and Skarra island "
                         "take?", a, b) or []) == {"45", "70"}


def test_two_amounts_of_one_unit_in_sentences_that_answer_in_full_conflict() -> None:
    a = _passage("a", "Turnout was 41 percent, up from the last election.",
                 title="Lanford elects its mayor")
    b = _passage("b", "The Lanford mayoral election drew a turnout of 36 percent, officials "
                      "said after counting finished overnight.")
    assert set(_conflict("What was the turnout in the Lanford mayoral election?", a, b)
               or []) == {"41 percent", "36 percent"}


@pytest.mark.parametrize("texts", [
    # the same value, told twice
    ("The festival drew 12,000 visitors over the weekend.",
     "Organisers said 12,000 visitors came to the festival over the weekend."),
    # one name nested in the other
    ("Angelique Kerber won the 2018 Wimbledon title.", "Kerber won the 2018 Wimbledon title."),
    # two parts of one story: a passage names both
    ("Spain beat the Netherlands to win the 2010 World Cup final.",
     "Spain won the 2010 World Cup final in Johannesburg."),
    # different years: different events
    ("In 2022 the ferry crossing took 45 minutes on the old boat.",
     "In 2024 the ferry crossing took 70 minutes on the old boat."),
    # a different fact about the same subject
    ("The barrier cost 48 million pounds.", "The barrier protects about 3,000 homes."),
    # a sentence naming two people, the other a different fact
    ("Angelique Kerber has won the 2018 Wimbledon women's singles, beating Serena Williams "
     "in the final.",
     "Ramos chaired the women's singles finals at the French Open in 2005 and at Wimbledon "
     "in 2018."),
    # a neighbouring word past a comma and an ellipsis is no shared place
    ("A film set during the Cold War won best picture at an Academy Awards fuelled by "
     "politics.",
     "Big wins for The Shape Of Water, ... won best director and best picture at the 90th "
     "Academy Awards."),
])
def test_no_conflict_where_the_reports_do_not_disagree(texts: tuple[str, str]) -> None:
    passages = [_passage(str(i), t) for i, t in enumerate(texts)]
    questions = {"How many visitors did the festival draw?",
                 "Who won the 2018 Wimbledon title?", "Who won the 2010 World Cup final?",
                 "How long does the ferry crossing take?", "How much did the barrier cost?",
                 "Who won the women's singles Wimbledon in 2018?",
                 "Which movie won Best Picture at the 90th Academy Awards Ceremony?"}
    assert all(_conflict(q, *passages) is None for q in questions)


def _own(folder: Path, store: Path, embeddings) -> Assistant:
    settings = make_settings(store)
    ingestor = Ingestor(settings, embeddings=embeddings)
    assert ingestor.ingest([folder / "articles.jsonl"]).ok
    return Assistant(settings, store=ingestor.store)


@pytest.fixture(scope="module")
def own_set(tmp_path_factory: pytest.TempPathFactory, embeddings) -> Assistant:
    return _own(measure.OWN, tmp_path_factory.mktemp("conflicts") / "store", embeddings)


def test_answer_shows_each_version_with_outlet_date_and_citation(own_set: Assistant) -> None:
    answer = own_set.ask("How many beds does the new maternity wing at Greyford General "
                         "Hospital have?")
    assert not answer.refused and answer.answer.startswith("The sources disagree: ")
    assert [(v.value, v.source, v.published_at) for v in answer.conflict] == [
        ("80", "Shire Health News", "2026-06-12"), ("64", "Greyford Times", "2026-06-11")]
    assert answer.answer.startswith("The sources disagree: 80 according to Shire Health News "
                                    "(2026-06-12) [1]; 64 according to Greyford Times "
                                    "(2026-06-11) [2].")
    for version in answer.conflict:
        for n in version.citations:
            citation = answer.citations[n - 1]
            assert citation.n == n and citation.source == version.source
            assert version.value in citation.passage and f"[{n}]" in answer.answer
    deltas = [e for e in own_set.stream("How many beds does the new maternity wing at "
                                        "Greyford General Hospital have?") if isinstance(e, str)]
    assert "".join(deltas) == answer.answer


def test_own_conflict_set_meets_its_floors(own_set: Assistant) -> None:
    figures = measure.own(own_set, None)
    # Measured 0.8 and 0.0 (docs/evaluation.md#conflicting-sources).
    assert figures["both_shown"] >= 0.7, figures["results"]
    assert figures["false_conflict"] == 0.0, figures["results"]


@pytest.mark.parametrize(("folder", "floor"), [
    (measure.OWN_SECOND, 0.13),  # measured 0.2 (3 of 15)
    (measure.OWN_HELDOUT, 0.05),  # measured 0.05 (1 of 20)
])
def test_sets_written_apart_from_the_rules_meet_their_floors(
        folder: Path, floor: float, tmp_path: Path, embeddings) -> None:
    figures = measure.own(_own(folder, tmp_path / "store", embeddings), None, folder)
    assert figures["both_shown"] >= floor, figures["results"]
    assert figures["false_conflict"] == 0.0, figures["results"]


@pytest.mark.slow
def test_rgb_counterfactual_slice_meets_its_floors(tmp_path: Path, embeddings) -> None:
    """The first 30 answerable RGB en questions over their true passages and 60 others: no
    conflict shown; with their planted passages added to the same store: both versions shown
    (measured 0.767, and 0.000 without them, 2026-12-02)."""
    rgb = SHARED_DATA / "rgb" / "en"
    questions = [json.loads(line) for line in (rgb / "questions.jsonl").open()]
    chosen = [i for i, q in enumerate(questions) if q["answerable"]][:30]
    wanted = {p for i in chosen for p in questions[i]["positive_ids"]}
    corpus = [json.loads(line) for line in (rgb / "corpus.jsonl").open()]
    rows = [r for r in corpus if r["id"] in wanted] + [
        r for r in corpus if r["id"] not in wanted][:60]
    planted = [json.loads(line) for line in (rgb / "counterfactual.jsonl").open()]
    planted = [r for r in planted if r["query_id"] in set(chosen)]
    (tmp_path / "true.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "planted.jsonl").write_text("".join(json.dumps(r) + "\n" for r in planted))
    settings = make_settings(tmp_path / "store")
    ingestor = Ingestor(settings, embeddings=embeddings)
    assert ingestor.ingest([tmp_path / "true.jsonl"]).ok
    assistant = Assistant(settings, store=ingestor.store)
    false = measure.false_conflicts(assistant, [questions[i]["question"] for i in chosen])
    assert false["false_conflict"] <= 0.05, false["results"]
    assert ingestor.ingest([tmp_path / "planted.jsonl"]).ok
    figures = measure.rgb_counterfactual(assistant, 30)
    assert figures["questions"] == 30
    assert figures["both_shown"] >= 0.7, figures["results"]

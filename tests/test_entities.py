"""Short answers to "who / which ...?" questions: the name the retrieved news agrees on."""

from __future__ import annotations

from assistant.answer.entities import asks_for_a_name, best_name, names_in


def test_questions_that_want_a_name_are_recognised() -> None:
    assert asks_for_a_name("Who is the individual that founded the exchange?")
    assert asks_for_a_name("Which company, reported by The Verge, cut prices?")
    assert asks_for_a_name("What football club lost ten points?")
    assert not asks_for_a_name("What did the minister say about bonds?")
    assert not asks_for_a_name("Did the Verge report a price cut?")


def test_names_leave_out_ordinary_words_and_split_at_possessives() -> None:
    text = "However, The Verge's Sam Bankman-Fried met Caroline Ellison. Using funds, he paid."
    assert names_in(text, frozenset({"using"})) == ["Verge", "Sam Bankman-Fried",
                                                    "Caroline Ellison"]


def test_the_name_most_passages_share_is_chosen_in_its_fullest_form() -> None:
    passages = [
        "Sam Bankman-Fried was convicted on Thursday, prosecutors said.",
        "Bankman-Fried used customer funds, Caroline Ellison testified.",
        "Prosecutors said Sam Bankman-Fried lied to investors.",
        "Caroline Ellison ran Alameda Research.",
    ]
    name, forms = best_name("Who did Caroline Ellison testify against?", passages)
    assert name == "Sam Bankman-Fried"
    assert set(forms) == {"Sam Bankman-Fried", "Bankman-Fried"}
    # A name only one passage mentions is no consensus.
    assert best_name("Who won?", ["Alice Moreau won the race.", "The race was wet."]) is None

"""The one date reader (`assistant.dates`): both written orders and ISO, with and without a
year, checked by dateutil; every rule that reads dates in text goes through it."""

from __future__ import annotations

import pytest

from assistant.answer.retrieval import dates_named
from assistant.dates import find_dates, first_date, replace_dates
from ingest.metadata import date_in_text


@pytest.mark.parametrize(("text", "iso", "parts"), [
    ("It opened on March 3, 2026.", "2026-03-03", (2026, 3, 3)),
    ("Filed Oct. 7th 2023 in court.", "2023-10-07", (2023, 10, 7)),
    ("Signed on 10 December 2020.", "2020-12-10", (2020, 12, 10)),
    ("Due 5 May, 2021 at noon.", "2021-05-05", (2021, 5, 5)),
    ("Posted 2026-03-03.", "2026-03-03", (2026, 3, 3)),
    ("On Sept 12, 2023 it rained.", "2023-09-12", (2023, 9, 12)),
    ("By the 3rd of June the works ended.", "", (None, 6, 3)),
    ("The vote is on March 3.", "", (None, 3, 3)),
])
def test_dates_in_either_order_with_or_without_a_year(text: str, iso: str,
                                                      parts: tuple) -> None:
    (found,) = find_dates(text)
    assert found.iso == iso and (found.year, found.month, found.day) == parts
    assert text[found.start:found.end] == found.text


@pytest.mark.parametrize("text", ["They may 5 times refuse.", "February 30, 2026 never was.",
                                  "October 56 is no day.", "In 2023 or on Monday."])
def test_what_is_no_date(text: str) -> None:
    assert [d for d in find_dates(text) if d.year or d.month] == []


def test_the_rules_that_read_dates_read_both_orders() -> None:
    assert dates_named("published on 7 October 2023 and on December 19th, 2023") == [
        "2023-10-07", "2023-12-19"]
    assert date_in_text("LONDON, 10 December 2020 - The board met.") == "2020-12-10"
    assert first_date("no date here") == ""
    assert replace_dates("From 1 May 2024 to May 9, 2024.", lambda d: d.iso,
                         need_year=True) == "From 2024-05-01 to 2024-05-09."

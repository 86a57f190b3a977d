"""The one reader of calendar dates written in text, for every rule that reads them (the
dateline of an article, dates a question names, dates a claim or a passage states).

It finds dates in both written orders and as ISO dates, with or without a year: "March 3,
2026", "Oct. 7th", "10 December 2020", "3rd of June", "2026-03-03". A month name must be
capitalised ("may 5" is no date) and each match is read by dateutil, so "February 30" or
"October 56" is no date.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass

from dateutil import parser as date_parser

# Month names and abbreviations, lower case -> 1..12.
MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
MONTHS.update({name.lower(): i for i, name in enumerate(calendar.month_abbr) if name})
MONTHS.update(sept=9)
_MONTH = "(?:" + "|".join(sorted((m.capitalize() for m in MONTHS), key=len, reverse=True)) + ")"
_DAY = r"\d{1,2}(?:st|nd|rd|th)?"
_YEAR = r"\d{4}"
_DATE = re.compile(
    rf"\b(?P<iso>{_YEAR}-\d{{2}}-\d{{2}})\b"
    rf"|\b(?P<md>{_MONTH}\.?\s+{_DAY})(?:,?\s+(?P<md_year>{_YEAR}))?\b(?!:)"
    rf"|\b(?P<dm>{_DAY}\s+(?:of\s+)?{_MONTH})\b\.?(?:,?\s+(?P<dm_year>{_YEAR})\b)?")
# Any year will do to check a date written without one, as long as it has a 29 February.
_LEAP_YEAR = dt.datetime(2000, 1, 1)


@dataclass(frozen=True)
class TextDate:
    """A calendar date written in a text: where, as written, and its parts (`year` None when
    the text gives none)."""

    start: int
    end: int
    text: str
    year: int | None
    month: int
    day: int

    @property
    def iso(self) -> str:
        """YYYY-MM-DD, or "" without a year."""
        return f"{self.year:04d}-{self.month:02d}-{self.day:02d}" if self.year else ""


def find_dates(text: str, need_year: bool = False) -> list[TextDate]:
    """The calendar dates written in `text`, in order (only those with a year when
    `need_year`)."""
    found = []
    for match in _DATE.finditer(text):
        read = _read(match)
        if read is not None and (read.year or not need_year):
            found.append(read)
    return found


def replace_dates(text: str, replace: Callable[[TextDate], str],
                  need_year: bool = False) -> str:
    """`text` with each date `find_dates` finds replaced by `replace(date)`."""
    return _replaced(text, find_dates(text, need_year), replace)


def split_dates(text: str, need_year: bool = False) -> tuple[list[TextDate], str]:
    """The dates `find_dates` finds, and `text` with each of them replaced by a space (one
    pass: the rules that check dates apart check the rest for numbers)."""
    found = find_dates(text, need_year)
    return found, _replaced(text, found, lambda _: " ")


def _replaced(text: str, dates: list[TextDate], replace: Callable[[TextDate], str]) -> str:
    parts, cursor = [], 0
    for date in dates:
        parts += [text[cursor:date.start], replace(date)]
        cursor = date.end
    return "".join(parts) + text[cursor:]


def first_date(text: str) -> str:
    """The first date with a year in `text`, as YYYY-MM-DD; "" when there is none."""
    dates = find_dates(text, need_year=True)
    return dates[0].iso if dates else ""


def _read(match: re.Match[str]) -> TextDate | None:
    iso, md, dm = match.group("iso"), match.group("md"), match.group("dm")
    year_text = match.group("md_year") if md else match.group("dm_year") if dm else None
    written = iso or md or dm
    cleaned = re.sub(r"(\d)(?:st|nd|rd|th)\b", r"\1", written.replace(" of ", " "))
    try:
        parsed = date_parser.parse(f"{cleaned} {year_text}" if year_text else cleaned,
                                   default=_LEAP_YEAR)
    except (ValueError, OverflowError):
        return None
    if not iso:
        # dateutil reads what it can ("October 56" as October 2056): the parts must be the
        # ones written.
        day = int(re.match(r"\D*(\d{1,2})", written).group(1))
        if parsed.day != day or (year_text is None and parsed.year != _LEAP_YEAR.year) or (
                year_text is not None and parsed.year != int(year_text)):
            return None
    year = parsed.year if iso or year_text else None
    # A missing year parses as 2000; a bare "March 3" must not pass as a year.
    end = match.end("md_year") if year_text and md else match.end("dm_year") if year_text \
        else match.start() + len(written) if not iso else match.end()
    return TextDate(match.start(), end, match.group()[:end - match.start()], year,
                    parsed.month, parsed.day)

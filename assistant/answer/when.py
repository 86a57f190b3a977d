"""Time in questions: "today", "this week", "latest", "in March", "before the vote".

`read_time` reads the words of a question that place it in time, against a reference day
(the day the client says is today, or else the day of the newest article), and returns
`TimeAsk`: a range of published days, and whether the newest reports are wanted. An event
("before the vote") is placed by `NewsRetriever`, from the first day the news reports it.
Calendar dates written out ("October 7, 2023") are not read here: retrieval boosts articles of
those days without excluding others (`assistant.answer.retrieval.dates_named`).
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass
from typing import Literal

from assistant.dates import MONTHS
from assistant.types import Filters

_MONTH = r"(january|february|march|april|may|june|july|august|september|october|november|" \
         r"december|jan|feb|mar|apr|jun|jul|aug|sept?|oct|nov|dec)\.?"
_YEAR = r"((?:19|20)\d\d)"

# Things that happen on a day and that news reports: "before the vote", "since the merger".
EVENT_WORDS = frozenset("""
    vote votes election elections referendum poll ballot strike strikes merger acquisition deal
    summit meeting talks hearing trial verdict ruling decision announcement launch earnings
    budget speech debate crash attack storm hurricane earthquake flood fire protest protests
    walkout shutdown ceasefire invasion resignation inauguration match race conference
    agreement settlement lawsuit raid arrest outage recall ipo closure rollout injury""".split())

# Only words that ask for the newest reports: "recently" or "now" in "a company, recently
# fined, ..." describe the subject instead.
_RECENT = re.compile(
    r"\b(latest|most recent(ly)?|newest|right now|these days|lately|as of now|up to date)\b",
    re.IGNORECASE)

Side = Literal["before", "after"]


@dataclass(frozen=True)
class TimeAsk:
    """When a question is about: published from `since` to `until` (days included), the
    newest reports first (`recent`), and/or before or after an `event` the news reports."""

    phrase: str = ""
    since: dt.date | None = None
    until: dt.date | None = None
    recent: bool = False
    event: str = ""
    side: Side | None = None
    # "today", "this week": only those days will do. "in March", "before the vote" may be
    # about the events rather than the reports, so they give way when nothing matches.
    strict: bool = False

    @property
    def ranged(self) -> bool:
        return self.since is not None or self.until is not None

    def describe(self) -> str:
        """The range in words, for an answer that finds nothing in it."""
        if self.since and self.until:
            if self.since == self.until:
                return f"published on {self.since}"
            return f"published {self.since} to {self.until}"
        if self.since:
            return f"published on or after {self.since}"
        if self.until:
            return f"published on or before {self.until}"
        return ""


def _month_range(year: int, month: int) -> tuple[dt.date, dt.date]:
    return dt.date(year, month, 1), dt.date(year, month, calendar.monthrange(year, month)[1])


def _latest_month(month: int, ref: dt.date) -> int:
    """The year of the latest such month on or before the reference day."""
    return ref.year if month <= ref.month else ref.year - 1


def _month(word: str) -> int:
    word = word.lower().rstrip(".")
    return MONTHS.get(word, 0)


def _relative(text: str, ref: dt.date) -> tuple[str, dt.date, dt.date] | None:
    """A range named relative to the reference day ("this week", "last month")."""
    rules: list[tuple[str, tuple[dt.date, dt.date]]] = [
        # Lower case, or first: "Today" inside a question is a name ("Business Today").
        (r"(?-i:\btoday\b|^Today\b)|\btonight\b|\bthis (morning|afternoon|evening)\b",
         (ref, ref)),
        (r"(?-i:\byesterday\b|^Yesterday\b)", (ref - dt.timedelta(days=1),) * 2),
        (r"\b(this|the past|the last) week\b", (ref - dt.timedelta(days=6), ref)),
        (r"\blast week\b", (ref - dt.timedelta(days=13), ref - dt.timedelta(days=7))),
        (r"\bthis month\b", (ref.replace(day=1), ref)),
        (r"\bthis year\b", (dt.date(ref.year, 1, 1), ref)),
        (r"\blast year\b", (dt.date(ref.year - 1, 1, 1), dt.date(ref.year - 1, 12, 31))),
    ]
    first = ref.replace(day=1)
    previous = first - dt.timedelta(days=1)
    rules.append((r"\blast month\b", (previous.replace(day=1), previous)))
    for pattern, (since, until) in rules:
        if match := re.search(pattern, text, re.IGNORECASE):
            return match.group(), since, until
    if match := re.search(r"\b(?:the )?(?:past|last) (\d{1,3}) days\b", text, re.IGNORECASE):
        days = max(int(match.group(1)), 1)
        return match.group(), ref - dt.timedelta(days=days - 1), ref
    return None


def _calendar(text: str, ref: dt.date) -> tuple[str, dt.date | None, dt.date | None] | None:
    """A month or a year: "in March", "during March 2025", "since June", "before 2024"."""
    pattern = (rf"\b(in|during|since|from|after|before|until|by)\s+(?:early |late |mid-?)?"
               rf"(?:{_MONTH}(?:\s+{_YEAR})?|{_YEAR})\b(?!\s*\d)")
    for match in re.finditer(pattern, text, re.IGNORECASE):
        word, month_word, month_year, year = match.groups()
        if month_word:
            month = _month(month_word)
            if not month or (month_word.lower() == "may" and not month_year
                              and word.lower() not in ("in", "during")):
                continue
            y = int(month_year) if month_year else _latest_month(month, ref)
            first, last = _month_range(y, month)
        else:
            first, last = dt.date(int(year), 1, 1), dt.date(int(year), 12, 31)
        word = word.lower()
        if word in ("in", "during"):
            return match.group(), first, last
        if word in ("since", "from", "after"):
            return match.group(), (last + dt.timedelta(days=1) if word == "after" else first), \
                None
        return match.group(), None, (first - dt.timedelta(days=1) if word in ("before",)
                                     else last)
    return None


def _event(text: str) -> tuple[str, str, Side] | None:
    """ "before the vote" -> ("before the vote", "vote", "before")."""
    pattern = r"\b(before|after|since|ahead of|following|prior to)\s+(the|this|last)\s+" \
              r"((?:[A-Za-z'-]+\s+){0,3}?([a-z]+))\b"
    for match in re.finditer(pattern, text, re.IGNORECASE):
        head = match.group(4).lower()
        if head in EVENT_WORDS:
            word = match.group(1).lower()
            side: Side = "before" if word in ("before", "ahead of", "prior to") else "after"
            return match.group(), match.group(3), side
    return None


def read_time(question: str, reference: dt.date) -> TimeAsk | None:
    """What the question says about time, read against `reference` (today); None when it
    says nothing that narrows or orders the news."""
    recent = bool(_RECENT.search(question))
    if found := _relative(question, reference):
        phrase, since, until = found
        return TimeAsk(phrase=phrase, since=since, until=until, recent=recent, strict=True)
    if found := _calendar(question, reference):
        phrase, since, until = found
        return TimeAsk(phrase=phrase, since=since, until=until, recent=recent)
    if found := _event(question):
        phrase, event, side = found
        return TimeAsk(phrase=phrase, event=event, side=side, recent=recent)
    if recent:
        return TimeAsk(phrase=_RECENT.search(question).group(), recent=True)
    return None


def without_time(question: str, ask: TimeAsk) -> str:
    """The question without its time words, for the keyword and dense query: "what happened
    today?" asks about the news of a day, not about the word "today"."""
    if not (ask.ranged or ask.event):
        return question
    stripped = question.replace(ask.phrase, " ")
    return re.sub(r"\s+", " ", stripped).strip() or question


_NEWS = re.compile(
    r"^\W*(?:and |so |ok,? )?(?:(?:what|anything)(?:'s| is| has| was)? (?:happened|happening|"
    r"new|going on|the news|in the news|the headlines?|the latest)|(?:any|the|latest) "
    r"(?:news|headlines|updates?|stories)|news|headlines)(?: (?:happened|is there|are there))?"
    r"\W*$", re.IGNORECASE)


def asks_for_news(question: str) -> bool:
    """True for "what happened?", "what's new?", "any news?": a question about the news of
    some days as a whole, not about a subject (its time words already removed)."""
    return bool(_NEWS.match(question.strip()))


def news_question(question: str) -> bool:
    """`asks_for_news` of the question with its time words ("today", "in March") removed."""
    ask = read_time(question, dt.date.today())
    return asks_for_news(without_time(question, ask) if ask else question)


def narrow(filters: Filters | None, ask: TimeAsk) -> Filters:
    """`filters` narrowed to the days `ask` names (both must hold)."""
    base = filters or Filters()
    since = max((d for d in (base.since, ask.since) if d), default=None)
    until = min((d for d in (base.until, ask.until) if d), default=None)
    if since and until and since > until:
        # Disjoint ranges: nothing can match; an empty range says so without failing.
        until = since - dt.timedelta(days=1)
        return Filters.model_construct(since=since, until=until, sources=base.sources,
                                       today=base.today)
    return Filters(since=since, until=until, sources=base.sources, today=base.today)


def dated(day: str) -> dt.date | None:
    """A stored `published_at` (ISO date or date-time) as a date; None when undated."""
    try:
        return dt.date.fromisoformat(day[:10]) if day else None
    except ValueError:
        return None

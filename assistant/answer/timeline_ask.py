"""Which questions ask how a story developed ("How has X developed?", "Timeline of X", "What
has happened with X since March?", "X over the past week", "Latest developments in X"), told
by the question's grammar alone, never by its topic.

`timeline_question` returns the topic and the words to search for, or None for every other
question (answered as before). The forms it knows:

- "how" + a form of have/do/be + subject + develop, evolve, unfold, change, progress, shift or
  play out, where that verb ends its clause (the end, a comma, a preposition or a time
  adverb follows): "How did the talks unfold?", "How has X changed since June?"; an object
  after the verb ("How did Apple develop its chip?"), a "to" before it ("How do experts expect
  it to develop?") or "how much/many/long..." make no timeline. After "walk me through",
  "explain", "describe", "tell/show me" the form without have/do/be counts too ("Explain how
  prices changed").
- "timeline" or "chronology" of/for/on X, or "X timeline"; not "what is the timeline for X",
  which asks for a schedule.
- "what has happened", "what's been going on" (present perfect) + with/to/in/at/on X; the
  simple past "what happened ... " only with a span of time ("since ...", "over the past
  week", "so far", "lately") or "step by step" / "in order".
- (latest/recent/key...) "developments" in/on/with X; "key events in X", "sequence (chain,
  course) of events"; "trace (track, follow, outline...) the development (evolution,
  progress, history, story, course) of X".
- a request without a question word ("The drought over the last few weeks", "Updates on the
  flood over the past few days") that names such a span.

Measured on a set of 80 questions written before this rule and on MultiHop-RAG's dev
questions (docs/evaluation.md#timelines).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from assistant.dates import TextDate, find_dates


@dataclass(frozen=True)
class TimelineAsk:
    """A question that asks for a timeline: its `topic` ("the Brenner Pass closure") and the
    words to retrieve with (`search`: the topic and what the question adds after it, such as
    a place or a span of time, which `assistant.answer.when` reads separately).

    `since_date`: a calendar day the question starts the story at ("since January 20",
    `since_phrase`), which `assistant.answer.when` does not read; `since` and `until`: the
    days the timeline covers (both included), set by the service from those and from the
    question's time words ("since March", "over the past week")."""

    topic: str
    search: str
    since_phrase: str = ""
    since_date: TextDate | None = None
    since: dt.date | None = None
    until: dt.date | None = None

    def holds(self, day: dt.date | None) -> bool:
        """Whether an entry of this day belongs in the timeline: any, without a range; one
        inside it with one (an undated entry cannot be placed inside it)."""
        if self.since is None and self.until is None:
            return True
        return day is not None and (self.since is None or day >= self.since) and (
            self.until is None or day <= self.until)


_AUX = r"(?:has|have|had|did|do|does|is|are|was|were)"
_VERB = (r"(?:develop(?:ed|ing|s)?|evolv(?:e|ed|es|ing)|unfold(?:ed|ing|s)?|"
         r"chang(?:e|ed|es|ing)|progress(?:ed|es|ing)?|shift(?:ed|ing|s)?|"
         r"play(?:ed|ing|s)?\s+out)")
# What may follow a verb that ends its clause: nothing, punctuation, a preposition or a time
# adverb. An object (a determiner, a pronoun, a noun) may not.
_CLAUSE_END = (r"(?=\s*(?:$|[?.!,;:]|(?:since|over|in|during|after|at|through|throughout|from|"
               r"between|on|within|across|among|around|for|until|till|so far|lately|"
               r"recently|to date|this|these|last|and|as|under|inside|outside|when|while|"
               r"following|amid|ever)\b))")
_ASKING = r"(?:walk me through|tell me|show me|explain(?: to me)?|describe|summari[sz]e|" \
          r"recount|outline)"
_HOW = re.compile(
    rf"(?:^|\b(?P<asking>{_ASKING})\s+)how\s+(?P<aux>{_AUX}\s+)?(?P<topic>[^?.!;]+?)\s+"
    rf"(?:(?:has|have|had|is|are|was|were)\s+(?:been\s+)?)?(?P<verb>{_VERB}){_CLAUSE_END}"
    rf"(?P<rest>[^?!]*)", re.IGNORECASE)
_TIMELINE = re.compile(
    r"\b(?:timeline|time line|chronology)\s+(?:of|for|on|about|covering)\s+(?P<topic>[^?!]+)",
    re.IGNORECASE)
_TIMELINE_AFTER = re.compile(r"^\W*(?P<topic>[^?!]+?)\s+(?:timeline|chronology)\W*$",
                             re.IGNORECASE)
# "What is the timeline for the refund?": the plan, not the story.
_SCHEDULE = re.compile(r"^\W*(?:what|when)(?:'s|\s+is|\s+was|\s+will be)\s+the\s+"
                       r"(?:timeline|time line)\s+for\b", re.IGNORECASE)
_PERFECT = re.compile(
    r"\bwhat(?:'s|\s+has|\s+have)\s+(?:been\s+)?(?:happened|happening|going on|gone on)\b"
    r"(?:\s+(?:with|to|in|at|on|around|regarding|for|between|inside)\s+(?P<topic>[^?!]+))?"
    r"(?P<rest>[^?!]*)", re.IGNORECASE)
_PAST = re.compile(
    r"\bwhat\s+happened\b(?:\s+(?:with|to|in|at|on|around|regarding|for|between|inside)\s+"
    r"(?P<topic>[^?!]+))?(?P<rest>[^?!]*)", re.IGNORECASE)
_NUMBER_WORD = (r"(?:\d{1,3}|a few|few|several|couple of|a couple of|two|three|four|five|six|"
                r"seven|eight|nine|ten|eleven|twelve)")
_UNIT = r"(?:days?|weeks?|weekends?|months?|years?|quarters?|hours?)"
# A span of time that ends now: what a story "over the past week" covers.
_SPAN = re.compile(
    rf"\b(?:(?:over|in|during|throughout|through|for|across|within)\s+the\s+(?:past|last|"
    rf"previous)\s+(?:{_NUMBER_WORD}\s+)?{_UNIT}|since\s+\S+|so far|lately|recently|"
    rf"in recent\s+{_UNIT}|over time|over the weekend|to date|step by step|"
    rf"in (?:chronological )?order|chronologically)\b", re.IGNORECASE)
_DEVELOPMENTS = re.compile(
    # Not "its developments in hardware": an owner's achievements, not a story's news.
    r"(?<!\bits )(?<!\btheir )(?<!\bhis )(?<!\bher )(?<!'s )(?<!’s )"
    r"\bdevelopments\s+(?:in|on|with|around|regarding|concerning|about|of|at|for|"
    r"surrounding)\s+(?P<topic>[^?!]+)", re.IGNORECASE)
_EVENTS = re.compile(
    r"\b(?:(?:key|major|main|important)\s+(?:events|moments|milestones|turning points)|"
    r"(?:sequence|chain|course|order)\s+of\s+events)\b\s*(?:in|of|at|around|during|"
    r"surrounding|leading (?:up )?to|that led to|behind|since)\s+(?P<topic>[^?!]+)",
    re.IGNORECASE)
_TRACE = re.compile(
    r"\b(?:trace|track|follow|chart|outline|recount|summari[sz]e|describe|walk me through)\s+"
    r"(?:the\s+)?(?:development|developments|evolution|progress|history|story|course|"
    r"unfolding)\s+of\s+(?P<topic>[^?!]+)", re.IGNORECASE)
# Words that open a question (wh-words and auxiliaries put first): a request without one that
# names a span ("The flood over the past week") asks for what happened in it.
_QUESTION_WORD = re.compile(
    r"^\W*(?:since when|who|whom|whose|what|what's|which|when|where|why|how|is|are|was|were|"
    r"do|does|did|has|have|had|can|could|will|would|should|may|might|must|shall)\b",
    re.IGNORECASE)
# A question for one fact (an entity, a place, a reason, a time) even where it has a span or
# names "developments" or "events": "Which company, known for its developments in ...".
_FACT_QUESTION = re.compile(r"\b(?:who|whom|whose|which|when|where|why)\b", re.IGNORECASE)
_WH_WORD = re.compile(r"\b(?:who|whom|whose|what|which|when|where|why|how)\b", re.IGNORECASE)
_STORY_OF = re.compile(r"^(?:the\s+)?(?:whole\s+|full\s+|entire\s+)?(?:story|saga|timeline|"
                       r"chronology)\s+(?:of|about|on)\s+", re.IGNORECASE)
_DEGREE = re.compile(r"^(?:much|many|long|far|often|fast|quickly|soon|big|old|large|high|"
                     r"badly|well|exactly|come)\b", re.IGNORECASE)


def _clean(text: str) -> str:
    text = _STORY_OF.sub("", " ".join(text.split()).strip(" ,;:.-"))
    return text


_FROM = re.compile(r"\b(?:since|from|after)\s+", re.IGNORECASE)


def _since(text: str) -> tuple[str, TextDate] | None:
    """ "since January 20" -> (the phrase, the date): a written-out day the story starts at."""
    for match in _FROM.finditer(text):
        found = find_dates(text[match.end():])
        if found and found[0].start == 0:
            return text[match.start():match.end() + found[0].end], found[0]
    return None


def _ask(topic: str, rest: str = "") -> TimelineAsk | None:
    since = None
    found = _since(f"{topic} {rest}")
    if found is not None:
        since = found
        topic, rest = topic.replace(found[0], " "), rest.replace(found[0], " ")
    topic = _clean(topic)
    search = " ".join(x for x in (topic, _clean(rest)) if x)
    if not search:
        return None
    return TimelineAsk(topic=topic, search=search, since_phrase=since[0] if since else "",
                       since_date=since[1] if since else None)


def timeline_question(question: str) -> TimelineAsk | None:
    """The topic and search words of a question that asks how something developed; None for
    any other question. Only the question's first line counts (a follow-up's context line,
    `assistant.answer.followup`, does not)."""
    text = " ".join(question.split("\n", 1)[0].split())
    if not text:
        return None
    for match in _HOW.finditer(text):
        before = text[:match.start("verb")].split()
        if _DEGREE.match(match.group("topic")) or (before and before[-1].lower() == "to"):
            continue
        if match.group("aux") is None and match.group("asking") is None:
            continue  # "How prices changed" opens no question; after "explain" it does
        return _ask(match.group("topic"), match.group("rest"))
    if not _SCHEDULE.match(text) and (
            found := _TIMELINE.search(text) or _TIMELINE_AFTER.match(text)):
        return _ask(found.group("topic"))
    if found := _PERFECT.search(text):
        return _ask(found.group("topic") or "", found.group("rest"))
    if (found := _PAST.search(text)) and _SPAN.search(text):
        return _ask(found.group("topic") or "", found.group("rest"))
    if _FACT_QUESTION.search(text):
        return None
    for pattern in (_DEVELOPMENTS, _TRACE, _EVENTS):
        if found := pattern.search(text):
            return _ask(found.group("topic"))
    if not _QUESTION_WORD.match(text) and not _WH_WORD.search(text) and _SPAN.search(text):
        return _ask(text)
    return None

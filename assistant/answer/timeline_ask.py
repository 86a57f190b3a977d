"""Which questions ask how a story developed ("How has X developed?", "Timeline of X", "What
has happened with X since March?", "X over the past week", "Catch me up on X"), told by the
question's grammar alone, never by its topic.

`timeline_question` returns the topic and the words to search for, or None for every other
question (answered as before). The forms it knows:

- "how" + a form of have/do/be + subject + develop, evolve, unfold, change, progress, shift,
  play out, escalate, snowball, spiral, unravel, deteriorate, worsen, intensify, come about,
  fall apart or take shape, where that verb ends its clause (the end, a comma, a preposition
  or a time adverb follows): "How did the talks unfold?", "How has X changed since June?"; an
  object after the verb ("How did Apple develop its chip?"), a "to" before it ("How do experts
  expect it to develop?") or "how much/many/long..." make no timeline. After "walk me
  through", "explain", "describe", "tell/show me" the form without have/do/be counts too
  ("Explain how prices changed"), and after "of/about/on" in a request ("Give me the rundown
  of how X played out").
- "how did it come to this / we get here / we end up with X"; "how did X go from A to B".
- "timeline" or "chronology" of/for/on X, or "X timeline"; not "what is the (construction)
  timeline for X" or "is there a timeline for X", which ask for a schedule.
- "what has happened", "what's been going on", "everything that's happened" (present
  perfect) + with/to/in/at/on X; the simple past "what happened ... " only with a span of
  time ("since ...", "over the past week", "so far", "lately", "after weeks of", "leading up
  to", "from the start", "as it happened") or "step by step" / "in order".
- with such a span: "how did/has X go (been going, moved on)", "what has changed / what's
  new", "has anything happened", "where do things stand / where are we".
- (latest/recent/key...) "developments" in/on/with X; "key events in X", "turning points in
  X", "sequence (chain, course) of events"; "trace (track, follow, outline...) the development
  (evolution, history, story, rise and fall...) of X".
- then, in no question for one fact (who, which, when, where, why), for yes or no, or about
  what will happen: "what led (up) to X"; "the backstory (history, evolution, progression,
  trajectory, rise and fall, twists and turns, whole story, tale) of X", "the story so far";
  "catch me up / bring me up to speed / fill me in (on X)", "I've lost track of X", "I missed
  X, what happened?"; a request to "recap" or "chronicle" X; "blow by blow", "week by week",
  "step by step", "in order" in a request or a past question, not in instructions ("how to
  ... step by step").
- a request without a question word, or put as "Can you ...", that names such a span ("The
  drought over the last few weeks", "Take me through the rescue from day one").

Measured on a set of 80 questions written before this rule, a development set of 100
(`timeline_questions_dev2.jsonl`) and on MultiHop-RAG's dev questions
(docs/evaluation.md#timelines).
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
         r"play(?:ed|ing|s)?\s+out|escalat(?:e|ed|es|ing)|snowball(?:ed|ing|s)?|"
         r"spiral(?:l?ed|l?ing|s)?(?:\s+out\s+of\s+control)?|unravel(?:l?ed|l?ing|s)?|"
         r"deteriorat(?:e|ed|es|ing)|"
         r"worsen(?:ed|ing|s)?|intensif(?:y|ied|ies|ying)|(?:come|came|coming)\s+about|"
         r"(?:fall|fell|fallen|falling)\s+apart|(?:take|took|taken|taking)\s+shape)")
# What may follow a verb that ends its clause: nothing, punctuation, a preposition or a time
# adverb. An object (a determiner, a pronoun, a noun) may not.
_CLAUSE_END = (r"(?=\s*(?:$|[?.!,;:]|(?:since|over|in|during|after|at|through|throughout|from|"
               r"between|on|within|across|among|around|for|until|till|so far|lately|"
               r"recently|to date|this|these|last|and|as|under|inside|outside|when|while|"
               r"following|amid|ever)\b))")
_ASKING = r"(?:walk me through|tell me|show me|explain(?: to me)?|describe|summari[sz]e|" \
          r"recount|outline)"
_HOW = re.compile(
    # After of/about/on ("the rundown of how X played out") only in a request (see below).
    rf"(?:^|\b(?P<asking>{_ASKING})\s+|\b(?P<of>of|about|on)\s+)how\s+(?P<aux>{_AUX}\s+)?"
    rf"(?P<topic>[^?.!;]+?)\s+"
    rf"(?:(?:has|have|had|is|are|was|were)\s+(?:been\s+)?)?(?P<verb>{_VERB}){_CLAUSE_END}"
    rf"(?P<rest>[^?!]*)", re.IGNORECASE)
_TIMELINE = re.compile(
    r"\b(?:timeline|time line|chronology)\s+(?:of|for|on|about|covering)\s+(?P<topic>[^?!]+)",
    re.IGNORECASE)
_TIMELINE_AFTER = re.compile(r"^\W*(?P<topic>[^?!]+?)\s+(?:timeline|chronology)\W*$",
                             re.IGNORECASE)
# "What is the timeline for the refund?": the plan, not the story.
_SCHEDULE = re.compile(r"^\W*(?:(?:what|when)(?:'s|’s|\s+is|\s+was|\s+will be)\s+the\s+"
                       r"(?:[\w’'-]+\s+){0,2}?|(?:is|are|was|were|has|have|do|does|did|will)"
                       r"\b.*?\b)(?:timeline|time line)\s+for\b", re.IGNORECASE)
_PERFECT = re.compile(
    r"\b(?:what|(?:everything|all|anything)(?:\s+that)?)(?:'s|’s|\s+has|\s+have)\s+"
    r"(?:been\s+)?(?:happened|happening|going on|gone on)\b"
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
    rf"(?:in|over|during)\s+recent\s+{_UNIT}|over time|over the (?:weekend|years)|to date|"
    rf"step by step|in (?:chronological )?order(?!\s+(?:to|of)\b)|chronologically|thus far|"
    rf"(?:up )?(?:un)?til now|"
    rf"from (?:the (?:very )?)?(?:start|beginning|outset)|from day one|start to finish|"
    rf"beginning to end|as (?:it|they|things|events) (?:happened|unfolded|developed)|"
    rf"leading up to|in the (?:run|lead)[- ]up to|blow[- ]by[- ]blow|play[- ]by[- ]play|"
    rf"after (?:{_NUMBER_WORD}\s+|many\s+)?{_UNIT}\s+of)\b", re.IGNORECASE)
_DEVELOPMENTS = re.compile(
    # Not "its developments in hardware": an owner's achievements, not a story's news.
    r"(?<!\bits )(?<!\btheir )(?<!\bhis )(?<!\bher )(?<!'s )(?<!’s )"
    r"\bdevelopments\s+(?:in|on|with|around|regarding|concerning|about|of|at|for|"
    r"surrounding)\s+(?P<topic>[^?!]+)", re.IGNORECASE)
_EVENTS = re.compile(
    r"\b(?:(?:key|major|main|important)\s+(?:events|moments|milestones|turning points)|"
    r"turning points|"
    r"(?:sequence|chain|course|order)\s+of\s+events)\b\s*(?:in|of|at|around|during|"
    r"surrounding|leading (?:up )?to|that led to|behind|since)\s+(?P<topic>[^?!]+)",
    re.IGNORECASE)
_TRACE = re.compile(
    r"\b(?:trace|track|follow|chart|outline|recount|summari[sz]e|describe|walk me through)\s+"
    r"(?:the\s+)?(?:development|developments|evolution|progress|history|story|course|"
    r"unfolding|rise and fall|rise|fall|downfall|unravell?ing)\s+of\s+(?P<topic>[^?!]+)",
    re.IGNORECASE)
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
# "How did it come to this?", "How did we get here?", "How did we end up with a lockdown?"
_GET_HERE = re.compile(
    r"\bhow\s+(?:did|has|have|had|could|would)\s+(?:it|things|we|matters|this|that|the "
    r"situation)\s+(?:come\s+to\s+(?:this|that|pass|a\s+head)|(?:get|got|gotten)\s+(?:here|"
    r"there|to\s+this|to\s+that|this\s+far|so\s+bad)|end(?:ed)?\s+up\s+(?:here|there|like "
    r"this|with|in|at|on)|reach(?:ed)?\s+this\s+point)\b(?P<rest>[^?!]*)", re.IGNORECASE)
# "How did the firm go from record profits to bankruptcy?"
_GO_FROM = re.compile(
    r"\bhow\s+(?:did|has|have|had|could)\s+(?P<topic>[^?!]+?)\s+(?:go|gone|slide|slid|slip|"
    r"slipped|fall|fallen|sink|sunk|rise|risen|turn|turned)\s+from\s+\S[^?!]*?\s+(?:to|into)\s+",
    re.IGNORECASE)
# "What has changed since the dam failed?" (with a span); "What's new since Monday?"
_CHANGED = re.compile(r"\bwhat(?:(?:'s|’s|\s+has|\s+have)?\s+changed|(?:'s|’s|\s+is)\s+new)\b"
                      r"(?P<rest>[^?!]*)", re.IGNORECASE)
# "Has anything happened with the talks since May?" (with a span)
_ANYTHING = re.compile(r"^\W*(?:has|have)\s+(?:anything|much|something)\s+(?:(?:new|more|"
                       r"else)\s+)?(?:happened|changed|developed)\b(?P<rest>[^?!]*)",
                       re.IGNORECASE)
# "How did the talks go over the last month?", "How has it moved on since Friday?" (with a span;
# without one, "How did the harvest go?" asks for an outcome)
_GOING = re.compile(r"\bhow\s+(?:has|have|had|did|is|are|was|were)\s+(?P<topic>[^?!]+?)\s+"
                    r"(?:been\s+)?(?:go|gone|going|went|mov(?:e|ed|ing)\s+on)\b(?P<rest>[^?!]*)",
                    re.IGNORECASE)
# "Where do things stand after weeks of talks?" (with a span): where a story got to.
_STANDING = re.compile(r"\bwhere\s+(?:(?:do|did)\s+(?:things|matters)\s+stand|(?:are|were)\s+"
                       r"(?:we|things|matters)(?:\s+now)?)\b(?P<rest>[^?!]*)", re.IGNORECASE)
# "What led up to the resignation?", "the events that led to the strike"
_LED_TO = re.compile(r"\b(?:what|the\s+events?|events)\s+(?:that\s+|which\s+)?(?:has\s+|have\s+|"
                     r"had\s+)?led\s+(?:up\s+)?to\s+(?P<topic>[^?!]+)", re.IGNORECASE)
# Nouns for a story told in order: "the backstory of X", "History of the dispute", "the rise
# and fall of X", "the twists and turns in X", "the whole story of X", "the story so far".
# Not "a history of fraud" after have/with (a record, not a story).
_STORY_NOUN = re.compile(
    r"(?<!\bhave a )(?<!\bhas a )(?<!\bhad a )(?<!\bwith a )(?<!\bhaving a )\b(?:"
    r"(?:back[- ]?story|history|evolution|progression|trajectory|rise and fall|ups and downs|"
    r"twists and turns|(?:whole|full|entire|complete)\s+(?:story|saga))\s+"
    r"(?:of|to|behind|in|on|with|about|around|surrounding)\b"
    r"|(?:story|tale)\s+of\b"
    r"|(?:back[- ]?story|story so far)\b\W*"
    r"(?:(?:of|to|behind|in|on|with|about|around|surrounding)\b)?"
    r")\s*(?P<topic>[^?!]*)", re.IGNORECASE)
# "Catch me up on X", "Bring me up to speed on X", "Fill me in on X", "I've lost track of X"
_CATCH_UP = re.compile(
    r"\b(?:(?:catch|caught)\s+(?:me|us)\s+up|(?:bring|get|brought|got)\s+(?:me|us)\s+up\s+to\s+"
    r"(?:speed|date)|fill\s+(?:me|us)\s+in|i(?:'ve|’ve|\s+have)?"
    r"\s+lost\s+track|i(?:'m|’m|\s+am)\s+out\s+of\s+the\s+loop)\b(?P<rest>[^?!,;]*)",
    re.IGNORECASE)
# "I missed the whole election scandal, what happened?": the story someone missed
_MISSED = re.compile(r"^\W*i(?:'ve|’ve|\s+have)?\s+(?:missed|not\s+(?:been\s+)?follow(?:ed|ing)|"
                     r"haven't\s+(?:been\s+)?follow(?:ed|ing))\s+(?P<topic>[^?!,;:.]+)",
                     re.IGNORECASE)
_CATCHING_UP = re.compile(r"\bwhat(?:'s|’s|\s+has|\s+have)?\s+(?:been\s+)?(?:happened|going\s+"
                          r"on)\b", re.IGNORECASE)
# "Recap the mine collapse", "Can you chronicle the strike", "a recap of X": in a request.
_RECAP = re.compile(r"\b(?:recap|chronicle)\s+(?:of\s+)?(?P<topic>[^?!]+)", re.IGNORECASE)
# "a blow-by-blow account", "week by week", "step by step": a story told in order, unless
# the steps are instructions ("how to file a claim step by step").
_SEQUENCE = re.compile(
    r"\b(?:blow[- ]by[- ]blow|play[- ]by[- ]play|step by step|in (?:chronological )?order"
    r"(?!\s+(?:to|of)\b)|chronologically|"
    # "day by day" where it ends its clause or names an account ("a day-by-day account"),
    # not a forecast's ("the day-by-day forecast")
    r"(?P<unit>day|week|month|year|hour|minute)[- ]by[- ](?P=unit)"
    r"(?=\s*(?:$|[?.!,;:]|(?:account|recap|rundown|run-down|breakdown|summary|retelling|"
    r"timeline|chronology|record|log)\b)))", re.IGNORECASE)
# A question in the past or perfect ("What has the recall looked like week by week?"), not a
# procedure in the present ("What is the process, step by step?").
_PAST_WHAT = re.compile(r"^\W*what\s+(?:has|have|had|did|was|were|happened)\b", re.IGNORECASE)
_HOW_TO = re.compile(r"\bhow\s+(?:to|do|does|can|could|should|would|will)\b", re.IGNORECASE)
# A question for yes or no ("Does the article trace the history of X?"), not a request put as
# one ("Can you recap X?").
_YES_NO = re.compile(r"^\W*(?:is|are|was|were|do|does|did|has|have|had|will|would|should|may|"
                     r"might|must|shall|can|could)\b(?!\s+(?:you|someone|somebody|anyone)\b)",
                     re.IGNORECASE)
# A request put as a question: "Can you ...", "Could you please ...", "Please ...".
_REQUEST = re.compile(r"^\W*(?:(?:can|could|would|will)\s+(?:you|someone|somebody|anyone)\b|"
                      r"please\b)", re.IGNORECASE)
_PREPOSITION = re.compile(r"\b(?:with|on|about|regarding|over|of|in|into|for|to|around|at)\s+"
                          r"(?P<topic>.+)", re.IGNORECASE)
# What is yet to happen ("the evolution of prices expected next year") is no story so far.
_FUTURE = re.compile(r"\b(?:will|won't|going to|expected to)\b", re.IGNORECASE)
# The asking words of a request, left out of what is searched for.
_ASKING_WORDS = re.compile(
    r"^\W*(?:(?:can|could|would|will)\s+(?:you|someone|somebody|anyone)\s+|please\s+)?"
    r"(?:(?:walk|take|run|talk|bring)\s+(?:me|us)\s+through|(?:give|get|show|tell)\s+(?:me|us)"
    r"(?:\s+about)?)\s+", re.IGNORECASE)
_DEGREE = re.compile(r"^(?:much|many|long|far|often|fast|quickly|soon|big|old|large|high|"
                     r"badly|well|exactly|come)\b", re.IGNORECASE)


def _requested(text: str) -> bool:
    """A request, not a question: no question word first ("Recap the strike", "The flood over
    the past week"), or "Can you ..." / "Please ..."."""
    return bool(_REQUEST.match(text)) or not _QUESTION_WORD.match(text)


def _about(text: str) -> str:
    """What a clause is about: its first prepositional phrase ("Where are we now with the
    plan, and" -> "the plan"), or the clause itself."""
    text = re.sub(r"(?:[,;]\s*|\s+)(?:and|but|so|the|a|an)\s*$", "", text.strip(" ,;:.-"))
    text = text.strip(" ,;:.-")
    found = _PREPOSITION.search(text)
    return found.group("topic") if found else text


def _after(text: str) -> str:
    """What follows the asking words, its leading preposition left out ("with a lockdown in
    Merrivale" -> "a lockdown in Merrivale")."""
    return re.sub(r"^\W*(?:with|on|about|regarding|over|of|in|into|for|to|around|at)\s+", "",
                  text.strip(), flags=re.IGNORECASE)


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
        if match.group("of") is not None:
            if not _requested(text):
                continue  # "Which firm, in the article about how AI changed, ..."
        elif match.group("aux") is None and match.group("asking") is None:
            continue  # "How prices changed" opens no question; after "explain" it does
        return _ask(match.group("topic"), match.group("rest"))
    if found := _GET_HERE.search(text):
        rest = found.group("rest").strip()
        return _ask(_after(rest) if rest else _about(text[:found.start()]))
    if found := _GO_FROM.search(text):
        return _ask(found.group("topic"))
    if not _SCHEDULE.match(text) and (
            found := _TIMELINE.search(text) or _TIMELINE_AFTER.match(text)):
        return _ask(found.group("topic"))
    if found := _PERFECT.search(text):
        return _ask(found.group("topic") or "", found.group("rest"))
    if (found := _PAST.search(text)) and _SPAN.search(text):
        return _ask(found.group("topic") or "", found.group("rest"))
    if (found := _GOING.search(text)) and _SPAN.search(text) and not _DEGREE.match(
            found.group("topic")):
        return _ask(found.group("topic"), found.group("rest"))
    for pattern in (_CHANGED, _ANYTHING, _STANDING):
        if (found := pattern.search(text)) and _SPAN.search(text):
            rest = found.group("rest")
            return _ask(_after(rest) if rest.strip() else text)
    if _FACT_QUESTION.search(text):
        return None
    for pattern in (_DEVELOPMENTS, _TRACE, _EVENTS):
        if found := pattern.search(text):
            return _ask(found.group("topic"))
    if _YES_NO.match(text) or _FUTURE.search(text):
        return None
    for pattern in (_LED_TO, _STORY_NOUN):
        if (found := pattern.search(text)) and found.group("topic").strip():
            return _ask(found.group("topic"))
        if found:
            return _ask(_about(text[:found.start()]))
    if found := _CATCH_UP.search(text):
        rest = found.group("rest").strip()
        return _ask(_after(rest) if rest else _about(text[:found.start()]))
    if (found := _MISSED.search(text)) and not _WH_WORD.search(_CATCHING_UP.sub("", text)):
        return _ask(found.group("topic"))
    if _requested(text) and (found := _RECAP.search(text)):
        return _ask(re.sub(r"\s+for (?:me|us)\b.*$", "", found.group("topic")))
    if _SEQUENCE.search(text) and not _HOW_TO.search(text) and (
            _requested(text) or _PAST_WHAT.match(text)):
        return _ask(_about(_ASKING_WORDS.sub("", _SEQUENCE.sub(" ", text)).strip(" ?!")))
    lead = _REQUEST.sub("", text)
    if _requested(text) and not _WH_WORD.search(lead) and _SPAN.search(text):
        return _ask(_ASKING_WORDS.sub("", text).strip(" ?!"))
    return None

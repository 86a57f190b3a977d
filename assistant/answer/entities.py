"""Short answers for "who / which ... ?" questions: a name, only when it is right with high
confidence (a wrong lead is worse than none).

The extractive answerer has no model to write a short answer, so it leads with a name only in
two cases, both checked against the type of thing the question asks for (a person, an
organisation, a place; never an amount or a date):

- the role the question asks about stands right before a name in a quoted sentence
  ("Who is Poland's finance minister?" and "Finance Minister Dorota Pelc"; "Which insurer
  ...?" and "The insurer, Brenmoor Mutual"): `anchored_name`;
- the name that the most retrieved passages mention and the question does not ("Which
  company, reported by The Verge as ..., and by TechCrunch as ...?"): `best_name`; the
  answerer takes a single word only when passages of two articles name it.

No recogniser with packaged weights installs from PyPI here (the spaCy English models there are
third-party re-uploads, GLiNER downloads its weights at run time), so these are rules, measured
in docs/evaluation.md.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence

from assistant.lexicon import (
    CALENDAR_WORDS,
    KIND_WORDS,
    NAME_PARTICLES,
    NAME_SUFFIXES,
    ORGANISATION_KIND_WORDS,
    ORGANISATION_WORDS,
    PERSON_KIND_WORDS,
    PLACE_KIND_WORDS,
    PLACE_WORDS,
    TITLES,
    common_words,
    title_stems,
)
from assistant.text import STOPWORDS, is_word_char, stem

_ASKS_FOR_NAME = re.compile(
    r"^\s*(?:(?:who|whom)\b|(?:which|what)\s+(?!(?:is|are|was|were|did|does|do|has|have|had|"
    r"can|could|will|would|should|might|may|must|happened|kind|sort|type)\b)\w+)",
    re.IGNORECASE)
# A capitalised run: capitalised words, joined by name particles ("de la", "van der") and "&".
_PARTICLES = "|".join(sorted((re.escape(w) for w in NAME_PARTICLES | {"&"}), key=len,
                             reverse=True))
_NAME = re.compile(
    r"(?<![\w'’-])(?:[A-Z][\w&'’.-]*[\w&])(?:\s+(?:(?:" + _PARTICLES + r")\s+)*"
    r"[A-Z][\w&'’.-]*[\w&])*")
# Capitalised words that start no name: function words and calendar words.
_NOT_NAMES = STOPWORDS | CALENDAR_WORDS
# Words that make a capitalised run something other than a person.
_NOT_PERSON = ORGANISATION_WORDS | PLACE_WORDS
_AMOUNT = re.compile(r"^\s*(?:how\s+(?:much|many|large|high|big|long|old|far)|when|what\s+"
                     r"(?:year|date|time|day|month|amount|percentage|share))\b", re.IGNORECASE)
# An apposition right after a name, up to the next punctuation: ", the town's finance
# director,", ", who chairs the board,".
_APPOSITION = re.compile(r",\s+((?:who\s+)?[^,.;:()\[\]]{1,60})")
# The noun of "which / what <noun>": among the three words after it, up to a comma.
_WHICH_NOUN = re.compile(r"^\s*(?:which|what)\s+([^,?]*)", re.IGNORECASE)


def which_noun(question: str) -> str | None:
    """The noun of a "which / what <noun> ...?" question ("individual"), or None."""
    match = _WHICH_NOUN.match(question)
    words = match.group(1).lower().split() if match else []
    return re.sub(r"['’]s$", "", words[0]) if words else None


def question_type(question: str) -> str | None:
    """What a question wants as its short answer: "person", "organisation", "place", "name"
    (some other named thing), or None (an amount, a date, a description: no name leads)."""
    if _AMOUNT.match(question) or not asks_for_a_name(question):
        return None
    if re.match(r"^\s*(?:who|whom)\b", question, re.IGNORECASE):
        return "person"
    match = _WHICH_NOUN.match(question)
    nouns = {re.sub(r"['’]s$", "", w) for w in match.group(1).lower().split()[:3]} if match \
        else set()
    for kind, vocabulary in (("person", PERSON_KIND_WORDS),
                             ("organisation", ORGANISATION_KIND_WORDS),
                             ("place", PLACE_KIND_WORDS),
                             # A company or street suffix before a title: "group" is both.
                             ("organisation", ORGANISATION_WORDS), ("place", PLACE_WORDS),
                             ("person", TITLES)):
        if nouns & vocabulary:
            return kind
    return "name"


def person_name(name: str) -> str | None:
    """The person's name in a capitalised run ("Polish Finance Minister Dorota Pelc" ->
    "Dorota Pelc"), or None when the run is not a person's name of two or three words."""
    words = name.split()
    # The name follows the last title of the run: "Polish Finance Minister Dorota Pelc".
    titled = [i for i, w in enumerate(words) if w.lower().strip(".") in TITLES]
    if titled and len(words) - titled[-1] - 1 >= 2:
        words = words[titled[-1] + 1:]
    while words and words[0].lower().strip(".") in TITLES:
        words = words[1:]
    if not 2 <= len(words) <= 4 or words[-1].lower() in _NOT_PERSON or any(
            w.lower() in ORGANISATION_WORDS for w in words):
        return None
    if not all((w[:1].isupper() and w[1:2].islower()) or w.lower() in NAME_PARTICLES
               or (i > 1 and w.lower().strip(".") in NAME_SUFFIXES)
               or re.fullmatch(r"[A-Z]\.", w) for i, w in enumerate(words)):
        return None
    return " ".join(words)


def fits_type(name: str, kind: str, forms: Sequence[str] = ()) -> bool:
    """Whether `name` can be the answer to a question of this `kind`: a person's name for
    "person" (a surname counts when one of its `forms` is a full name); never two places
    joined by a hyphen ("US-Japan") for the others."""
    if kind == "person":
        return person_name(name) is not None or any(
            person_name(f) is not None for f in forms if f.endswith(" " + name))
    return not re.fullmatch(r"[A-Z]{1,3}-[A-Z][a-z]+|[A-Z][a-z]+-[A-Z]{1,3}", name)


def role_stems(question: str) -> set[str]:
    """The stems of the role a question asks about: each of its lower-case words that is a
    title or a word of organisations and places, with the plain words right before it
    ("finance minister", "chief medical officer"), and a verb that names a title ("Who chairs
    ...?" -> "chair"); never a noun that only says what kind of thing is asked for
    ("company", "person"). Capitalised words are its subject, not the role."""
    words = re.findall(r"[\w'’-]+", question)
    found: set[str] = set()
    for i, word in enumerate(words):
        if not re.fullmatch(r"[a-z]+", word) or word in KIND_WORDS or word in STOPWORDS:
            continue
        if word in TITLES or word in ORGANISATION_WORDS or word in PLACE_WORDS:
            found.add(stem(word))
            for before in reversed(words[max(0, i - 2):i]):
                if not re.fullmatch(r"[a-z]+", before) or before in STOPWORDS \
                        or before in KIND_WORDS:
                    break
                found.add(stem(before))
        elif stem(word) in title_stems():
            found.add(stem(word))
    return found


def anchored_name(question: str, text: str, kind: str) -> str | None:
    """The name in `text` that the role the question asks about stands right before ("Finance
    Minister Dorota Pelc", "the town's finance director, Ines Ferro", "The group, Brenmoor
    Mutual") or right after, in an apposition ("Ines Ferro, the town's finance director,").
    Every role word of the question (but nouns that only say what kind of thing is asked for)
    must be there: between the previous name and this one, within 40 characters, or in the
    apposition; None when no name fits, or when two different ones do."""
    roles = role_stems(question)
    if not roles:
        return None
    found: set[str] = set()
    boundary = 0
    for match in _NAME.finditer(text):
        start = match.start()
        window = text[max(boundary, start - 40):start] + " " + match.group()
        if not all(w.lower() in TITLES or stem(w) in roles for w in match.group().split()):
            # A role written before an earlier name is that name's ("the Calder Street
            # terminal ... with Mayor Oona Mackie"); a capitalised role word is not a name
            # ("Council president Lise Adjei").
            boundary = match.end()
        stems = {stem(w) for w in re.findall(r"[a-z]+", window.lower())}
        if not roles <= stems:
            # Or the role follows in an apposition: "Ines Ferro, the town's finance
            # director," / "Ines Ferro, who chairs the board,".
            after = _APPOSITION.match(text, match.end())
            if after is None or not roles <= {stem(w) for w in
                                              re.findall(r"[a-z]+", after.group(1).lower())}:
                continue
        for name in names_in(match.group()):
            if kind == "person":
                candidate = person_name(name)
            elif name.split()[0].lower() in TITLES and person_name(name):
                candidate = None  # "Mayor Oona Mackie" is not a terminal
            elif re.match(r"\s+(?:and|&)\s+[A-Z]", text[match.end():]):
                candidate = None  # "Stars and Sails" or two names: which is unclear
            else:
                candidate = name
            if candidate and fits_type(candidate, kind):
                found.add(candidate)
    return found.pop() if len(found) == 1 else None


def asks_for_a_name(question: str) -> bool:
    """True for questions that want an entity: "Who ...?", "Which company ...?"."""
    return bool(_ASKS_FOR_NAME.match(question))


def names_in(text: str, common: frozenset[str] = frozenset()) -> list[str]:
    """Capitalised names in `text`, without leading or trailing ordinary words ("The",
    "However", or any word in `common`, the words the text also uses in lower case)."""
    found = []
    for match in _NAME.finditer(text):
        # An ordinary word is capitalised at the start of a sentence ("All three ..."); inside
        # one, a capitalised ordinary word is part of a name ("the All Blacks").
        before = text[:match.start()].rstrip()
        opens = not before or before[-1] in ".!?:;\"“”'‘’(-—"
        # A common word set off by a comma at the start of a sentence is an adverb ("However,",
        # "Meanwhile,", "Yes,"), not a name.
        if opens and " " not in match.group() and \
                text[match.end():match.end() + 1] == "," and \
                match.group().lower() in common_words():
            continue
        # A possessive ends a name: "The Verge's Sam Bankman-Fried" is two names.
        for part in re.split(r"['’]s\s+", match.group()):
            words = re.sub(r"['’]s$", "", part).split()
            while words and (words[0].lower() in _NOT_NAMES
                             or (opens and words[0].lower() in common)):
                words = words[1:]
            while words and (words[-1].lower() in _NOT_NAMES or words[-1].lower() in common):
                words = words[:-1]
            if words and not (len(words) == 1 and len(words[0]) < 3):
                found.append(" ".join(words))
    return found


def _has_word(text: str, word: str) -> bool:
    """`word` occurs in `text` with no word character on either side (a regex per pair of
    names cost milliseconds per answer)."""
    at = text.find(word)
    while at >= 0:
        end = at + len(word)
        if (at == 0 or not is_word_char(text[at - 1])) and (
                end == len(text) or not is_word_char(text[end])):
            return True
        at = text.find(word, at + 1)
    return False


def best_name(question: str, passages: Sequence[str], exclude: Iterable[str] = (),
              articles: Sequence[str] | None = None) -> tuple[str, list[str]] | None:
    """The name mentioned by the most `passages` that the question does not already use, and
    all its forms.

    Forms of one name are counted together ("Bankman-Fried" and "Sam Bankman-Fried"); the
    fullest form that the passages use is the one shown. With `articles` (the article of each
    passage), passages of one article count once: a name the chunks of one article share (its
    subject, "US-Japan") is no agreement. None when no name is in two passages (articles).
    """
    groups = list(articles) if articles is not None else list(range(len(passages)))
    # "Taylor Swift's concert" names Taylor Swift: a possessive is not another word.
    asked = {re.sub(r"['’]s$", "", w.lower()) for w in re.findall(r"[\w'’-]+", question)}
    excluded = {re.sub(r"^the\s+", "", e.lower()) for e in exclude}
    common = frozenset(w for text in passages for w in re.findall(r"\b[a-z][a-z-]+\b", text))
    support: dict[str, set[object]] = defaultdict(set)
    uses: dict[str, int] = defaultdict(int)
    for i, text in enumerate(passages):
        for name in names_in(text, common):
            words = name.lower().split()
            if all(w in asked for w in words) or name.lower() in excluded:
                continue
            support[name].add(groups[i])
            uses[name] += 1
    if not support:
        return None

    def forms_of(name: str) -> list[str]:
        return [other for other in support if _has_word(other, name)]

    best, best_support = None, 0
    for name in support:
        passages_naming = set().union(*(support[f] for f in forms_of(name)))
        if len(passages_naming) > best_support or (
                len(passages_naming) == best_support and best and len(name) < len(best)):
            best, best_support = name, len(passages_naming)
    if best is None or best_support < 2:
        return None
    # Show the fullest form used more than once, else the name itself.
    forms = forms_of(best)
    fuller = [f for f in forms if f != best and uses[f] > 1]
    shown = max(fuller, key=lambda f: (uses[f], len(f))) if fuller else best
    return shown, forms

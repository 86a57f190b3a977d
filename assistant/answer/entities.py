"""Short answers for "who / which ... ?" questions: the name the retrieved news agrees on.

A question such as "Which company, reported by The Verge as ..., and by TechCrunch as ...?"
wants a name first. The extractive answerer has no model to write one, so it takes the name
(a run of capitalised words) that the most retrieved passages mention and the question does
not, and leads with it, cited to the quoted sentences that name it.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence

from assistant.text import is_word_char

_ASKS_FOR_NAME = re.compile(
    r"^\s*(?:(?:who|whom)\b|(?:which|what)\s+(?!(?:is|are|was|were|did|does|do|has|have|had|"
    r"can|could|will|would|should|might|may|must|happened|kind|sort|type)\b)\w+)",
    re.IGNORECASE)
_NAME = re.compile(
    r"(?<![\w'’-])(?:[A-Z][\w&'’.-]*[\w&])(?:\s+(?:(?:of|de|du|van|von|der|la|&)\s+)?"
    r"[A-Z][\w&'’.-]*[\w&])*")
_NOT_NAMES = frozenset((
    "a an the this that these those it its he she his her they their we our you your i "
    "in on at by for with from as of to and or but if when while after before since during "
    "however meanwhile also still yet so then there here what which who why how where "
    "monday tuesday wednesday thursday friday saturday sunday january february march april may "
    "june july august september october november december mr mrs ms dr said says according "
    "new first last one two three"
).split())


def asks_for_a_name(question: str) -> bool:
    """True for questions that want an entity: "Who ...?", "Which company ...?"."""
    return bool(_ASKS_FOR_NAME.match(question))


def names_in(text: str, common: frozenset[str] = frozenset()) -> list[str]:
    """Capitalised names in `text`, without leading or trailing ordinary words ("The",
    "However", or any word in `common`, the words the text also uses in lower case)."""
    found = []
    for match in _NAME.finditer(text):
        # A possessive ends a name: "The Verge's Sam Bankman-Fried" is two names.
        for part in re.split(r"['’]s\s+", match.group()):
            words = re.sub(r"['’]s$", "", part).split()
            while words and (words[0].lower() in _NOT_NAMES or words[0].lower() in common):
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


def best_name(question: str, passages: Sequence[str],
              exclude: Iterable[str] = ()) -> tuple[str, list[str]] | None:
    """The name mentioned by the most `passages` that the question does not already use, and
    all its forms.

    Forms of one name are counted together ("Bankman-Fried" and "Sam Bankman-Fried"); the
    fullest form that the passages use is the one shown. None when no name is in two passages.
    """
    asked = {w.lower() for w in re.findall(r"[\w'’-]+", question)}
    excluded = {re.sub(r"^the\s+", "", e.lower()) for e in exclude}
    common = frozenset(w for text in passages for w in re.findall(r"\b[a-z][a-z-]+\b", text))
    support: dict[str, set[int]] = defaultdict(set)
    uses: dict[str, int] = defaultdict(int)
    for i, text in enumerate(passages):
        for name in names_in(text, common):
            words = name.lower().split()
            if all(w in asked for w in words) or name.lower() in excluded:
                continue
            support[name].add(i)
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

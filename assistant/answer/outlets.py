"""The news outlets a question names: which the store holds, and which it does not.

News questions are often about what one outlet reported ("the TechCrunch article on ...").
An outlet the store holds focuses retrieval (see `assistant.answer.retrieval`); a well-known
outlet it holds no article from means the question cannot be answered from the ingested news.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Well-known outlets, matched case-sensitively as written (names that are also common words,
# such as Time, Nature or People, are left out: they would match ordinary prose).
KNOWN_OUTLETS = (
    "ABC News", "Al Jazeera", "Ars Technica", "Associated Press", "Axios", "Barron's",
    "BBC", "Billboard", "Bleacher Report", "Bloomberg", "Business Insider", "BuzzFeed News",
    "CBS News", "China Daily", "CNBC", "CNET", "CNN", "Daily Mail", "Deadline",
    "Der Spiegel", "Deutsche Welle", "El País", "Engadget", "Entertainment Weekly", "ESPN",
    "Fast Company", "Financial Times", "Forbes", "Fortune", "Fox News", "France 24",
    "GameSpot", "Gizmodo", "Global Times", "Harvard Business Review", "Hindustan Times",
    "HuffPost", "IGN", "Kotaku", "Le Monde", "Los Angeles Times", "MarketWatch", "Mashable",
    "NBC News", "NDTV", "New Scientist", "New York Post", "New York Times", "Newsweek",
    "Nikkei Asia", "NPR", "PC Gamer", "Pitchfork", "Polygon", "Politico", "ProPublica",
    "Reuters", "Rolling Stone", "Scientific American", "Seeking Alpha", "Sky News",
    "Sky Sports", "South China Morning Post", "Sporting News", "Sports Illustrated",
    "TechCrunch", "The Athletic", "The Atlantic", "The Daily Beast", "The Economist",
    "The Guardian", "The Hill", "The Hindu", "The Hollywood Reporter", "The Independent",
    "The Information", "The Intercept", "The New Yorker", "The Straits Times",
    "The Sydney Morning Herald", "The Telegraph", "The Verge", "The Wall Street Journal",
    "Times of India", "USA Today", "Vanity Fair", "Variety", "VentureBeat",
    "Wall Street Journal", "Washington Post", "Wired", "Xinhua", "Yahoo Finance",
    "Yahoo News", "ZDNet",
)


def _mentions(question: str, names: Iterable[str], case_sensitive: bool
              ) -> list[tuple[int, int, str]]:
    text = question if case_sensitive else question.lower()
    found = []
    for name in names:
        if len(name) < 3:
            continue
        needle = name if case_sensitive else name.lower()
        if needle not in text:  # most names are not there: skip the regex
            continue
        pattern = r"(?<!\w)" + re.escape(needle) + r"(?!\w)"
        found.extend((m.start(), m.end(), name) for m in re.finditer(pattern, text))
    return found


def _outermost(mentions: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Drop mentions inside longer ones ("The Independent" in "The Independent - Sports")."""
    kept = [a for a in mentions
            if not any(b != a and b[0] <= a[0] and a[1] <= b[1] for b in mentions)]
    return sorted(set(kept))


def named_outlets(question: str, outlets: Iterable[str]) -> list[tuple[str, str]]:
    """(outlet, the question's words around the mention) for each mention of one of
    `outlets`, in question order; an outlet named twice ("the TechCrunch article on X ... the
    TechCrunch report on Y") gets one entry per mention.

    The words around a mention run from the previous mention to the next one, so "the
    TechCrunch article on X and The Verge report on Y" gives TechCrunch "the ... article on X
    and the" and The Verge "article on X and ... report on Y".
    """
    mentions = _outermost(_mentions(question, outlets, case_sensitive=False))
    found = []
    for i, (_, _, outlet) in enumerate(mentions):
        lo = mentions[i - 1][1] if i > 0 else 0
        hi = mentions[i + 1][0] if i + 1 < len(mentions) else len(question)
        found.append((outlet, question[lo:hi].strip()))
    return found


# Words that make a name an outlet in the sentence ("a report by Bloomberg", "the Forbes
# article") rather than a company ("Bloomberg terminals").
_AS_OUTLET = re.compile(
    r"\b(article|articles|report|reports|reported|reporting|piece|story|stories|coverage|"
    r"according|published|journalists?|columnist|editorial|interview|review|podcast|"
    r"newsletter|wrote|writes|headline|op-ed|analysis|feature)\b", re.IGNORECASE)
_CONTEXT_CHARS = 40


def _key(name: str) -> str:
    return re.sub(r"^the\s+", "", name.strip().lower())


def missing_outlets(question: str, held: Iterable[str]) -> list[str]:
    """Well-known outlets the question names as a source ("a report by Bloomberg") that no
    stored outlet matches."""
    held_keys = [_key(h) for h in held]
    mentions = _outermost(_mentions(question, [*KNOWN_OUTLETS, *held], case_sensitive=True)
                          + _mentions(question, held, case_sensitive=False))
    missing: list[str] = []
    for start, end, name in mentions:
        around = question[max(0, start - _CONTEXT_CHARS):end + _CONTEXT_CHARS]
        if not _AS_OUTLET.search(around):
            continue
        key = _key(name)
        if not any(key in h or h in key for h in held_keys if h) and name not in missing:
            missing.append(name)
    return missing

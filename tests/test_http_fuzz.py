"""Every bad request is a 4xx: arbitrary JSON (NaN, Infinity, 1e400, huge integers, odd keys)
thrown at the real app over a real store never gets a 5xx; /v1 answers 400 in OpenAI's shape,
the other routes 422."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable
from typing import Any

import pytest
from conftest import make_settings
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from assistant.index.embeddings import NewsEmbeddings
from assistant.server.validation import shown_error
from assistant.service import Assistant
from ingest.pipeline import Ingestor
from wiring import create_app

pytestmark = pytest.mark.slow

CHAT = "/v1/chat/completions"
USER = '"messages": [{"role": "user", "content": "What did the talks agree?"}]'


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, embeddings: NewsEmbeddings,
           seed_path: Any) -> TestClient:
    """The app over its own store (POST /articles may add to it), holding the seed article."""
    store = make_settings(tmp_path_factory.mktemp("fuzz") / "store")
    report = Ingestor(store, embeddings=embeddings).ingest([seed_path])
    assert report.ok, report.errors
    return TestClient(create_app(Assistant(store)))


def post(client: TestClient, path: str, body: str | bytes) -> Any:
    return client.post(path, content=body, headers={"content-type": "application/json"})


def obj(*members: str) -> str:
    """A JSON object's text from its members' text (`NaN` and `1e400` as they are)."""
    return "{" + ", ".join(members) + "}"


NON_FINITE_ANSWER_BODIES = [
    '{"question": "x", "k": NaN}',
    '{"question": "x", "k": Infinity}',
    '{"question": "x", "k": 1e400}',
    '{"question": "x", "since": Infinity}',
    '{"question": "x", "until": -Infinity}',
    '{"question": "x", "since": 1e400}',
    '{"question": "x", "today": NaN}',
    '{"question": "x", "sources": [NaN]}',
    '{"question": "x", "history": [{"role": "user", "content": NaN}]}',
    '{"question": NaN}',
    '{"question": "x", "unknown": NaN}',  # ignored fields too: NaN is not JSON
    '{"question": "x", "k": 1' + "0" * 4000 + "}",
    '{"question": "x", "k": -1' + "0" * 400 + "}",
]


@pytest.mark.parametrize("path", ["/answer", "/answer/stream"])
@pytest.mark.parametrize("body", NON_FINITE_ANSWER_BODIES)
def test_non_finite_numbers_get_422(client: TestClient, path: str, body: str) -> None:
    response = post(client, path, body)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail and all(error["msg"] for error in detail)
    assert len(response.content) < 2_000


def test_non_finite_numbers_in_an_article_get_422(client: TestClient) -> None:
    for value in ("NaN", "Infinity", "-Infinity", "1e400"):
        article = obj('"title": "T"', '"body": "B"', f'"published_at": {value}')
        response = post(client, "/articles", obj(f'"articles": [{article}]'))
        assert response.status_code == 422, response.text
        assert "finite" in response.text


@pytest.mark.parametrize("value", ["1" + "0" * 5000, "[" * 100_000 + "]" * 100_000])
def test_a_body_the_parser_gives_up_on_is_a_400(client: TestClient, value: str) -> None:
    # Past Python's 4,300-digit limit, or nested past its recursion limit: FastAPI's 400.
    assert post(client, "/answer", obj('"question": "x"', f'"k": {value}')).status_code == 400
    response = post(client, CHAT, obj('"model": "newsdesk"', USER, f'"k": {value}'))
    assert response.status_code == 400 and response.json()["error"]["message"]


def test_json_that_does_not_parse_gets_422_or_400(client: TestClient) -> None:
    assert post(client, "/answer", '{"question": ').json()["detail"][0]["type"] == "json_invalid"
    response = post(client, CHAT, '{"model": ')
    assert response.status_code == 400 and response.json()["error"]["param"] is None


@pytest.mark.parametrize("params", [
    {"offset": "99999999999999999999"},
    {"offset": "-99999999999999999999"},
    {"offset": str(10**9 + 1)},
    {"limit": "99999999999999999999"},
    {"offset": "NaN"},
    {"offset": "inf"},
    {"limit": "1e400"},
    {"offset": "1" + "0" * 5000},
])
def test_out_of_range_query_parameters_get_422(client: TestClient,
                                               params: dict[str, str]) -> None:
    response = client.get("/articles", params=params)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["msg"]


def test_the_largest_offset_is_an_empty_page(client: TestClient) -> None:
    page = client.get("/articles", params={"offset": 10**9})
    assert page.status_code == 200, page.text
    assert page.json()["articles"] == []


@pytest.mark.parametrize("extra", [
    '"temperature": NaN', '"top_p": Infinity', '"temperature": 1e400', '"k": NaN',
    '"since": Infinity', '"today": -Infinity', '"n": NaN', '"presence_penalty": -1e400',
    '"stream_options": {"include_usage": NaN}', '"logit_bias": {"50256": -Infinity}',
    '"k": 1' + "0" * 4000,
])
def test_non_finite_numbers_on_v1_get_400_in_openai_shape(client: TestClient,
                                                          extra: str) -> None:
    response = post(client, CHAT, obj('"model": "newsdesk"', USER, extra))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"]
    assert len(response.content) < 2_000


def test_non_finite_content_in_a_v1_message_gets_400(client: TestClient) -> None:
    body = '{"model": "newsdesk", "messages": [{"role": "user", "content": [{"type": "text", ' \
           '"text": "Hi", "weight": NaN}]}]}'
    response = post(client, CHAT, body)
    assert response.status_code == 400 and "error" in response.json()


@pytest.mark.parametrize("today", ["0001-01-01", "0999-12-31", "9999-12-31"])
def test_a_today_whose_neighbours_are_no_dates_gets_422(client: TestClient, today: str) -> None:
    for question in ("What happened yesterday?", "What happened last year?",
                     "What happened after December?"):
        body = {"question": question, "today": today}
        assert client.post("/answer", json=body).status_code == 422
        chat = {"model": "newsdesk", "today": today,
                "messages": [{"role": "user", "content": question}]}
        assert client.post(CHAT, json=chat).status_code == 400


@pytest.mark.parametrize("today", ["1000-01-01", "9998-12-31"])
def test_the_first_and_last_today_are_answered(client: TestClient, today: str) -> None:
    for question in ("What happened in the past 999 days?", "What happened last year?",
                     "What happened after December?"):
        response = client.post("/answer", json={"question": question, "today": today})
        assert response.status_code == 200, response.text


def test_a_value_error_shows_its_message(client: TestClient) -> None:
    # FastAPI's own handler shows the exception in `ctx` as {}.
    response = client.post("/answer", json={"question": "x", "since": "2026-02-01",
                                            "until": "2026-01-01"})
    assert response.status_code == 422
    error = response.json()["detail"][0]
    assert "after" in error["msg"] and "after" in error["ctx"]["error"]


@pytest.mark.parametrize("value", [
    math.nan, -math.inf, 10**4000, -(10**300), b"\xff\xfe bytes", ValueError("bad \udfff"),
    {"k": [math.inf, {"x": math.nan}]}, ("tuple", b"b"), "\udfff", "x" * 10_000, object(),
    [[[]]] * 500, dt.date(2026, 1, 1),
])
def test_every_part_of_an_error_is_shown_as_json(value: Any) -> None:
    error = {"type": "t", "loc": ("body", "k\udfff", 0), "msg": "m \udfff", "input": value,
             "ctx": {"error": value, "le": value}}
    shown = shown_error(error)
    text = json.dumps(shown, allow_nan=False, ensure_ascii=False).encode("utf-8")
    assert len(text) < 1_500
    if isinstance(value, float):
        assert shown["input"] in ("NaN", "-Infinity")


def test_a_body_that_is_not_json_gets_422(client: TestClient) -> None:
    response = client.post("/answer", content=b"\xff\xfe not json",
                           headers={"content-type": "text/plain"})
    assert response.status_code == 422, response.text


# -- property-based: arbitrary JSON at every route --------------------------------------------

ANSWER_FIELDS = ["question", "history", "k", "since", "until", "sources", "today"]
CHAT_FIELDS = ["model", "messages", "stream", "stream_options", "n", "k", "since", "until",
               "sources", "today", "temperature", "top_p", "max_tokens", "user"]
NESTED_FIELDS = ["role", "content", "type", "text", "title", "body", "url", "published_at",
                 "author", "source", "lang", "id", "include_usage"]
WORDS = ["user", "assistant", "system", "tool", "newsdesk", "text", "2026-01-01", "2026-13-45",
         "What did the trade talks agree?", "Tariffs", "https://news.test/a", "en", ""]

text = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
numbers = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.sampled_from([2**63, -(2**63) - 1, 2**64, 10**20, -(10**300), 0, 1, 50, 51]),
    st.floats(allow_nan=True, allow_infinity=True),
)
non_finite = st.sampled_from([math.nan, math.inf, -math.inf])
scalars = st.none() | st.booleans() | numbers | non_finite | text | st.sampled_from(WORDS)


def json_values(keys: list[str]) -> st.SearchStrategy[Any]:
    """Any JSON value (with NaN and infinities), its objects keyed mostly by `keys`."""
    names = st.sampled_from(keys + NESTED_FIELDS) | text
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(names, inner, max_size=5), max_leaves=12)


questions = st.sampled_from(WORDS) | text
days = st.dates().map(str) | st.sampled_from(["2026-01-01", "2026-02-30", "20260101"])
roles = st.sampled_from(["user", "assistant", "system", "tool", "x"])
turns = st.fixed_dictionaries({"role": roles, "content": questions})
asked = st.builds(lambda before, question: [*before, {"role": "user", "content": question}],
                  st.lists(turns, max_size=2), questions)
# Values each field takes in a valid request, or nearly.
PLAUSIBLE: dict[str, st.SearchStrategy[Any]] = {
    "question": questions, "model": st.just("newsdesk"),
    "messages": asked | st.lists(turns, min_size=1, max_size=3),
    "history": st.lists(turns, max_size=3),
    "articles": st.lists(st.fixed_dictionaries({"title": questions, "body": questions}),
                         min_size=1, max_size=2),
    "k": st.integers(0, 51), "since": days, "until": days, "today": days,
    "sources": st.lists(st.sampled_from(["Reuters", "Kyodo", "x"]) | text, max_size=2),
    "stream": st.booleans(), "n": st.integers(0, 2),
    "stream_options": st.fixed_dictionaries({"include_usage": st.booleans()}),
    "temperature": st.floats(0, 2), "top_p": st.floats(0, 1),
}


def bodies(required: list[str], fields: list[str]) -> st.SearchStrategy[Any]:
    """Request bodies: plausible ones, near-valid ones (each field plausible or anything,
    some extra keys), arbitrary objects over the route's field names, any JSON value."""
    anything = json_values(fields)

    def field(name: str) -> st.SearchStrategy[Any]:
        return PLAUSIBLE.get(name, anything) | anything

    def fields_of(value: Callable[[str], st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
        return st.fixed_dictionaries({name: value(name) for name in required},
                                     optional={name: value(name) for name in fields
                                               if name not in required})

    plausible = fields_of(lambda name: PLAUSIBLE.get(name, anything))
    near = fields_of(field)
    extra = st.dictionaries(st.sampled_from(fields) | text, anything, max_size=2)
    # A plausible body with one number (maybe of a field it ignores) NaN or infinite.
    spoilt = st.builds(lambda body, key, number: {**body, key: number}, plausible,
                       st.sampled_from(fields) | text, non_finite)
    return st.one_of(plausible, st.builds(lambda a, b: {**b, **a}, plausible, extra), spoilt,
                     near,
                     st.builds(lambda a, b: {**b, **a}, near, extra),
                     st.dictionaries(st.sampled_from(fields) | text, anything, max_size=6),
                     anything)


def encoded(value: Any) -> st.SearchStrategy[bytes]:
    """`value` as the bytes of a request body, with NaN/Infinity literals as Python writes
    them; sometimes a number spelled 1e400 (infinite once parsed)."""
    raw = json.dumps(value, allow_nan=True)
    return st.sampled_from([raw, raw.replace("Infinity", "1e400"),
                            json.dumps(value, allow_nan=True, ensure_ascii=False)]
                           ).map(str.encode)


def has_non_finite(value: Any) -> bool:
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return any(has_non_finite(item) for item in value)
    return isinstance(value, float) and not math.isfinite(value)


ROUTES = {
    "/answer": bodies(["question"], ANSWER_FIELDS),
    "/answer/stream": bodies(["question"], ANSWER_FIELDS),
    "/articles": bodies(["articles"], ["articles"]),
    CHAT: bodies(["model", "messages"], CHAT_FIELDS),
}
FUZZ = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@pytest.mark.parametrize("path", sorted(ROUTES))
@FUZZ
@given(data=st.data())
def test_arbitrary_json_never_gets_a_5xx(client: TestClient, path: str,
                                         data: st.DataObject) -> None:
    body = data.draw(ROUTES[path].flatmap(encoded), label="body")
    response = post(client, path, body)
    event(f"HTTP {response.status_code}")  # --hypothesis-show-statistics: how many pass
    assert response.status_code < 500, response.text
    if has_non_finite(json.loads(body)):  # even where a field is ignored: JSON has no NaN
        assert response.status_code == (400 if path.startswith("/v1/") else 422)
    if response.status_code >= 400:
        payload = response.json()
        assert payload["error"]["message"] if path.startswith("/v1/") else payload["detail"]


query_values = st.one_of(
    numbers.map(str), text,
    st.sampled_from(["NaN", "inf", "-inf", "1e400", "99999999999999999999", "-0", "0x10",
                     "1_000", " 5", "1" + "0" * 5000, ""]),
)


@FUZZ
@given(params=st.dictionaries(st.sampled_from(["offset", "limit"]) | text, query_values,
                              max_size=3))
def test_arbitrary_query_parameters_never_get_a_5xx(client: TestClient,
                                                    params: dict[str, str]) -> None:
    response = client.get("/articles", params=params)
    event(f"HTTP {response.status_code}")
    assert response.status_code in (200, 422), response.text

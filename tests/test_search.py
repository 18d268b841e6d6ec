"""GET /api/v1/search: ranked full-text search over records and articles, on both backends."""

import re
from contextlib import ExitStack

import orjson
import pytest

from api import store
from schemas.queries import encode_offset

from .conftest import BACKENDS, dispose, empty_database, load, make_app
from .helpers import create_token, links, walk

QUERIES = [
    "gosuslugi",
    "Dagestan",
    '"partial mobilisation"',
    "mobili*",
    "desertion prison",
    '"up to 15 years"',
    "kaluzh*",
    "Georgia forever",
    "768,000",
]


def hits(client, query, **args):
    args = "".join(f"&{k}={v}" for k, v in args.items())
    return walk(client, f"/api/v1/search?q={query}&page_size=7{args}")


def searchable_text(record):
    """What search indexes of a record or article, lower-cased."""
    return " ".join(
        [record.get("title", ""), record.get("summary", ""), record.get("text", "") or ""]
        + [s["quote"] for s in record.get("sources", [])]
        + [record.get("notes") or "", record.get("headline") or ""]
    ).lower()


def plain(snippet):
    return re.sub(r"</?mark>", "", snippet)


@pytest.mark.parametrize("query", QUERIES)
def test_every_hit_contains_every_word(client, query):
    found = hits(client, query)
    assert found, query
    for hit in found:
        text = searchable_text(client.get(hit["url"]).json)
        words = re.findall(r"[^\W_]+", query.lower().replace("*", ""))
        for word in words:
            assert word in text, (query, hit["id"], word)


@pytest.mark.parametrize("type_name", ["event", "decree", "campaign", "penalty", "article"])
def test_a_type_name_is_searched_as_a_word_in_the_text_only(client, type_name):
    """Types are indexed beside the text (to filter by them); a query never matches them."""
    found = hits(client, type_name)
    matching_type = [h for h in found if h["type"] == type_name]
    total = client.get(f"/api/v1/search?q={type_name}&type={type_name}&page_size=1")
    assert int(total.headers["X-Total-Count"]) == len(matching_type)
    for hit in found:
        words = re.findall(r"[^\W_]+", searchable_text(client.get(hit["url"]).json))
        assert type_name in words, hit["id"]


def test_phrase_requires_the_words_in_order(client):
    phrase = {h["id"] for h in hits(client, '"partial mobilisation"')}
    words = {h["id"] for h in hits(client, "mobilisation partial")}
    reversed_phrase = {h["id"] for h in hits(client, '"mobilisation partial"')}
    assert phrase and phrase <= words
    assert not reversed_phrase


def test_prefix_matches_word_beginnings(client):
    prefix = {h["id"] for h in hits(client, "mobili*")}
    exact = {h["id"] for h in hits(client, "mobilisation")} | {
        h["id"] for h in hits(client, "mobilization")
    }
    assert exact and exact <= prefix


def test_hits_are_ranked_with_highlighted_snippets(client):
    found = hits(client, "Dagestan")
    scores = [h["score"] for h in found]
    assert scores == sorted(scores, reverse=True)
    assert {h["type"] for h in found} >= {"event", "article"}
    for hit in found:
        assert "<mark>" in hit["snippet"]
        assert "dagestan" in re.findall(r"<mark>(.*?)</mark>", hit["snippet"].lower())
        assert hit["url"].endswith(f"/{hit['id']}")
    assert "<" not in plain(found[0]["snippet"])


def test_type_filter_and_paging(client):
    only_articles = hits(client, "putin", type="article")
    assert only_articles and {h["type"] for h in only_articles} == {"article"}
    first = client.get("/api/v1/search?q=putin&page_size=3")
    total = int(first.headers["X-Total-Count"])
    assert total > 3 and "next" in links(first)
    assert len(hits(client, "putin")) == total
    second = client.get(links(first)["next"])
    assert "prev" in links(second)
    beyond = client.get(f"/api/v1/search?q=putin&page_size=3&cursor={encode_offset(total + 3)}")
    assert beyond.status_code == 200 and beyond.json == []
    assert int(beyond.headers["X-Total-Count"]) == total  # counted apart: no hit to count on


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("q=", "q"),
        ("q=%22%22", "q"),
        ("q=x&type=tweet", "type"),
        ("", "q"),
        ("q=x&cursor=zz", "cursor"),
    ],
)
def test_bad_search_arguments(client, query, field):
    response = client.get(f"/api/v1/search?{query}")
    assert response.status_code == 422
    assert field in response.json["errors"]["query"]


@pytest.fixture(scope="module")
def clients_by_backend(tmp_path_factory):
    """The shipped dataset loaded on every reachable backend at once."""
    with ExitStack() as stack:
        apps = {}
        for backend in BACKENDS:
            url = stack.enter_context(empty_database(backend, tmp_path_factory.mktemp(backend)))
            apps[backend] = make_app(url)
            stack.callback(dispose, apps[backend])
            assert load(apps[backend]).exit_code == 0
        yield {backend: app.test_client() for backend, app in apps.items()}


@pytest.mark.skipif(len(BACKENDS) < 2, reason="PostgreSQL is not reachable")
@pytest.mark.parametrize("query", QUERIES + ["putin", "the", "conscript*", '"call-up"'])
def test_sqlite_and_postgresql_find_the_same_hits(clients_by_backend, query):
    found = {
        backend: {(h["type"], h["id"]) for h in hits(client, query)}
        for backend, client in clients_by_backend.items()
    }
    assert found["sqlite"] == found["postgresql"]
    assert found["sqlite"], query


def test_pages_in_and_beyond_the_kept_window_agree_and_follow_writes(backend, new_app, monkeypatch):
    """A search's first hits are ranked once per data revision and kept (store.search): its
    pages from that window and beyond it are one ranking, and a write shows at once."""
    monkeypatch.setattr(store, "RANKED_WINDOW", 5)
    app, _ = new_app(backend)
    assert load(app).exit_code == 0
    client, auth = app.test_client(), {"Authorization": f"Bearer {create_token(app)}"}
    url = "/api/v1/search?q=putin"
    whole = client.get(f"{url}&page_size=500").json  # beyond the windows: ranked apart
    assert len(whole) > 20
    # Windows of 5, 10 and 20 hits (store._window_size): page 1, pages 2-3, 4-6, then none.
    assert walk(client, f"{url}&page_size=3") == whole
    assert walk(client, f"{url}&page_size=3") == whole  # the kept windows again
    event = {
        "kind": "report",
        "title": "Putin in a test event",
        "summary": "What the cited passage states.",
        "date": None,
        "sources": [
            {
                "article_id": "kaluzhnii-reports-for-service",
                "quote": "a prominent actor known for his role in the television series",
            }
        ],
    }
    created = client.post("/api/v1/events", json=event, headers=auth)
    assert created.status_code == 201, created.json
    after = walk(client, f"{url}&page_size=3")
    assert after == client.get(f"{url}&page_size=500").json
    assert [h["id"] for h in after if h["type"] == "event" and h["id"] == created.json["id"]]
    assert len(after) == len(whole) + 1


def test_a_streamed_search_reads_its_documents_in_batches(client, monkeypatch):
    """Every hit, as NDJSON, read a few documents at a time (a common word has more hits than
    one statement may bind): the same hits in the same order as the pages."""
    monkeypatch.setattr(store, "HIT_BATCH", 2)
    pages = walk(client, "/api/v1/search?q=putin&page_size=3")
    streamed = client.get("/api/v1/search?q=putin&format=ndjson")
    assert streamed.status_code == 200 and streamed.mimetype == "application/x-ndjson"
    lines = [orjson.loads(line) for line in streamed.get_data().splitlines()]
    assert len(pages) > 4 and lines == pages


@pytest.mark.parametrize("window", [3, 4, 6])
def test_a_window_that_ends_among_tied_scores_keeps_their_order(
    backend, new_app, monkeypatch, window
):
    """Hits of equal score go by type and id. A kept window (store.search) ranks the best
    scores alone and drops the score it is cut at, whose other hits may lie beyond it: its
    pages and the pages past it are still one ranking, whether the cut falls among the tied
    hits (3, 4) or after them (6), or the best score alone has more hits than the window."""
    monkeypatch.setattr(store, "RANKED_WINDOW", window)
    app, _ = new_app(backend)
    assert load(app).exit_code == 0
    client, auth = app.test_client(), {"Authorization": f"Bearer {create_token(app)}"}
    article = "kaluzhnii-reports-for-service"
    text = client.get(f"/api/v1/articles/{article}").json["text"]
    words = list(re.finditer(r"[^\W_]+", text))
    # Passages of six words each, from different places: as long, so as well scored.
    passages = iter(text[words[i].start() : words[i + 5].end()] for i in range(0, 600, 50))

    def add(title: str) -> str:
        source = {"article_id": article, "quote": next(passages)}
        event = {"kind": "report", "title": title, "summary": "Stated.", "sources": [source]}
        created = client.post("/api/v1/events", json={**event, "date": None}, headers=auth)
        assert created.status_code == 201, created.json
        return created.json["id"]

    best = [add("Zorbly zorbly twice"), add("Zorbly zorbly again")]
    # Written in the reverse of their id order, so that the order in which they were written
    # (which SQLite keeps among equals) is not the order they are shown in.
    tied = [add(f"Zorbly once {letter}") for letter in "dcba"]
    url = "/api/v1/search?q=zorbly"
    whole = client.get(f"{url}&page_size=500").json  # past any window: ranked apart
    assert [h["id"] for h in whole[2:]] == sorted(tied)
    assert {h["id"] for h in whole[:2]} == set(best)
    for size in (1, 2, 4):
        assert walk(client, f"{url}&page_size={size}") == whole, size
        first = client.get(f"{url}&page_size={size}")
        assert first.headers["X-Total-Count"] == str(len(whole)), size
    only_tied = [h for h in walk(client, f"{url}+once&page_size=2")]
    assert [h["id"] for h in only_tied] == sorted(tied)  # more tied hits than the window

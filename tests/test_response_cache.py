"""A worker's answers kept by their ETag (conditional.ResponseCache): the same request at the
same data revision gets the same answer without its queries, and any write shows at once."""

import pytest
from sqlalchemy import event

from api import create_app
from api.config import ConfigError

from .conftest import dispose, load
from .helpers import create_token

API = "/api/v1"
URLS = [
    f"{API}/events?page_size=3&sort=-date",
    f"{API}/events?kind=protest&page_size=2",
    f"{API}/decrees",
    f"{API}/search?q=mobilisation&page_size=4",
    f"{API}/events/facets?facets=kind,year",
    f"{API}/timeline?page_size=5",
    f"{API}/actors?page_size=4",
    f"{API}/articles",
    f"{API}/events?page_size=2&format=csv",  # streamed: never kept, still answered alike
]
PER_RESPONSE = {"X-Request-Id", "Date"}


@pytest.fixture
def cached(backend, new_database):
    app = create_app(
        {"TESTING": True, "DATABASE_URL": new_database(backend), "RESPONSE_CACHE_MB": "4"}
    )
    assert load(app).exit_code == 0
    statements = []
    engine = app.extensions["db"].kw["bind"]
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    yield app, statements
    dispose(app)


def answer(response) -> tuple:
    headers = sorted((k, v) for k, v in response.headers.items() if k not in PER_RESPONSE)
    return response.status_code, headers, response.get_data()


def test_the_same_request_again_is_the_same_answer_without_its_queries(cached):
    app, statements = cached
    client = app.test_client()
    for url in URLS:
        first = answer(client.get(url))  # read whole: a stream holds its request context
        assert first[0] == 200, url
        del statements[:]
        again = client.get(url, headers={"X-Request-Id": "again-1"})
        assert answer(again) == first, url
        assert again.headers["X-Request-Id"] == "again-1", url
        if "format=csv" not in url:  # the revision, nothing else
            ran = [s.split("\n")[0] for s in statements if s != "BEGIN"]
            assert ran == ["SELECT dataset_state.revision "], url
    cors = client.get(URLS[0], headers={"Origin": "https://example.org"})
    assert cors.headers["Access-Control-Allow-Origin"] == "*"
    assert client.get(f"{URLS[0]}&format=csv").mimetype == "text/csv"  # not the JSON kept


def test_a_write_shows_at_once(cached):
    app, _ = cached
    client, auth = app.test_client(), {"Authorization": f"Bearer {create_token(app)}"}
    url = f"{API}/events?page_size=1&sort=-updated_at"
    before = client.get(url)
    event_ = {
        "kind": "report",
        "title": "A new event after the page was kept",
        "summary": "What the cited passage states.",
        "date": None,
        "sources": [
            {
                "article_id": "kaluzhnii-reports-for-service",
                "quote": "a prominent actor known for his role in the television series",
            }
        ],
    }
    created = client.post(f"{API}/events", json=event_, headers=auth)
    assert created.status_code == 201, created.json
    after = client.get(url)
    assert after.json[0]["id"] == created.json["id"] != before.json[0]["id"]
    assert after.headers["ETag"] != before.headers["ETag"]


@pytest.mark.parametrize("value", ["lots", "-1", "nan"])
def test_a_cache_size_that_cannot_work_stops_the_app_naming_it(value):
    with pytest.raises(ConfigError, match="RESPONSE_CACHE_MB"):
        create_app({"TESTING": True, "RESPONSE_CACHE_MB": value})

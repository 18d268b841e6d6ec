"""One answer, one snapshot: a commit that lands between the statements of a request (a
ranking and its documents, the revision that keys a page's count and the page) does not show
in the answer."""

import pytest
from sqlalchemy import event, text

from api.db import make_engine

from .conftest import load


@pytest.fixture
def commit_midway(backend, new_app):
    """A loaded app, and a way to commit SQL from another connection just before the first
    statement of the request that matches `marker` runs."""
    app, url = new_app(backend)
    assert load(app).exit_code == 0
    writer = make_engine(url)
    engine = app.extensions["db"].kw["bind"]
    armed = {}

    def before(connection, cursor, statement, *args):
        if armed and armed["marker"] in statement:
            sql = armed.pop("sql")
            armed.clear()
            with writer.begin() as other:
                other.execute(text(sql))

    event.listen(engine, "before_cursor_execute", before)

    def arm(marker: str, sql: str):
        armed.update(marker=marker, sql=sql)
        return armed

    yield app.test_client(), arm
    writer.dispose()


def test_a_search_page_reads_the_documents_it_ranked(commit_midway):
    client, arm = commit_midway
    expected = client.get("/api/v1/search?q=mobilisation&page_size=10").json
    fired = arm("search_documents.id IN", "DELETE FROM search_documents")
    response = client.get("/api/v1/search?q=mobilisation&page_size=10")
    assert not fired, "the commit did not happen between the two statements"
    assert [hit["id"] for hit in response.json] == [hit["id"] for hit in expected]


def test_a_list_page_is_read_at_the_revision_of_its_count(commit_midway):
    client, arm = commit_midway
    expected = client.get("/api/v1/events?page_size=5&kind=protest").json
    # The page's statement (its keys and stored forms) runs after the revision was read.
    fired = arm("json_form", "DELETE FROM facts WHERE type = 'event' AND kind = 'protest'")
    response = client.get("/api/v1/events?page_size=5&kind=protest")
    assert not fired, "the commit did not happen between the two statements"
    assert [r["id"] for r in response.json] == [r["id"] for r in expected]
    assert int(response.headers["X-Total-Count"]) >= len(expected)


def test_connections_broken_by_a_database_restart_are_replaced(backend, new_app):
    if backend != "postgresql":
        pytest.skip("a PostgreSQL restart ends pooled connections; SQLite has none to end")
    app, url = new_app(backend)
    assert load(app).exit_code == 0
    client = app.test_client()
    engine = app.extensions["db"].kw["bind"]
    pooled = [engine.connect() for _ in range(max(1, engine.pool.checkedin()))]
    pids = [connection.scalar(text("SELECT pg_backend_pid()")) for connection in pooled]
    for connection in pooled:
        connection.close()  # back into the pool, to be handed to the next requests
    # What a restart does to a pool: the server processes of its connections end.
    admin = make_engine(url)
    with admin.connect() as connection:
        for pid in pids:
            assert connection.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    admin.dispose()
    statuses = [client.get("/api/v1/events?page_size=1").status_code for _ in range(3)]
    assert statuses == [200, 200, 200]

"""Every error is an RFC 9457 problem (application/problem+json), never HTML; the database's
failures are a 503 that says so, never a 500, and never create or change a database."""

import pytest
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from .conftest import make_app


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status
    assert response.mimetype == "application/problem+json", response.data[:200]
    body = response.json
    assert body["status"] == status
    assert body["type"] == "about:blank"
    assert body["title"] and body["detail"]
    assert "Traceback" not in response.get_data(as_text=True)
    return body


@pytest.mark.parametrize(
    "path", ["/api/v1/nothing-here", "/nothing", "/api/v2/decrees", "/api/v1//events"]
)
def test_unknown_path_is_a_404_problem(client, path):
    # The path as a server receives it (a test client would read "//x" as a host name).
    assert_problem(client.get("/", environ_overrides={"PATH_INFO": path}), 404)


@pytest.mark.parametrize(
    "url", ["/api/v1/events/x%00y", "/api/v1/actors/A%20B", "/api/v1/articles/%FF"]
)
def test_ids_that_are_not_slugs_are_a_404_before_the_database(client, url):
    assert_problem(client.get(url), 404)


def test_wrong_method_is_a_405_problem_with_allow(client):
    response = client.delete("/api/v1/decrees")
    assert_problem(response, 405)
    assert "GET" in response.headers["Allow"]


def test_a_422_names_the_parameter_in_its_detail(client):
    body = assert_problem(client.get("/api/v1/events?page_size=0"), 422)
    assert body["errors"]["query"]["page_size"]
    assert body["detail"].startswith("Invalid query parameter page_size:")


def test_detail_endpoints_refuse_query_parameters(client):
    for url in (
        "/api/v1/events/event-anti-war-protests?format=csv",
        "/api/v1/actors/vladimir-putin?x=1",
        "/api/v1/articles/after-russia-kill-or-be-killed/facts?format=csv",
    ):
        body = assert_problem(client.get(url), 422)
        assert body["errors"]["query"]


def test_an_unexpected_failure_is_a_500_problem(tmp_path):
    app = make_app(f"sqlite:///{tmp_path / 'facts.sqlite3'}")
    app.config.update(TESTING=False, PROPAGATE_EXCEPTIONS=False)

    def broken():
        raise RuntimeError("a bug")

    app.add_url_rule("/broken", "broken", broken)
    body = assert_problem(app.test_client().get("/broken"), 500)
    assert "a bug" not in body["detail"]


@pytest.mark.parametrize("state", ["missing", "empty", "corrupt", "no schema"])
def test_a_database_that_is_not_there_is_a_503_and_is_not_created(tmp_path, state):
    path = tmp_path / "facts.sqlite3"
    if state == "empty":
        path.touch()
    elif state == "corrupt":
        path.write_bytes(b"this is not a database" * 100)
    elif state == "no schema":
        import sqlite3

        sqlite3.connect(path).execute("CREATE TABLE unrelated (x)").connection.close()
    before = path.read_bytes() if path.exists() else None
    client = make_app(f"sqlite:///{path}").test_client()
    for url in ("/api/v1/decrees", "/api/v1/events/event-anti-war-protests", "/readyz"):
        response = client.get(url)
        assert_problem(response, 503)
        assert response.headers["Retry-After"]
    assert client.get("/healthz").status_code == 200  # alive, only not ready
    assert (path.read_bytes() if path.exists() else None) == before


def test_readiness_says_ok_and_the_revision_on_a_loaded_database(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json["status"] == "ok" and response.json["revision"] >= 1


def test_readiness_is_503_before_the_data_is_loaded(new_app, backend):
    app, _ = new_app(backend)
    assert app.test_cli_runner().invoke(args=["db", "upgrade"]).exit_code == 0
    body = assert_problem(app.test_client().get("/readyz"), 503)
    assert "not loaded" in body["detail"]


@pytest.mark.parametrize("path", ["/", "//"])
def test_root_redirects_to_the_docs_without_a_body(client, path):
    response = client.get("/", environ_overrides={"PATH_INFO": path})
    assert response.status_code == 302
    assert response.headers["Location"] == "/api/v1/docs"
    assert response.data == b"" and "Content-Type" not in response.headers


def test_a_database_lost_after_the_answer_does_not_spoil_it(client, monkeypatch):
    """The session is closed after the response is made: if the database went away by
    then (its ROLLBACK fails), the answer still goes out as it was made."""
    close = Session.close

    def close_then_fail(session):
        close(session)
        raise OperationalError("ROLLBACK", {}, Exception("server closed the connection"))

    monkeypatch.setattr(Session, "close", close_then_fail)
    response = client.get("/api/v1/events?page_size=1")
    assert response.status_code == 200 and len(response.json) == 1


@pytest.mark.parametrize("url", ["/healthz?x=1", "/readyz?verbose=true", "/metrics?name=x"])
def test_operations_refuse_parameters_they_do_not_take(client, url):
    assert assert_problem(client.get(url), 422)["errors"]["query"]


@pytest.mark.parametrize("header", ['""', '"", ""', 'W/""', '"", W/""', 'W/"x", "y"', "*"])
def test_odd_if_none_match_headers_are_no_error(client, header):
    response = client.get("/api/v1/events?page_size=2", headers={"If-None-Match": header})
    assert response.status_code == (304 if header == "*" else 200)


def test_bad_arguments_win_over_a_matching_etag(client):
    response = client.get("/api/v1/events?page_size=0", headers={"If-None-Match": "*"})
    assert response.status_code == 422


def test_star_does_not_hide_a_missing_record(client):
    response = client.get("/api/v1/events/no-such-event", headers={"If-None-Match": "*"})
    assert response.status_code == 404


@pytest.mark.parametrize("url", ["/api/v1/timeline?q=--", "/api/v1/search?q=%21%21%00"])
def test_text_of_ascii_punctuation_alone_is_refused(client, url):
    response = client.get(url)
    assert response.status_code == 422
    assert "q" in response.json["errors"]["query"]


@pytest.mark.parametrize(
    "url",
    ["/api/v1/events?q=%C2%B1%00", "/api/v1/search?q=%E2%82%AC", "/api/v1/search?q=%F0%9F%98%8D"],
)
def test_text_without_a_word_is_valid_and_matches_nothing(client, url):
    response = client.get(url)
    assert response.status_code == 200
    assert response.json == [] and response.headers["X-Total-Count"] == "0"

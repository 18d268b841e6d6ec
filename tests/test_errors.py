"""Every error answers JSON of one shape: {code, status, message[, errors]}; never HTML."""

import pytest

from .conftest import make_app


def assert_error(response, code: int):
    assert response.status_code == code
    assert response.is_json, response.data[:200]
    body = response.json
    assert body["code"] == code
    assert body["status"] and body["message"]
    return body


@pytest.mark.parametrize("url", ["/api/v1/nothing-here", "/nothing", "/api/v2/decrees"])
def test_unknown_path_is_json_404(client, url):
    assert_error(client.get(url), 404)


def test_wrong_method_is_json_405_with_allow(client):
    response = client.delete("/api/v1/decrees")
    assert_error(response, 405)
    assert "GET" in response.headers["Allow"]


def test_unexpected_failure_is_json_500(tmp_path):
    app = make_app(f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    app.config.update(TESTING=False, PROPAGATE_EXCEPTIONS=False)
    # No schema: the query fails inside SQLAlchemy, as any unexpected error would.
    response = app.test_client().get("/api/v1/decrees")
    body = assert_error(response, 500)
    assert "Traceback" not in body["message"]


def test_root_redirects_to_the_docs(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/api/v1/docs")


@pytest.mark.parametrize("header", ['""', '"", W/""', 'W/"x", "y"', "*"])
def test_odd_if_none_match_headers_are_no_error(client, header):
    response = client.get("/api/v1/events?page_size=2", headers={"If-None-Match": header})
    assert response.status_code == (304 if header == "*" else 200)


def test_bad_arguments_win_over_a_matching_etag(client):
    response = client.get("/api/v1/events?page_size=0", headers={"If-None-Match": "*"})
    assert response.status_code == 422


def test_star_does_not_hide_a_missing_record(client):
    response = client.get("/api/v1/events/no-such-event", headers={"If-None-Match": "*"})
    assert response.status_code == 404


@pytest.mark.parametrize(
    "url", ["/api/v1/events?q=%C2%B1%00", "/api/v1/timeline?q=--", "/api/v1/search?q=%21%21"]
)
def test_text_without_words_is_refused(client, url):
    response = client.get(url)
    assert response.status_code == 422
    assert "q" in response.json["errors"]["query"]

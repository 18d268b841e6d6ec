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

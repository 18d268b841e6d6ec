"""The cheap conditional GET (api/conditional.py): once the app has answered a request 304,
the same request with a current tag is answered in front of the app, with the same headers;
anything that could answer differently goes to the app."""

import pytest

from .conftest import load
from .helpers import create_token, json_lines

API = "/api/v1"
EVENTS = f"{API}/events?page_size=5&sort=-date"


@pytest.fixture
def site(backend, new_app):
    app, _ = new_app(backend)
    assert load(app).exit_code == 0
    reached = []  # one entry per request that the app itself handled
    app.before_request(lambda: reached.append(1))
    return app, app.test_client(), reached


def learned(client, url: str = EVENTS, **headers) -> str:
    """The tag of `url`, after the app has answered it 304 once (which teaches the layer)."""
    tag = client.get(url, headers=headers).headers["ETag"]
    assert client.get(url, headers={**headers, "If-None-Match": tag}).status_code == 304
    return tag


def without_request_id(response) -> list:
    return sorted((k, v) for k, v in response.headers.items() if k != "X-Request-Id")


def test_a_known_request_is_answered_304_in_front_of_the_app_with_the_apps_headers(site):
    app, client, reached = site
    tag = client.get(EVENTS).headers["ETag"]
    by_app = client.get(EVENTS, headers={"If-None-Match": tag})
    before = len(reached)
    in_front = client.get(EVENTS, headers={"If-None-Match": f'W/"x", {tag}'})
    assert in_front.status_code == 304 and len(reached) == before
    assert without_request_id(in_front) == without_request_id(by_app)
    assert in_front.headers["X-Request-Id"] != by_app.headers["X-Request-Id"]
    assert (
        client.get(EVENTS, headers={"If-None-Match": tag, "X-Request-Id": "trace-1"}).headers[
            "X-Request-Id"
        ]
        == "trace-1"
    )
    assert client.head(EVENTS, headers={"If-None-Match": tag}).status_code == 304


def test_the_layer_keeps_the_requests_it_learned_last(site):
    app, client, reached = site
    app.wsgi_app.entries = 2
    urls = [f"{API}/events?page_size={size}" for size in (1, 2, 3)]
    tags = [learned(client, url) for url in urls]  # the first one is let go
    expected = zip(urls, tags, (False, True, True), strict=True)
    for url, tag, in_front in reversed(list(expected)):  # the app's answer teaches it again
        before = len(reached)
        assert client.get(url, headers={"If-None-Match": tag}).status_code == 304
        assert (len(reached) == before) == in_front, url


def test_a_write_makes_the_tag_stale_and_the_app_answers_again(site):
    app, client, reached = site
    tag = learned(client)
    token = create_token(app, "ada", "admin")
    actor = client.get(f"{API}/actors/vladimir-putin")
    changed = client.patch(
        f"{API}/actors/vladimir-putin",
        json={"description": "President of Russia."},
        headers={
            "Authorization": f"Bearer {token}",
            "If-Match": actor.headers["ETag"],
            "Content-Type": "application/merge-patch+json",
        },
    )
    assert changed.status_code == 200, changed.json
    before = len(reached)
    again = client.get(EVENTS, headers={"If-None-Match": tag})
    assert again.status_code == 200 and len(reached) == before + 1
    assert again.headers["ETag"] != tag


@pytest.mark.parametrize(
    "headers",
    [
        {"If-None-Match": "*"},  # any representation: the app decides
        {"Min-Dataset-Seq": "1"},  # read-your-writes: the app picks the database
        {"Origin": "https://example.org"},  # another origin: CORS headers of its own
        {"Accept": "text/csv"},  # another representation
    ],
)
def test_what_could_be_answered_otherwise_goes_to_the_app(site, headers):
    app, client, reached = site
    tag = learned(client)
    before = len(reached)
    response = client.get(EVENTS, headers={"If-None-Match": tag, **headers})
    assert len(reached) == before + 1
    assert response.status_code in (200, 304)


def test_bad_arguments_are_refused_whatever_the_tag(site):
    app, client, reached = site
    tag = learned(client)
    for url in (f"{API}/events?page_size=0", f"{API}/events?page_size=5&sort=-date&x=1"):
        response = client.get(url, headers={"If-None-Match": tag})
        assert response.status_code == 422 and response.mimetype == "application/problem+json"


def test_a_request_without_host_is_still_refused(site):
    app, client, reached = site
    tag = learned(client)
    response = client.get(
        EVENTS, headers={"If-None-Match": tag}, environ_overrides={"HTTP_HOST": ""}
    )
    assert response.status_code == 400


def test_a_304_in_front_of_the_app_is_counted_and_logged(site, capsys):
    app, client, reached = site
    tag = learned(client)
    app.wsgi_app.log_access = True  # tests run with the access log off
    metrics = client.get("/metrics").get_data(as_text=True)
    before = len(reached)
    capsys.readouterr()
    response = client.get(EVENTS, headers={"If-None-Match": tag, "X-Request-Id": "r-304"})
    assert response.status_code == 304 and len(reached) == before
    (line,) = [
        line for line in json_lines(capsys.readouterr().err) if line["request_id"] == "r-304"
    ]
    assert (line["logger"], line["status"], line["endpoint"], line["query"]) == (
        "api.access",
        304,
        "events.FactList",
        "page_size=5&sort=-date",
    )

    def count(text: str) -> float:
        series = 'http_requests_total{endpoint="events.FactList",method="GET",status="304"}'
        return next(float(s.split()[-1]) for s in text.splitlines() if s.startswith(series))

    assert count(client.get("/metrics").get_data(as_text=True)) == count(metrics) + 1


def test_an_error_in_front_of_the_app_leaves_the_answer_to_the_app(site, monkeypatch):
    app, client, reached = site
    tag = learned(client)

    def broken():
        raise ConnectionError("no connection")

    monkeypatch.setattr(app.wsgi_app, "_revision", broken)
    before = len(reached)
    response = client.get(EVENTS, headers={"If-None-Match": tag})
    assert response.status_code == 304 and len(reached) == before + 1

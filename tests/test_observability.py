"""Request ids, JSON logs and Prometheus metrics, through the HTTP API and under gunicorn."""

import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from api import create_app, observability
from api.config import PROJECT_DIR

from .conftest import dispose, load
from .helpers import gunicorn, json_lines

GENERATED_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def fresh_app(new_database, backend):
    """A factory of apps on an empty database with extra settings; closed at teardown."""
    apps = []

    def make(**settings):
        config = {"TESTING": True, "DATABASE_URL": new_database(backend), **settings}
        apps.append(create_app(config))
        return apps[-1]

    yield make
    for app in apps:
        dispose(app)


def sample(metrics_text: str, name: str, **labels) -> float:
    """The value of one sample of a Prometheus text exposition, 0 when it is absent."""
    for family in text_string_to_metric_families(metrics_text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return 0.0


def scrape(client) -> str:
    response = client.get("/metrics")
    assert response.status_code == 200
    return response.text


# X-Request-Id


@pytest.mark.parametrize(
    "given",
    ["3f2b8c1e-4d5a-4b6c-9e7f-0a1b2c3d4e5f", "01HZX3A8QK", "trace.span:42_a-b", "x", "a" * 128],
)
def test_a_sane_request_id_is_echoed(client, given):
    response = client.get("/healthz", headers={"X-Request-Id": given})
    assert response.headers["X-Request-Id"] == given


@pytest.mark.parametrize(
    "given",
    [
        "a" * 129,  # too long
        "",  # empty
        "has spaces",
        "abc\r\nSet-Cookie: stolen=1",  # a header injection attempt
        "abc\nforged log line",
        "café",  # non-ASCII
        "идентификатор",
        'quote"d',
        "one, two",  # what two X-Request-Id headers join into
    ],
)
def test_an_insane_request_id_is_replaced_by_a_generated_one(client, given):
    # Set in the WSGI environ directly: the test client itself refuses newlines in headers.
    response = client.get("/healthz", environ_overrides={"HTTP_X_REQUEST_ID": given})
    assert response.status_code == 200
    assert GENERATED_ID.fullmatch(response.headers["X-Request-Id"])
    assert "Set-Cookie" not in response.headers


def test_each_request_without_an_id_gets_a_new_one(client):
    ids = {client.get("/healthz").headers["X-Request-Id"] for _ in range(3)}
    assert len(ids) == 3 and all(GENERATED_ID.fullmatch(i) for i in ids)


def test_routing_errors_carry_a_request_id(client):
    not_found = client.get("/no/such/path")
    not_allowed = client.post("/metrics")
    assert (not_found.status_code, not_allowed.status_code) == (404, 405)
    assert GENERATED_ID.fullmatch(not_found.headers["X-Request-Id"])
    assert GENERATED_ID.fullmatch(not_allowed.headers["X-Request-Id"])
    given = client.get("/no/such/path", headers={"X-Request-Id": "mine-404"})
    assert given.headers["X-Request-Id"] == "mine-404"


def test_a_view_error_carries_the_request_id(client):
    response = client.get("/api/v1/decrees/no-such-decree", headers={"X-Request-Id": "r-1"})
    assert response.status_code == 404
    assert response.headers["X-Request-Id"] == "r-1"


# JSON logs


def test_each_request_writes_one_json_access_line(fresh_app, capsys):
    client = fresh_app(ACCESS_LOG=True).test_client()
    capsys.readouterr()
    headers = {"X-Request-Id": "access-1", "User-Agent": "observability-test/1"}
    response = client.get("/metrics", headers=headers)
    generated = client.get("/no/such/path?verbose=1").headers["X-Request-Id"]

    lines = [line for line in json_lines(capsys.readouterr().err) if line["logger"] == "api.access"]
    assert [line["request_id"] for line in lines] == ["access-1", generated]
    first = lines[0]
    assert first["level"] == "INFO"
    assert first["message"] == "GET /metrics 200"
    assert (first["method"], first["path"], first["query"]) == ("GET", "/metrics", "")
    assert (first["status"], first["endpoint"]) == (200, "metrics")
    assert first["bytes"] == len(response.data) > 0
    assert first["remote_addr"] == "127.0.0.1"
    assert first["user_agent"] == "observability-test/1"
    assert isinstance(first["duration_ms"], float) and first["duration_ms"] >= 0
    assert first["timestamp"] and isinstance(first["pid"], int)
    assert (lines[1]["status"], lines[1]["endpoint"]) == (404, "unmatched")
    assert lines[1]["query"] == "verbose=1"


def test_tests_write_no_access_lines_by_default(client, capsys):
    capsys.readouterr()
    assert client.get("/healthz").status_code == 200
    assert "api.access" not in capsys.readouterr().err


def test_an_unhandled_exception_is_logged_as_json_with_the_request_id(fresh_app, capsys):
    app = fresh_app(PROPAGATE_EXCEPTIONS=False)

    def boom():
        raise RuntimeError("kaboom")

    app.add_url_rule("/boom", "boom", boom)
    capsys.readouterr()
    response = app.test_client().get("/boom", headers={"X-Request-Id": "err-1"})

    assert response.status_code == 500
    assert response.headers["X-Request-Id"] == "err-1"
    errors = [line for line in json_lines(capsys.readouterr().err) if line["level"] == "ERROR"]
    assert len(errors) == 1
    assert errors[0]["logger"] == "api" and errors[0]["request_id"] == "err-1"
    assert "RuntimeError: kaboom" in errors[0]["exc_info"]


# Prometheus metrics


def test_metrics_speak_the_prometheus_text_format(client):
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert response.headers["X-Request-Id"]
    families = {family.name for family in text_string_to_metric_families(response.text)}
    assert {"http_requests", "http_request_duration_seconds", "database_errors"} <= families


def test_requests_are_counted_by_endpoint_and_status_never_by_path(client):
    detail = {"endpoint": "decrees.FactDetail", "method": "GET", "status": "404"}
    unmatched = {"endpoint": "unmatched", "method": "GET", "status": "404"}
    before = scrape(client)
    client.get("/api/v1/decrees/no-such-decree")
    client.get("/api/v1/decrees/no-such-decree-either")
    client.get("/no/such/path")
    after = scrape(client)

    counted = "http_requests_total"
    assert sample(after, counted, **detail) - sample(before, counted, **detail) == 2
    assert sample(after, counted, **unmatched) - sample(before, counted, **unmatched) == 1
    timed = ("http_request_duration_seconds_count", {"endpoint": "decrees.FactDetail"})
    assert sample(after, timed[0], **timed[1]) - sample(before, timed[0], **timed[1]) == 2
    assert "no-such-decree" not in after and "/no/such/path" not in after


def test_an_unknown_method_is_counted_as_other(client):
    labels = {"endpoint": "unmatched", "method": "other", "status": "405"}
    before = sample(scrape(client), "http_requests_total", **labels)
    assert client.open("/metrics", method="BREW").status_code == 405
    assert sample(scrape(client), "http_requests_total", **labels) == before + 1
    assert 'method="BREW"' not in scrape(client)


def test_database_errors_are_counted(client):
    before = scrape(client)
    assert "database_errors_total" in before  # exported from the start, at 0 if none yet
    observability.record_database_error()
    after = scrape(client)
    assert sample(after, "database_errors_total") == sample(before, "database_errors_total") + 1


def test_an_unreachable_database_is_counted_as_a_database_error(tmp_path):
    # The database file does not exist: every query fails (the error handler's job to count).
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'missing.db'}"})
    client = app.test_client()
    try:
        before = sample(scrape(client), "database_errors_total")
        response = client.get("/api/v1/decrees", headers={"X-Request-Id": "db-down"})
        assert response.status_code >= 500
        assert response.headers["X-Request-Id"] == "db-down"
        assert sample(scrape(client), "database_errors_total") == before + 1
    finally:
        dispose(app)


# Several processes: prometheus_client's multiprocess mode, then gunicorn itself

COUNT_REQUESTS = """
import sys
from api import create_app
client = create_app({"TESTING": True, "DATABASE_URL": sys.argv[1]}).test_client()
for _ in range(int(sys.argv[2])):
    assert client.get("/no/such/path").status_code == 404
if sys.argv[3] == "scrape":
    print(client.get("/metrics").text)
"""
UNMATCHED_404 = {"endpoint": "unmatched", "method": "GET", "status": "404"}


def count_in_process(metrics_dir: Path, requests: int, scrape: bool = False) -> str:
    url = f"sqlite:///{metrics_dir.parent / 'unused.sqlite3'}"
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    args = [url, str(requests), "scrape" if scrape else "-"]
    result = subprocess.run(
        [sys.executable, "-c", COUNT_REQUESTS, *args],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_with_a_multiprocess_directory_a_scrape_sums_every_process(tmp_path):
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    count_in_process(metrics_dir, 3)  # another worker, gone since
    scraped = count_in_process(metrics_dir, 2, scrape=True)
    assert sample(scraped, "http_requests_total", **UNMATCHED_404) == 5


def get(port: int, path: str, request_id: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if request_id:
        request.add_header("X-Request-Id", request_id)
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, response.read()


def access_lines(log: Path, id_prefix: str) -> list[dict]:
    """The app's access lines in a gunicorn log, of the requests whose ids have the prefix."""
    return [
        line
        for line in json_lines(log.read_text())
        if line["logger"] == "api.access" and line["request_id"].startswith(id_prefix)
    ]


def test_gunicorn_logs_json_only_and_its_workers_share_metrics(new_app, tmp_path):
    app, url = new_app("sqlite")
    assert load(app).exit_code == 0
    # A directory holding the counts of an earlier run: gunicorn wipes it at start-up.
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    count_in_process(metrics_dir, 7)
    log = tmp_path / "gunicorn.log"
    with gunicorn(url, log, workers=2, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)) as port:
        # Until both workers have answered some: each then counted only a part of them.
        sent, served_by = 0, set()
        while len(served_by) < 2 and sent < 200:
            assert get(port, "/api/v1/articles", f"gunicorn-{sent}")[0] == 200
            sent += 1
            served_by = {line["pid"] for line in access_lines(log, "gunicorn-")}
        assert len(served_by) == 2, f"one worker served all {sent} requests"
        articles = {"endpoint": "articles.ArticleList", "method": "GET", "status": "200"}
        for _ in range(4):  # whichever worker answers, it tells the counts of all
            scraped = get(port, "/metrics")[1].decode()
            assert sample(scraped, "http_requests_total", **articles) == sent
            assert sample(scraped, "http_requests_total", **UNMATCHED_404) == 0

    lines = json_lines(log.read_text())  # every line, gunicorn's own included, is JSON
    ids = [line["request_id"] for line in access_lines(log, "gunicorn-")]
    assert ids == [f"gunicorn-{i}" for i in range(sent)]
    assert not [line for line in lines if line["logger"] == "gunicorn.access"]
    assert any(line["message"].startswith("Booting worker") for line in lines)
    assert not [line for line in lines if line["level"] in ("ERROR", "CRITICAL")]
    assert metrics_dir.is_dir()  # a directory that was given is kept

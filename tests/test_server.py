"""The real server: gunicorn with the shipped gunicorn.conf.py, as `make run` starts it."""

import json
import socket
import time
import urllib.request

import pytest

from .conftest import DATA_DIR, dispose, load, make_app
from .helpers import gunicorn, shipped_records


def fetch(port: int, path: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as response:
        return response.status, response.read()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """gunicorn serving a database loaded with the shipped dataset: (port, log path)."""
    tmp_path = tmp_path_factory.mktemp("server")
    url = f"sqlite:///{tmp_path / 'facts.sqlite3'}"
    app = make_app(url)
    assert load(app).exit_code == 0
    dispose(app)
    log = tmp_path / "gunicorn.log"
    # Where gunicorn would put its default control socket, shared by every instance.
    home = {"HOME": str(tmp_path), "XDG_RUNTIME_DIR": str(tmp_path)}
    with gunicorn(url, log, **home) as port:
        yield port, log
        assert not list(tmp_path.glob("**/gunicorn.ctl")), "a shared control socket was made"


def test_gunicorn_serves_pages_and_exports_with_the_shipped_config(server):
    port, log = server
    records = shipped_records(DATA_DIR)
    events = sorted(r["id"] for r in records["events"])

    seen = []
    for _ in range(3):  # the worker collects garbage between requests: it must go on serving
        status, body = fetch(port, "/api/v1/events?page_size=500")
        assert status == 200
        seen.append([r["id"] for r in json.loads(body)])
    assert seen == [events] * 3

    status, body = fetch(port, "/api/v1/export")
    *exported, manifest = [json.loads(line) for line in body.decode().splitlines()]
    assert status == 200
    facts = [line for line in exported if line["type"] not in ("article", "actor")]
    assert len(facts) == sum(len(rows) for rows in records.values())
    assert sum(manifest["manifest"]["counts"].values()) == len(exported)

    text = log.read_text()
    levels = {json.loads(line)["level"] for line in text.splitlines()}  # every line is JSON
    assert "Traceback" not in text and levels <= {"INFO", "WARNING"}, text


def raw(port: int, request: bytes, timeout: float = 10) -> tuple[int, dict, bytes]:
    """Send bytes as they are (no client library tidies them up); status, headers, body."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


@pytest.mark.parametrize(
    "request_bytes, status",
    [
        (b"GET /api/v1/events?q=" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n", 431),
        (b"\x16\x03\x01 garbage\r\n\r\n", 400),
        (b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n", 400),
        (b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n", 400),  # no Host
    ],
)
def test_the_servers_own_errors_are_problem_json(server, request_bytes, status):
    port, _ = server
    code, headers, body = raw(port, request_bytes)
    assert code == status
    assert headers["content-type"] == "application/problem+json"
    problem = json.loads(body)
    assert problem["status"] == status and problem["title"] and problem["detail"]


def test_idle_and_half_open_clients_do_not_hold_up_others(server):
    port, _ = server  # one worker
    held = []
    try:
        for index in range(100):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            if index % 2:  # half-open: headers begun, never finished
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            held.append(sock)
        for _ in range(10):
            started = time.monotonic()
            status, _ = fetch(port, "/healthz")
            assert status == 200
            assert time.monotonic() - started < 1
    finally:
        for sock in held:
            sock.close()

"""The real server: gunicorn with the shipped gunicorn.conf.py, as `make run` starts it."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from api.config import PROJECT_DIR

from .conftest import DATA_DIR, load
from .helpers import shipped_records

GUNICORN = Path(sys.executable).parent / "gunicorn"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(port: int, path: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as response:
        return response.status, response.read()


@pytest.fixture
def server(new_app, tmp_path):
    """gunicorn serving a database loaded with the shipped dataset: (port, log path)."""
    app, url = new_app("sqlite")
    assert load(app).exit_code == 0
    port, log = free_port(), tmp_path / "gunicorn.log"
    env = {**os.environ, "DATABASE_URL": url, "PORT": str(port), "WEB_CONCURRENCY": "1"}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(GUNICORN), "api:create_app()"],  # reads ./gunicorn.conf.py
            cwd=PROJECT_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                fetch(port, "/healthz")
                break
            except OSError:
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        yield port, log
    finally:
        process.terminate()
        process.wait(timeout=30)


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

    status, body = fetch(port, "/api/v1/export?format=ndjson")
    exported = [json.loads(line) for line in body.decode().splitlines()]
    assert status == 200
    assert len(exported) == sum(len(rows) for rows in records.values())

    text = log.read_text()
    assert "Traceback" not in text and "[ERROR]" not in text, text

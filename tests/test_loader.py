"""`flask data load`: idempotent, and all or nothing."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from api.config import PROJECT_DIR

from .conftest import load
from .helpers import edit, shipped_records, snapshot, unreferenced_event


def test_loading_twice_changes_nothing(backend, new_app):
    app, url = new_app(backend)
    first = load(app)
    assert first.exit_code == 0, first.output
    assert "Loaded." in first.output
    before = snapshot(url)
    second = load(app)
    assert second.exit_code == 0, second.output
    assert "Already up to date" in second.output
    assert snapshot(url) == before


def test_changed_record_is_updated_and_removed_record_deleted(backend, new_app, data_copy):
    app, url = new_app(backend)
    assert load(app, data_copy).exit_code == 0
    client = app.test_client()
    records = shipped_records(data_copy)
    # Drop an event that no other record refers to, and retitle another.
    dropped = unreferenced_event(data_copy)
    kept = next(r["id"] for r in records["events"] if r["id"] != dropped)
    before = client.get(f"/api/v1/events/{kept}").json

    def change(events):
        events[:] = [e for e in events if e["id"] != dropped]
        next(e for e in events if e["id"] == kept)["title"] = "A corrected title"

    edit(data_copy / "events.yaml", change)
    result = load(app, data_copy)
    assert result.exit_code == 0, result.output
    assert "facts: 1 deleted, " in result.output and "1 updated" in result.output
    after = client.get(f"/api/v1/events/{kept}").json
    assert after["title"] == "A corrected title"
    assert after["created_at"] == before["created_at"]
    assert after["updated_at"] > before["updated_at"]
    gone = client.get(f"/api/v1/events/{dropped}")
    assert gone.status_code == 410  # a tombstone: deleted by the load, never reused
    assert gone.json["deleted_by"] is None and "data load" in gone.json["reason"]


def _corrupt_quote(records):
    source = records[0]["sources"][0]
    source["quote"] = source["quote"][:-1] + "#"
    return records[0]["id"], source


def _unknown_article(records):
    source = records[0]["sources"][0]
    source["article_id"] = "no-such-article"
    return records[0]["id"], source


@pytest.mark.parametrize("breakage", [_corrupt_quote, _unknown_article])
def test_bad_citation_refuses_the_whole_load(backend, new_app, data_copy, breakage):
    app, url = new_app(backend)
    assert load(app, data_copy).exit_code == 0
    client = app.test_client()
    decree_ids = [r["id"] for r in client.get("/api/v1/decrees").json]
    before = snapshot(url)

    # One good change and one bad citation: neither may land.
    edit(data_copy / "events.yaml", lambda records: records[0].update(title="Must not land"))
    record_id, source = edit(data_copy / "decrees.yaml", breakage)

    result = load(app, data_copy)
    assert result.exit_code == 1
    message = result.output
    assert "decrees.yaml" in message
    assert record_id in message
    assert source["article_id"] in message
    assert repr(source["quote"]) in message
    assert "database is unchanged" in message
    assert snapshot(url) == before
    assert [r["id"] for r in client.get("/api/v1/decrees").json] == decree_ids


def test_refused_load_into_a_new_database_creates_nothing(backend, new_app, data_copy):
    app, url = new_app(backend)
    edit(data_copy / "decrees.yaml", _corrupt_quote)
    result = load(app, data_copy)
    assert result.exit_code == 1
    assert snapshot(url) == {}


def flask_cli(url: str, *args: str) -> subprocess.Popen:
    """`flask --app api ARGS` in a process of its own, as an operator would run it."""
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "flask"), "--app", "api", *args],
        cwd=PROJECT_DIR,
        env={**os.environ, "DATABASE_URL": url},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_concurrent_loads_into_an_empty_database_both_succeed(backend, new_database):
    url = new_database(backend)
    runs = [flask_cli(url, "data", "load") for _ in range(2)]
    outputs = [run.communicate(timeout=120)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    assert sorted(o.split(".")[0] for o in outputs) == ["Already up to date", "Loaded"], outputs


def test_an_unreachable_database_is_one_clear_line(tmp_path):
    (tmp_path / "a-file").touch()
    for url in ("postgresql://127.0.0.1:9/none", f"sqlite:///{tmp_path}/a-file/x.db"):
        for command in (["data", "load"], ["db", "upgrade"]):
            run = flask_cli(url, *command)
            output = run.communicate(timeout=60)[0]
            assert run.returncode == 1, output
            assert "Traceback" not in output
            assert output.startswith("Database error (") and output.count("\n") == 1, output

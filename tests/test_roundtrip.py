"""`flask data export` and `data load` are each other's inverse, and the token CLI.

An export is data/'s layout: loaded into a new database it serves exactly what the database
it came from serves, edits made through the API included.
"""

import hashlib
import json
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from .conftest import DATA_DIR, load
from .helpers import create_token, edit, shipped_records, snapshot, unreferenced_event
from .test_concurrent_writes import fresh_passages, new_event

MERGE_PATCH = "application/merge-patch+json"
COLLECTIONS = ("articles", "actors", "decrees", "campaigns", "penalties", "events")


def cli(app, *args: str):
    return app.test_cli_runner().invoke(args=list(args))


def export(app, out_dir: Path) -> Path:
    result = cli(app, "data", "export", str(out_dir))
    assert result.exit_code == 0, result.output
    return out_dir


def tree(root: Path) -> dict[str, bytes]:
    """Every file under `root`, by its path relative to it."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_export_of_the_shipped_data_is_the_shipped_data(backend, new_app, tmp_path):
    app, _ = new_app(backend)
    assert load(app).exit_code == 0
    exported, shipped = tree(export(app, tmp_path / "export")), tree(DATA_DIR)
    assert sorted(exported) == sorted(shipped)
    differing = [
        f"{name}: {first_difference(shipped[name], exported[name])}"
        for name in shipped
        if exported[name] != shipped[name]
    ]
    assert differing == []


# Round trip after edits -----------------------------------------------------------------------


class Curator:
    """Writes through the test client, as a client would: GET for the ETag, then the write."""

    def __init__(self, app):
        self.client = app.test_client()
        self.auth = {"Authorization": f"Bearer {create_token(app, 'curator')}"}

    def _etag(self, path: str) -> str:
        response = self.client.get(path)
        assert response.status_code == 200, response.json
        return response.headers["ETag"]

    def patch(self, path: str, change: dict) -> dict:
        headers = {**self.auth, "If-Match": self._etag(path), "Content-Type": MERGE_PATCH}
        response = self.client.patch(path, data=json.dumps(change), headers=headers)
        assert response.status_code == 200, response.json
        return response.json

    def create(self, path: str, record: dict) -> dict:
        response = self.client.post(path, json=record, headers=self.auth)
        assert response.status_code == 201, response.json
        return response.json

    def delete(self, path: str) -> None:
        headers = {**self.auth, "If-Match": self._etag(path)}
        response = self.client.delete(path, headers=headers)
        assert response.status_code == 204, response.json


def edit_through_the_api(app) -> dict[str, str]:
    """One edit of each kind; what was created, changed and deleted."""
    curator = Curator(app)
    events = shipped_records(DATA_DIR)["events"]
    deleted = unreferenced_event(DATA_DIR)
    # The new event contradicts a shipped one, which then changes too (contradicts is kept
    # symmetric): that side is stored as the API writes it, and must load back the same.
    contradicted = next(e["id"] for e in events if e["id"] != deleted and not e["contradicts"])
    patched = next(e["id"] for e in events if e["id"] not in (deleted, contradicted))
    created = curator.create(
        "/api/v1/events",
        {**new_event(fresh_passages(1)[0], 1), "contradicts": [contradicted]},
    )["id"]
    curator.patch(
        f"/api/v1/events/{patched}",
        {"title": "A corrected title", "summary": "A corrected summary", "notes": "Checked."},
    )
    curator.delete(f"/api/v1/events/{deleted}")
    # An actor's new name shows in every record that involves it.
    curator.patch("/api/v1/actors/russia", {"name": "Russian Federation", "variants": ["RF"]})
    curator.patch(
        "/api/v1/articles/after-russia-kill-or-be-killed",
        {"note": "Checked against the original post.", "byline": "Unsigned"},
    )
    return {"created": created, "patched": patched, "deleted": deleted}


def first_difference(a: bytes, b: bytes, context: int = 60) -> str:
    """Where two bodies first differ, with a little of each around it."""
    at = next(
        (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )
    start = max(at - context, 0)
    return f"at byte {at}: {a[start : at + context]!r} vs {b[start : at + context]!r}"


def every_get(client) -> list[str]:
    """Every read the API offers over the whole dataset."""
    urls = []
    for collection in COLLECTIONS:
        for fmt in ("json", "csv", "ndjson"):
            urls.append(f"/api/v1/{collection}?page_size=500&format={fmt}")
        response = client.get(f"/api/v1/{collection}?page_size=500")
        assert response.status_code == 200 and "next" not in response.headers.get("Link", "")
        for item in response.json:
            urls.append(item["url"])
            if collection in ("articles", "actors"):
                urls.append(f"{item['url']}/facts")
        if collection not in ("articles", "actors"):
            urls.append(f"/api/v1/{collection}/facets?facets=kind,year,article,actor")
    # Not /api/v1/export: a snapshot's lines carry each record's place in the history (seq,
    # version, time of the change), which starts anew in a database loaded from files.
    urls += [
        "/api/v1/timeline?page_size=500",
        "/api/v1/timeline/undated?page_size=500",
        "/api/v1/search?q=mobilisation&page_size=500",
        "/api/v1/search?q=russia*&page_size=500",
        "/api/v1/search?q=corrected&page_size=500",
    ]
    return urls


def test_an_edited_database_exported_and_loaded_anew_serves_the_same(backend, new_app, tmp_path):
    original, original_url = new_app(backend)
    assert load(original).exit_code == 0
    edits = edit_through_the_api(original)
    out_dir = export(original, tmp_path / "export")

    copy, _ = new_app(backend, out_dir)
    loaded = load(copy)
    assert loaded.exit_code == 0, loaded.output
    first, second = original.test_client(), copy.test_client()
    urls = every_get(first)
    assert f"/api/v1/events/{edits['created']}" in urls
    assert not any(edits["deleted"] in url for url in urls)

    # Bodies only, and not the history: the copy's starts at its import, so its revisions,
    # versions and (derived from them, and from the dataset's revision) ETags differ.
    differing = []
    for url in urls:
        a, b = first.get(url), second.get(url)
        assert a.status_code == 200, (url, a.data)
        if (b.status_code, b.mimetype, b.data) != (a.status_code, a.mimetype, a.data):
            differing.append(f"{url} ({b.status_code}): {first_difference(a.data, b.data)}")
    assert differing == [], f"{len(differing)} of {len(urls)} differ:\n" + "\n".join(differing[:5])

    # The deleted record: a tombstone in the original, unknown to the copy (no history).
    gone = f"/api/v1/events/{edits['deleted']}"
    assert first.get(gone).status_code == 410
    assert second.get(gone).status_code == 404
    revisions = second.get(f"/api/v1/events/{edits['patched']}/revisions").json
    assert [r["action"] for r in revisions] == ["imported"]

    # Exported again, the copy gives the same files: the round trip is a fixed point.
    assert tree(export(copy, tmp_path / "again")) == tree(out_dir)

    # Loading the export back into the database it came from changes nothing.
    before = snapshot(original_url)
    again = load(original, out_dir)
    assert again.exit_code == 0, again.output
    assert "Already up to date" in again.output, again.output
    assert snapshot(original_url) == before


# --if-empty -------------------------------------------------------------------------------------


def test_load_if_empty_seeds_an_empty_database_and_leaves_others_alone(backend, new_app, data_copy):
    app, url = new_app(backend)
    # Tokens made before the seed are not data: the database is still empty.
    assert cli(app, "db", "upgrade").exit_code == 0
    create_token(app, "early")
    seeded = cli(app, "data", "load", "--if-empty")
    assert seeded.exit_code == 0, seeded.output
    assert seeded.output.startswith("Loaded."), seeded.output
    client = app.test_client()
    event = shipped_records(DATA_DIR)["events"][0]["id"]
    title = client.get(f"/api/v1/events/{event}").json["title"]

    edit(data_copy / "events.yaml", lambda records: records[0].update(title="Must not land"))
    before = snapshot(url)
    for args in (["--if-empty", "--data-dir", str(data_copy)], ["--if-empty"]):
        result = cli(app, "data", "load", *args)
        assert result.exit_code == 0, result.output
        assert "holds data already" in result.output, result.output
        assert snapshot(url) == before
    assert client.get(f"/api/v1/events/{event}").json["title"] == title
    # Without --if-empty the same files are applied: they did differ.
    assert "1 updated" in load(app, data_copy).output


# Tokens -----------------------------------------------------------------------------------------


def test_the_token_commands(backend, new_app):
    app, url = new_app(backend)
    assert load(app).exit_code == 0
    created = cli(app, "tokens", "create", "--name", "alice", "--role", "admin")
    assert created.exit_code == 0, created.output
    lines = created.output.splitlines()
    token = lines[-1]
    assert token.startswith("cft_") and token.strip() == token and " " not in token
    assert all(token not in line for line in lines[:-1])
    curator = cli(app, "tokens", "create", "--name", "bob")  # curator by default
    assert curator.exit_code == 0, curator.output
    tokens = [token, curator.output.splitlines()[-1]]
    assert len(set(tokens)) == 2

    client = app.test_client()
    path = "/api/v1/actors/russia"

    def patch(token: str, change: dict):
        headers = {
            "Authorization": f"Bearer {token}",
            "If-Match": client.get(path).headers["ETag"],
            "Content-Type": MERGE_PATCH,
        }
        return client.patch(path, data=json.dumps(change), headers=headers)

    response = patch(token, {"description": "Written with alice's token"})
    assert response.status_code == 200, response.json
    history = client.get(f"{path}/revisions").json
    assert history[0]["token"] == "alice"

    listed = cli(app, "tokens", "list")
    assert listed.exit_code == 0, listed.output
    assert all(t not in listed.output for t in tokens)
    assert "cft_" not in listed.output
    rows = [line.split("\t") for line in listed.output.splitlines()]
    assert [(row[0], row[1], row[-1]) for row in rows] == [
        ("alice", "admin", "active"),
        ("bob", "curator", "active"),
    ]

    duplicate = cli(app, "tokens", "create", "--name", "alice", "--role", "curator")
    assert duplicate.exit_code == 1
    assert "exists already" in duplicate.output and "cft_" not in duplicate.output
    unknown = cli(app, "tokens", "revoke", "nobody")
    assert unknown.exit_code == 1 and "No token named 'nobody'" in unknown.output

    revoked = cli(app, "tokens", "revoke", "alice")
    assert revoked.exit_code == 0, revoked.output
    refused = patch(token, {"description": "After the revocation"})
    assert refused.status_code == 401
    assert refused.mimetype == "application/problem+json"
    assert "revoked" in cli(app, "tokens", "list").output.splitlines()[0]

    # The database keeps each token's SHA-256 only: no column holds a token, or part of one.
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            stored = [tuple(row) for row in connection.execute(text("SELECT * FROM tokens"))]
    finally:
        engine.dispose()
    assert len(stored) == 2
    cells = [str(cell) for row in stored for cell in row]
    for t in tokens:
        assert not any(t in cell or t.removeprefix("cft_") in cell for cell in cells)
        assert hashlib.sha256(t.encode()).hexdigest() in cells


@pytest.mark.parametrize("role", ["owner", ""])
def test_a_token_of_an_unknown_role_is_not_created(backend, new_app, role):
    app, _ = new_app(backend)
    assert cli(app, "db", "upgrade").exit_code == 0
    result = cli(app, "tokens", "create", "--name", "x", "--role", role)
    assert result.exit_code == 2  # click refuses the choice
    assert "cft_" not in result.output
    assert cli(app, "tokens", "list").output == "No tokens.\n"

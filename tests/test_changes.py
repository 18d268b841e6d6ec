"""The change feed (/changes), snapshots (/export) and the past (?as_of=SEQ).

Every test starts from a new database loaded from data/ with an admin token, on each backend,
and writes through HTTP only. What a mirror does is what these tests do: read a snapshot,
follow the feed from its sequence number, and end with exactly the records of the source.
"""

import dataclasses
import hashlib
import json
import threading
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlencode

import jsonpatch
import pytest
from flask import Flask
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from api.models import DatasetState

from .conftest import DATA_DIR, load
from .helpers import create_token, links, unreferenced_event, walk

API = "/api/v1"
MERGE_PATCH = "application/merge-patch+json"
PROBLEM = "application/problem+json"
NDJSON = "application/x-ndjson"
LOAD_SUMMARY = "Loaded from data/ by `flask data load`."
ROOT_REMOVED = [{"op": "replace", "path": "", "value": None}]

# Record types in the order of a snapshot, and the collection each is served under.
COLLECTIONS = {
    "article": "articles",
    "actor": "actors",
    "decree": "decrees",
    "campaign": "campaigns",
    "penalty": "penalties",
    "event": "events",
}
TYPE_ORDER = list(COLLECTIONS)
ENTRY_FIELDS = {"seq", "at", "type", "id", "action", "version", "token", "summary"}

# Passages of the article "kaluzhnii-reports-for-service" that no shipped record cites
# exactly: each new event below cites one of them (one passage states one fact).
ARTICLE = "kaluzhnii-reports-for-service"
PASSAGES = [
    "a prominent actor known for his role in the television series",
    "the Semensky regiment, a unit responsible for guarding strategic military installations",
    "This case has drawn attention to the broader issue of conscription compliance",
    "the mechanisms in place to enforce military service obligations",
]
# Two events that contradict each other, and nothing else refers to the second.
DISPUTED = "event-reports-equipment-shortages"
CONTRADICTING = "event-putin-equipment-shortages-resolved"
PUBLISHED_UNKNOWN = {
    "text": None,
    "value": None,
    "precision": "unknown",
    "inferred": False,
    "inference": None,
}

Key = tuple[str, str]  # (record type, id)


def detail_url(key: Key) -> str:
    return f"{API}/{COLLECTIONS[key[0]]}/{key[1]}"


def key_of(entry: dict) -> Key:
    return entry["type"], entry["id"]


@dataclass
class Site:
    """A freshly loaded database, a client, and an admin's token ("alice")."""

    app: Flask
    url: str
    token: str
    # (type, id) -> the ETag its detail GET answered with, when state() last read it.
    tags: dict[tuple[str, str], str] = field(default_factory=dict)

    def __post_init__(self):
        self.client = self.app.test_client()

    # Reads are anonymous.
    def get(self, path: str, **headers):
        return self.client.get(path, headers=headers)

    def body(self, path: str) -> dict:
        response = self.get(path)
        assert response.status_code == 200, (path, response.json)
        return response.json

    def etag(self, path: str) -> str:
        response = self.get(path)
        assert response.status_code == 200, (path, response.json)
        return response.headers["ETag"]

    # Writes carry the token and the ETag of the record's current version.
    def _headers(self, etag=None, summary=None) -> dict:
        headers = {"Authorization": f"Bearer {self.token}"}
        if etag is not None:
            headers["If-Match"] = etag
        if summary is not None:
            headers["Edit-Summary"] = summary
        return headers

    def post(self, collection: str, body: dict, summary=None) -> dict:
        response = self.client.post(
            f"{API}/{collection}", json=body, headers=self._headers(None, summary)
        )
        assert response.status_code == 201, response.json
        return response.json

    def patch(self, path: str, body: dict, summary=None) -> dict:
        response = self.client.patch(
            path,
            data=json.dumps(body),
            content_type=MERGE_PATCH,
            headers=self._headers(self.etag(path), summary),
        )
        assert response.status_code == 200, response.json
        return response.json

    def delete(self, path: str, summary=None) -> None:
        response = self.client.delete(path, headers=self._headers(self.etag(path), summary))
        assert response.status_code == 204, response.json

    def new_event(self, passage: int, summary=None, **fields) -> dict:
        body = {
            "kind": "report",
            "title": f"Test event citing passage {passage}",
            "summary": "What the cited passage states.",
            "date": None,
            "sources": [{"article_id": ARTICLE, "quote": PASSAGES[passage]}],
            **fields,
        }
        return self.post("events", body, summary)

    # The dataset as the API shows it.
    def state(self) -> dict[Key, dict]:
        """Every record's detail GET, by (type, id), found through the lists."""
        bodies, self.tags = {}, {}
        for record_type, collection in COLLECTIONS.items():
            for item in walk(self.client, f"{API}/{collection}?page_size=100"):
                key = (record_type, item["id"])
                response = self.get(detail_url(key))
                assert response.status_code == 200, (key, response.json)
                assert key not in bodies, key
                bodies[key] = response.json
                self.tags[key] = response.headers["ETag"]
        return bodies

    def feed(self, since: int = 0, page_size: int | None = None, **params) -> tuple[list, int]:
        """Every change after `since`, following the `next` links; and Dataset-Seq."""
        query = {"since": since, **params}
        if page_size is not None:
            query["page_size"] = page_size
        url, entries, latest = f"{API}/changes?{urlencode(query)}", [], set()
        for _ in range(10_000):
            response = self.get(url)
            assert response.status_code == 200, (url, response.json)
            assert response.mimetype == "application/json", url
            page = response.json
            latest.add(int(response.headers["Dataset-Seq"]))
            if page_size is not None:
                assert len(page) <= page_size, url
                # A full page may have more after it; a page that is not full is the last.
                assert ("next" in links(response)) == (len(page) == page_size), url
            entries += page
            url = links(response).get("next")
            if not url:
                break
        assert len(latest) == 1, latest  # no write happened meanwhile
        seqs = [entry["seq"] for entry in entries]
        assert seqs == sorted(set(seqs)), "ascending, each once"
        assert all(seq > since for seq in seqs)
        return entries, latest.pop()

    def latest(self) -> int:
        return self.feed(since=2**31 - 1)[1]

    def export(self, as_of: int | None = None) -> tuple[list[dict], dict, object]:
        """The snapshot's lines, checked against its manifest; its manifest; the response."""
        path = f"{API}/export" + ("" if as_of is None else f"?as_of={as_of}")
        response = self.get(path)
        assert response.status_code == 200, (path, response.json)
        assert response.mimetype == NDJSON
        return check_snapshot(response) + (response,)


@pytest.fixture
def site(backend, new_app) -> Site:
    app, url = new_app(backend)
    result = load(app)
    assert result.exit_code == 0, result.output
    return Site(app, url, create_token(app, "alice", "admin"))


def check_entry(entry: dict, with_patch: bool = True) -> None:
    """A change's shape: a record when created or updated, a tombstone when deleted."""
    assert entry["type"] in COLLECTIONS, entry
    assert entry["action"] in ("created", "updated", "deleted"), entry
    fields = ENTRY_FIELDS | ({"patch"} if with_patch else set())
    if entry["action"] == "deleted":
        assert set(entry) == fields | {"tombstone"}, entry
        assert entry["tombstone"] == {
            "deleted_at": entry["at"],
            "deleted_by": entry["token"],
            "reason": entry["summary"],
        }
        if with_patch:
            assert entry["patch"] == ROOT_REMOVED
    else:
        assert set(entry) == fields | {"record"}, entry
        assert entry["record"]["id"] == entry["id"]
        if "type" in entry["record"]:  # facts say their type
            assert entry["record"]["type"] == entry["type"]


def check_snapshot(response) -> tuple[list[dict], dict]:
    """The lines of /export and its manifest: SHA-256, counts, order, one line per record."""
    raw = response.data
    assert raw.endswith(b"\n")
    lines = raw[:-1].split(b"\n")
    last = json.loads(lines[-1])
    assert set(last) == {"manifest"}, last
    manifest = last["manifest"]
    assert set(manifest) == {"seq", "counts", "sha256"}
    body = raw[: len(raw) - len(lines[-1]) - 1]  # every byte before the manifest's line
    assert hashlib.sha256(body).hexdigest() == manifest["sha256"]
    entries = [json.loads(line) for line in lines[:-1]]
    assert int(response.headers["Dataset-Seq"]) == manifest["seq"]
    for entry in entries:
        check_entry(entry, with_patch=False)
        assert entry["action"] != "deleted"
        assert entry["seq"] <= manifest["seq"], entry
    # Articles, actors, then facts by type, each by id; every record once.
    order = [(TYPE_ORDER.index(entry["type"]), entry["id"]) for entry in entries]
    assert order == sorted(set(order))
    counts = Counter(COLLECTIONS[entry["type"]] for entry in entries)
    assert list(manifest["counts"]) == list(COLLECTIONS.values())
    assert manifest["counts"] == {name: counts[name] for name in COLLECTIONS.values()}
    return entries, manifest


def records_of(snapshot: list[dict]) -> dict[Key, dict]:
    return {key_of(entry): entry["record"] for entry in snapshot}


def apply(state: dict[Key, dict], entries: list[dict]) -> dict[Key, dict]:
    """A mirror's work: created and updated put the record, deleted removes it. A creation
    of a record already there, or a change to one that is not, is an error: a change lost
    or given twice."""
    state = dict(state)
    for entry in entries:
        key = key_of(entry)
        if entry["action"] == "created":
            assert key not in state, ("created twice", entry["seq"], key)
        else:
            assert key in state, ("changed before created", entry["seq"], key)
        if entry["action"] == "deleted":
            del state[key]
        else:
            state[key] = entry["record"]
    return state


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.data
    assert response.mimetype == PROBLEM, response.mimetype
    assert response.json["status"] == status
    return response.json


# 1. The feed after a load -----------------------------------------------------------------------


def test_feed_after_a_load_lists_every_import_once(site):
    state = site.state()
    entries, latest = site.feed(page_size=7)
    assert len(entries) == len(state) == latest > 100
    assert [entry["seq"] for entry in entries] == list(range(1, latest + 1))
    assert len(site.feed(page_size=latest)[0]) == latest  # a full last page, then an empty one
    for entry in entries:
        check_entry(entry)
        assert entry["action"] == "created", entry
        assert (entry["version"], entry["token"]) == (1, None)
        assert entry["summary"] == LOAD_SUMMARY
        assert entry["record"] == state[key_of(entry)], key_of(entry)
        assert entry["patch"] == [{"op": "add", "path": "", "value": entry["record"]}]
    assert {key_of(entry) for entry in entries} == set(state)
    # The default page and the largest one hold the same changes.
    assert site.feed()[0] == entries
    assert site.feed(page_size=500)[0] == entries

    # `since` is exclusive: the changes after it.
    assert site.feed(since=latest - 1) == ([entries[-1]], latest)
    assert site.feed(since=latest) == ([], latest)
    assert site.feed(since=41, page_size=10)[0] == entries[41:]

    # Only the changes to records of a type, paged by their own seq.
    for record_type in COLLECTIONS:
        of_type = [entry for entry in entries if entry["type"] == record_type]
        assert of_type, record_type
        assert site.feed(type=record_type, page_size=3) == (of_type, latest)
        after = of_type[1]["seq"]
        assert site.feed(since=after, type=record_type)[0] == of_type[2:]


def test_feed_as_ndjson(site):
    entries, latest = site.feed()
    response = site.get(f"{API}/changes?since=0&page_size=500&format=ndjson")
    assert response.status_code == 200
    assert response.mimetype == NDJSON
    assert response.headers["Dataset-Seq"] == str(latest)
    assert response.data.endswith(b"\n")
    assert [json.loads(line) for line in response.data.splitlines()] == entries

    # Paged the same way: the `next` link keeps the format.
    url, lines = f"{API}/changes?since=0&page_size=40&format=ndjson", []
    while url:
        response = site.get(url)
        assert response.status_code == 200
        assert response.mimetype == NDJSON
        page = [json.loads(line) for line in response.data.splitlines()]
        lines += page
        url = links(response).get("next")
        assert bool(url) == (len(page) == 40)
    assert lines == entries
    empty = site.get(f"{API}/changes?since={latest}&format=ndjson")
    assert (empty.status_code, empty.data.strip()) == (200, b"")


def test_feed_etag_and_304(site):
    url = f"{API}/changes?since=0&page_size=5"
    first = site.get(url)
    tag = first.headers["ETag"]
    cached = site.get(url, **{"If-None-Match": tag})
    assert cached.status_code == 304
    assert cached.headers["ETag"] == tag
    assert cached.data == b""
    # Another query, another representation.
    assert site.get(f"{API}/changes?since=1&page_size=5").headers["ETag"] != tag
    assert site.get(f"{url}&format=ndjson").headers["ETag"] != tag
    tail = f"{API}/changes?since={site.latest()}"
    tail_tag = site.etag(tail)
    assert site.get(tail, **{"If-None-Match": tail_tag}).status_code == 304

    site.patch(f"{API}/events/{DISPUTED}", {"summary": "A corrected summary."}, summary="Fix.")
    # The page itself is the same, but the dataset (Dataset-Seq) moved on.
    again = site.get(url, **{"If-None-Match": tag})
    assert again.status_code == 200
    assert again.headers["ETag"] != tag
    assert again.json == first.json
    assert int(again.headers["Dataset-Seq"]) == int(first.headers["Dataset-Seq"]) + 1
    fresh = site.get(tail, **{"If-None-Match": tail_tag})
    assert fresh.status_code == 200
    assert [key_of(entry) for entry in fresh.json] == [("event", DISPUTED)]


BAD_QUERIES = [
    "since=-1",
    "since=abc",
    f"since={2**31}",
    "since=1.5",
    "since=",
    "since=1&since=2",
    "page_size=0",
    "page_size=501",
    "type=record",
    "type=events",
    "format=csv",
]


def test_feed_refuses_bad_queries(site):
    for query in BAD_QUERIES:
        body = problem(site.get(f"{API}/changes?{query}"), 422)
        name = query.split("=", 1)[0]
        assert name in body["errors"]["query"], (query, body)
    assert site.feed(since=2**31 - 1)[0] == []  # the largest is valid


# 2. Writes in the feed --------------------------------------------------------------------------


def test_patch_and_delete_in_the_feed(site):
    imports, loaded = site.feed()
    imported = records_of(imports)
    events = walk(site.client, f"{API}/events?page_size=100")
    target = next(e for e in events if not e["contradicts"] and e["id"] != DISPUTED)
    key = ("event", target["id"])

    # A PATCH that links a contradiction: the other record changes as its own entry.
    patched = site.patch(
        target["url"],
        {"title": "A corrected title", "contradicts": [DISPUTED]},
        summary="Title; it disputes the shortages.",
    )
    after_patch, seq = site.feed(since=loaded)
    assert seq == loaded + 2
    assert [entry["seq"] for entry in after_patch] == [loaded + 1, loaded + 2]
    assert {key_of(entry) for entry in after_patch} == {key, ("event", DISPUTED)}
    for entry in after_patch:
        check_entry(entry)
        assert (entry["action"], entry["version"]) == ("updated", 2)
        assert (entry["token"], entry["summary"]) == ("alice", "Title; it disputes the shortages.")
        assert entry["record"] == site.body(detail_url(key_of(entry)))
        assert entry["at"] == entry["record"]["updated_at"]
        # Its JSON Patch takes the record from the previous version to this one.
        before = imported[key_of(entry)]
        assert jsonpatch.apply_patch(before, entry["patch"]) == entry["record"]
        assert entry["patch"] and before != entry["record"]
    by_key = {key_of(entry): entry for entry in after_patch}
    assert by_key[key]["record"] == patched
    assert by_key[key]["record"]["title"] == "A corrected title"
    assert {op["path"] for op in by_key[key]["patch"]} >= {"/title", "/contradicts/0"}
    assert target["id"] in by_key[("event", DISPUTED)]["record"]["contradicts"]

    # A DELETE: a tombstone and no record; unlinking its contradiction is an update.
    reason = "Not a fact: a claim."
    site.delete(f"{API}/events/{CONTRADICTING}", summary=reason)
    gone = site.get(f"{API}/events/{CONTRADICTING}")
    assert gone.status_code == 410
    after_delete, seq = site.feed(since=loaded + 2)
    assert seq == loaded + 4
    assert [entry["seq"] for entry in after_delete] == [loaded + 3, loaded + 4]
    for entry in after_delete:
        check_entry(entry)
        assert (entry["token"], entry["summary"]) == ("alice", reason)
    actions = {key_of(entry): entry for entry in after_delete}
    assert set(actions) == {("event", CONTRADICTING), ("event", DISPUTED)}
    deleted = actions[("event", CONTRADICTING)]
    assert (deleted["action"], deleted["version"]) == ("deleted", 2)
    assert "record" not in deleted
    assert deleted["tombstone"] == {
        "deleted_at": gone.json["deleted_at"],
        "deleted_by": "alice",
        "reason": reason,
    }
    unlinked = actions[("event", DISPUTED)]
    assert (unlinked["action"], unlinked["version"]) == ("updated", 3)
    assert CONTRADICTING not in unlinked["record"]["contradicts"]
    assert unlinked["record"] == site.body(f"{API}/events/{DISPUTED}")
    previous = by_key[("event", DISPUTED)]["record"]
    assert jsonpatch.apply_patch(previous, unlinked["patch"]) == unlinked["record"]

    # The whole feed, record by record, is each record's /revisions.
    everything, latest = site.feed(page_size=500)
    assert everything == imports + after_patch + after_delete
    assert latest == loaded + 4
    for record_key in {key_of(entry) for entry in everything}:
        history = walk(site.client, f"{detail_url(record_key)}/revisions?page_size=100")
        changes = [entry for entry in everything if key_of(entry) == record_key]
        assert [r["version"] for r in reversed(history)] == [e["version"] for e in changes]
        for revision, entry in zip(reversed(history), changes, strict=True):
            assert revision["seq"] == entry["seq"], record_key
            assert revision["at"] == entry["at"], record_key
            assert revision["token"] == entry["token"], record_key
            assert revision["summary"] == entry["summary"], record_key
            assert revision["patch"] == entry["patch"], record_key
            expected = "imported" if entry["token"] is None else entry["action"]
            assert revision["action"] == expected, record_key
    # Replaying the feed gives the records as they are now.
    assert apply({}, everything) == site.state()


def test_a_load_over_api_edits_is_updated_or_created_in_the_feed(site):
    imports, loaded = site.feed()
    dropped = unreferenced_event(DATA_DIR)
    site.patch(f"{API}/events/{DISPUTED}", {"title": "Edited through the API"}, summary="Edit.")
    site.delete(f"{API}/events/{dropped}", summary="Not a fact.")
    edits, edited = site.feed(since=loaded)
    forced = site.app.test_cli_runner().invoke(args=["data", "load", "--over-api-edits"])
    assert forced.exit_code == 0, forced.output

    reloaded, latest = site.feed(since=edited)
    actions = {key_of(entry): (entry["action"], entry["version"]) for entry in reloaded}
    # The edited record goes back to the files' state; the deleted one comes back.
    assert actions == {("event", DISPUTED): ("updated", 3), ("event", dropped): ("created", 3)}
    for entry in reloaded:
        check_entry(entry)
        assert (entry["token"], entry["summary"]) == (None, LOAD_SUMMARY)
        assert entry["record"] == site.body(detail_url(key_of(entry)))
    restored = next(entry for entry in reloaded if entry["id"] == dropped)
    assert restored["patch"] == [{"op": "add", "path": "", "value": restored["record"]}]
    assert apply(records_of(imports), edits + reloaded) == site.state()
    assert records_of(site.export()[0]) == site.state()


def test_concurrent_writes_appear_in_the_feed_in_order_without_gaps(site):
    """A change is never visible before every change numbered below it; the changes of one
    write have consecutive numbers."""
    imports, loaded = site.feed()
    events = walk(site.client, f"{API}/events?page_size=100")
    free = [e for e in events if not e["contradicts"] and e["id"] not in (DISPUTED, CONTRADICTING)]
    failures, seen, done = [], [], threading.Event()

    def writer(i: int) -> None:
        me = dataclasses.replace(site)  # a client of its own
        try:
            created = me.new_event(i, summary=f"w{i} new", contradicts=[free[i]["id"]])
            for n in range(3):
                path = f"{API}/events/{created['id']}"
                me.patch(path, {"summary": f"Take {n}."}, summary=f"w{i} take {n}")
            me.patch(free[4 + i]["url"], {"title": f"Retitled by {i}"}, summary=f"w{i} title")
        except BaseException as error:  # reported below, in the test's thread
            failures.append(error)

    def reader() -> None:
        me = dataclasses.replace(site)
        try:
            while not done.is_set():
                entries, latest = me.feed(since=loaded, page_size=500)
                assert [e["seq"] for e in entries] == list(range(loaded + 1, latest + 1))
                seen.append(latest)
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    watcher = threading.Thread(target=reader)
    watcher.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    done.set()
    watcher.join(timeout=60)
    assert not failures, failures
    assert seen

    changes, latest = site.feed(since=loaded)
    assert latest == loaded + 4 * 6  # per writer: a creation and its link, 3 patches, a title
    assert [entry["seq"] for entry in changes] == list(range(loaded + 1, latest + 1))
    by_write: dict[str, list[int]] = {}
    for entry in changes:
        by_write.setdefault(entry["summary"], []).append(entry["seq"])
    assert len(by_write) == 4 * 5
    for summary, seqs in by_write.items():
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), summary
    assert apply(records_of(imports), changes) == site.state()


# 3. Snapshots -----------------------------------------------------------------------------------


def test_export_is_the_dataset_at_its_seq(site):
    state = site.state()
    entries, manifest, response = site.export()
    feed, latest = site.feed(page_size=500)
    assert manifest["seq"] == latest
    assert records_of(entries) == state
    assert manifest["counts"] == {
        collection: sum(1 for t, _ in state if COLLECTIONS[t] == collection)
        for collection in COLLECTIONS.values()
    }
    # Each line is the change that made the record as it is (without its patch).
    last_change = {key_of(entry): entry for entry in feed}
    for entry in entries:
        expected = dict(last_change[key_of(entry)])
        del expected["patch"]
        assert entry == expected
    # Cached until the dataset changes; the same bytes as the snapshot at that seq.
    tag = response.headers["ETag"]
    assert site.get(f"{API}/export", **{"If-None-Match": tag}).status_code == 304
    assert site.get(f"{API}/export?as_of={latest}").data == response.data
    site.patch(f"{API}/actors/vladimir-putin", {"description": "President of Russia."})
    changed = site.get(f"{API}/export", **{"If-None-Match": tag})
    assert changed.status_code == 200
    assert changed.headers["ETag"] != tag
    assert check_snapshot(changed)[1]["seq"] == latest + 1


def curate(site: Site) -> None:
    """Writes of every kind: creations, patches, deletions, a rename, contradictions."""
    created = site.new_event(0, summary="New event.")
    site.patch(f"{API}/events/{created['id']}", {"title": "Retitled"}, summary="Title.")
    site.new_event(1, summary="Disputes the shortages.", contradicts=[DISPUTED])
    site.patch(f"{API}/actors/russia", {"name": "Russian Federation"}, summary="Official name.")
    site.delete(f"{API}/events/{CONTRADICTING}", summary="A claim.")
    site.delete(f"{API}/events/{unreferenced_event(DATA_DIR)}", summary="Not a fact.")
    site.post("actors", {"name": "Test Organisation", "kind": "organisation"})


def test_snapshot_then_feed_is_the_dataset(site):
    snapshot, manifest, _ = site.export()
    curate(site)
    changes, latest = site.feed(since=manifest["seq"], page_size=4)
    assert len(changes) == latest - manifest["seq"] > 10
    assert [entry["seq"] for entry in changes] == list(range(manifest["seq"] + 1, latest + 1))
    mirrored = apply(records_of(snapshot), changes)
    fresh, fresh_manifest, _ = site.export()
    assert fresh_manifest["seq"] == latest
    assert mirrored == records_of(fresh)
    assert mirrored == site.state()


def test_a_write_during_an_export_is_in_the_feed_not_the_snapshot(site):
    """The snapshot is one state, the one at its seq, however long it takes to stream."""
    before = site.state()
    loaded = site.latest()
    response = site.client.get(f"{API}/export", buffered=False)
    try:
        assert response.status_code == 200
        assert response.headers["Dataset-Seq"] == str(loaded)
        stream = iter(response.response)
        first = next(stream)  # articles, with their texts: the facts are still to come
        assert b'"type":"event"' not in first
        # Another client, in a thread of its own (as another request of a server would be:
        # the stream keeps its request's context pushed on this thread until it ends).
        failures = []

        def write():
            try:
                curate(dataclasses.replace(site))
            except BaseException as error:  # reported below, in this thread
                failures.append(error)

        writer = threading.Thread(target=write)
        writer.start()
        writer.join(timeout=60)
        assert not writer.is_alive()
        assert not failures, failures
        raw = first + b"".join(stream)
    finally:
        response.close()  # the stream ends: its request's context is popped
    assert site.latest() > loaded, "the writes did not happen"
    response.set_data(raw)
    snapshot, manifest = check_snapshot(response)
    assert manifest["seq"] == loaded
    assert records_of(snapshot) == before
    changes, latest = site.feed(since=loaded)
    assert latest > loaded
    assert apply(records_of(snapshot), changes) == records_of(site.export()[0]) == site.state()


# 4. The past, replayed --------------------------------------------------------------------------


def test_as_of_replays_the_history(site):
    initial = site.state()
    loaded = site.latest()
    recorded = {loaded: initial}  # seq -> every record's GET body, right after a write
    tags = {loaded: site.tags}  # seq -> every record's ETag, right after a write

    def write(do, *args, **kwargs):
        outcome = do(*args, **kwargs)
        seq = site.latest()
        recorded[seq] = site.state()
        tags[seq] = site.tags
        return outcome

    dropped = unreferenced_event(DATA_DIR)
    first = write(site.new_event, 0, summary="New event.")
    event = f"{API}/events/{first['id']}"
    write(site.patch, event, {"title": "Retitled"}, summary="Title.")
    actor = write(site.post, "actors", {"name": "Test Organisation", "kind": "organisation"})
    actor_url = f"{API}/actors/{actor['id']}"
    write(site.patch, event, {"actors": [{"id": actor["id"], "role": "mentioned"}]})
    write(site.patch, f"{API}/actors/russia", {"name": "Russian Federation"}, summary="Name.")
    second = write(site.new_event, 1, summary="Disputes.", contradicts=[DISPUTED])
    article = write(
        site.post,
        "articles",
        {"title": "A test article", "language": "en", "published": PUBLISHED_UNKNOWN, "text": "A."},
    )
    article_url = f"{API}/articles/{article['id']}"
    write(site.patch, article_url, {"text": "A longer text."}, summary="Full text.")
    write(site.delete, article_url, summary="Not a source.")
    write(site.delete, event, summary="Not needed.")
    write(site.delete, actor_url, summary="Uninvolved now.")
    write(site.delete, f"{API}/events/{CONTRADICTING}", summary="A claim.")
    write(site.patch, f"{API}/events/{second['id']}", {"contradicts": []}, summary="Unlink.")
    write(site.delete, f"{API}/events/{dropped}", summary="Not a fact.")
    third = write(site.new_event, 2, summary="Last.")
    assert len(recorded) == 16  # the load and 15 writes, each a change of the dataset

    changes, latest = site.feed(page_size=500)
    assert max(recorded) == latest
    # The state at every seq, from the feed alone.
    expected: dict[int, dict[Key, dict]] = {0: {}}
    last_seq: dict[int, dict[Key, int]] = {0: {}}  # each record's latest change by then
    for entry in changes:
        seq = entry["seq"]
        expected[seq] = apply(expected[seq - 1], [entry])
        last_seq[seq] = {**last_seq[seq - 1], key_of(entry): seq}
        if entry["action"] == "deleted":
            del last_seq[seq][key_of(entry)]
    for seq, state in recorded.items():
        assert expected[seq] == state, seq
    assert len(expected) == latest + 1

    for seq in range(latest + 1):
        snapshot, manifest, response = site.export(as_of=seq)
        assert manifest["seq"] == seq
        assert records_of(snapshot) == expected[seq], seq
        if seq in recorded:
            assert records_of(snapshot) == recorded[seq], seq
        # Each line is the record's latest change by then.
        assert {key_of(entry): entry["seq"] for entry in snapshot} == last_seq[seq], seq
        for entry in snapshot:
            assert entry == {k: v for k, v in changes[entry["seq"] - 1].items() if k != "patch"}

    # A record's detail, at each seq: its body then, 404 before it, 410 after its deletion.
    facts_of_russia = [
        key_of(e)
        for e in changes
        if e["seq"] > loaded and e["type"] != "actor" and e["summary"] == "Name."
    ]
    assert facts_of_russia
    untouched = next(k for k in initial if all(key_of(e) != k for e in changes[loaded:]))
    # Two records at every seq; the others around each of their changes and each write.
    everywhere = [("event", first["id"]), ("event", DISPUTED)]
    samples = everywhere + [
        ("actor", actor["id"]),
        ("event", second["id"]),
        ("event", third["id"]),
        ("article", article["id"]),
        ("article", ARTICLE),
        ("actor", "russia"),
        facts_of_russia[0],
        ("event", CONTRADICTING),
        ("event", dropped),
        untouched,
        ("event", "event-never-was"),
    ]
    for key in samples:
        path = detail_url(key)
        mine = [entry for entry in changes if key_of(entry) == key]
        around = {seq + d for entry in mine for seq in [entry["seq"]] for d in (-1, 0, 1)}
        seqs = range(latest + 1) if key in everywhere else {0, *recorded, *around} - {latest + 1}
        for seq in sorted(seqs):
            response = site.get(f"{path}?as_of={seq}")
            done = [entry for entry in mine if entry["seq"] <= seq]
            if not done:
                problem(response, 404)
            elif done[-1]["action"] == "deleted":
                body = problem(response, 410)
                assert body["deleted_by"] == "alice", (key, seq)
                assert body["reason"] == done[-1]["summary"], (key, seq)
                assert body["deleted_at"] == done[-1]["at"], (key, seq)
            else:
                assert response.status_code == 200, (key, seq, response.json)
                assert response.json == expected[seq][key], (key, seq)
                assert response.headers["Dataset-Seq"] == str(seq)
                # The ETag it had while that version was current: right after its write.
                written = min(s for s in recorded if s >= done[-1]["seq"])
                tag = tags[written][key]
                assert response.headers["ETag"] == tag, (key, seq)
                if seq == done[-1]["seq"]:
                    cached = site.get(f"{path}?as_of={seq}", **{"If-None-Match": tag})
                    assert cached.status_code == 304, (key, seq)
                    assert cached.headers["Dataset-Seq"] == str(seq)

    # The future is not known yet.
    for path in (f"{API}/export", f"{API}/events/{DISPUTED}", f"{API}/actors/russia"):
        body = problem(site.get(f"{path}?as_of={latest + 1}"), 422)
        assert "as_of" in body["errors"]["query"], path
        problem(site.get(f"{path}?as_of=-1"), 422)
        problem(site.get(f"{path}?as_of=later"), 422)
    assert (
        site.get(f"{API}/events/{DISPUTED}?as_of={latest}").json
        == recorded[latest][("event", DISPUTED)]
    )


# 5. The horizon of the feed ---------------------------------------------------------------------


def set_history_from(url: str, seq: int) -> None:
    engine = create_engine(url)
    try:
        with Session(engine) as session, session.begin():
            session.get(DatasetState, 1).history_from = seq
    finally:
        engine.dispose()


def test_feed_before_its_horizon_is_gone(site):
    entries, latest = site.feed()
    horizon = 50
    set_history_from(site.url, horizon)
    for query in (
        f"since={horizon - 1}",
        "since=0",
        f"since={horizon - 1}&type=event",
        f"since={horizon - 1}&format=ndjson",
    ):
        body = problem(site.get(f"{API}/changes?{query}"), 410)
        assert "/api/v1/export" in body["detail"], query
    assert site.feed(since=horizon) == (entries[horizon:], latest)
    assert site.feed(since=horizon, page_size=10)[0] == entries[horizon:]
    assert site.feed(since=latest) == ([], latest)
    # Bad queries are still bad queries.
    problem(site.get(f"{API}/changes?since=-1"), 422)

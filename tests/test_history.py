"""Writes through the API and the history they leave: versions, revisions, tombstones.

Every test starts from a new database loaded from data/ with an admin token, on each backend,
and goes through HTTP only (plus `flask data load`, as an operator would run it).
"""

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote as url_quote

import jsonpatch
import pytest
import yaml
from flask import Flask

from .conftest import DATA_DIR, load
from .helpers import (
    create_token,
    linked_records,
    links,
    snapshot,
    stale_facets,
    stale_forms,
    unreferenced_event,
    walk,
)

API = "/api/v1"
MERGE_PATCH = "application/merge-patch+json"
LOAD_SUMMARY = "Loaded from data/ by `flask data load`."
ROOT_REMOVED = [{"op": "replace", "path": "", "value": None}]

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


def header_text(value: str) -> str:
    """A header value that travels as UTF-8 bytes (WSGI headers are latin-1 strings)."""
    return value.encode("utf-8").decode("latin-1")


@dataclass
class Site:
    """A freshly loaded database, a client, and an admin's token ("alice")."""

    app: Flask
    url: str
    token: str

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

    def history(self, path: str) -> list[dict]:
        """Every revision of the record at `path`, newest first."""
        return walk(self.client, f"{path}/revisions")

    # Writes carry the token.
    def _headers(self, etag=None, summary=None, token=None) -> dict:
        headers = {"Authorization": f"Bearer {token or self.token}"}
        if etag is not None:
            headers["If-Match"] = etag
        if summary is not None:
            headers["Edit-Summary"] = header_text(summary)
        return headers

    def post(self, collection: str, body: dict, summary=None, token=None):
        return self.client.post(
            f"{API}/{collection}", json=body, headers=self._headers(None, summary, token)
        )

    def patch(self, path: str, body: dict, summary=None, etag=None, token=None):
        etag = etag or self.etag(path)
        return self.client.patch(
            path,
            data=json.dumps(body),
            content_type=MERGE_PATCH,
            headers=self._headers(etag, summary, token),
        )

    def delete(self, path: str, summary=None, etag=None, token=None):
        etag = etag or self.etag(path)
        return self.client.delete(path, headers=self._headers(etag, summary, token))

    def new_event(self, passage: int, summary=None, **fields):
        body = {
            "kind": "report",
            "title": f"Test event citing passage {passage}",
            "summary": "What the cited passage states.",
            "date": None,
            "sources": [{"article_id": ARTICLE, "quote": PASSAGES[passage]}],
            **fields,
        }
        response = self.post("events", body, summary)
        assert response.status_code == 201, response.json
        return response


@pytest.fixture
def site(backend, new_app) -> Iterator[Site]:
    app, url = new_app(backend)
    result = load(app)
    assert result.exit_code == 0, result.output
    yield Site(app, url, create_token(app, "alice", "admin"))
    # Whatever the test wrote, stored forms and kept facet counts are what the records give.
    assert stale_forms(app) == []
    assert stale_facets(app) == {}


def replay(history: list[dict]) -> list[dict | None]:
    """The record after each revision, oldest first, from the JSON Patches alone."""
    states: list[dict | None] = []
    state: dict | None = None
    for revision in reversed(history):
        state = jsonpatch.apply_patch({} if state is None else state, revision["patch"])
        states.append(state)
    return states


def involved(site: Site, facts_url: str) -> list[str]:
    """The urls of every record listed by an actor's or article's /facts, over its pages."""
    return [record["url"] for record in linked_records(site.client, facts_url)]


# 1. What a load leaves --------------------------------------------------------------------------


def test_loaded_records_have_one_imported_revision(site):
    seqs = []
    for collection in ("events", "actors", "articles", "decrees", "campaigns", "penalties"):
        items = walk(site.client, f"{API}/{collection}?page_size=100")
        assert items, collection
        for item in items:
            path = item["url"]
            current = site.get(path)
            assert current.status_code == 200
            (revision,) = site.history(path)
            assert revision["version"] == 1, path
            assert revision["action"] == "imported", path
            assert revision["token"] is None, path
            assert revision["summary"] == LOAD_SUMMARY
            assert revision["url"] == f"{path}/revisions/1"
            assert revision["patch"] == [{"op": "add", "path": "", "value": current.json}]
            first = site.get(f"{path}/revisions/1")
            assert first.status_code == 200
            assert first.json == current.json, path
            seqs.append(revision["seq"])
    # One change of the dataset per record, numbered without gaps.
    assert sorted(seqs) == list(range(1, len(seqs) + 1))


def assert_shipped_times(site: Site, collections: tuple[str, ...]) -> None:
    """Each record shows the times that data/timestamps.yaml keeps for it."""
    shipped = yaml.safe_load((DATA_DIR / "timestamps.yaml").read_text(encoding="utf-8"))
    wrong = {}
    for collection in collections:
        items = walk(site.client, f"{API}/{collection}?page_size=100")
        assert {item["id"] for item in items} == set(shipped[collection]), collection
        for item in items:
            shown = {key: item[key] for key in ("created_at", "updated_at")}
            if shown != shipped[collection][item["id"]]:
                wrong[f"{collection}/{item['id']}"] = (shown, shipped[collection][item["id"]])
    assert not wrong, f"{len(wrong)} records: {sorted(wrong)[:5]} ..."


def test_load_keeps_the_times_of_articles_and_actors(site):
    assert_shipped_times(site, ("articles", "actors"))


def test_load_keeps_the_times_of_facts(site):
    assert_shipped_times(site, ("decrees", "campaigns", "penalties", "events"))


# 2. A curator's story ---------------------------------------------------------------------------


def test_create_correct_delete_and_the_history_of_it(site):
    created = site.new_event(0, summary="Add: the actor's fame, as 000 states it.")
    path = created.headers["Location"]
    record_id = created.json["id"]
    assert path == f"{API}/events/{record_id}"
    assert site.get(path).json == created.json
    assert site.etag(path) == created.headers["ETag"]

    fix = "Titel: “Tippfehler” korrigiert — the title says what the passage says."
    patched = site.patch(path, {"title": "Gleb Kaluzhnii is a well-known actor"}, summary=fix)
    assert patched.status_code == 200, patched.json
    shown = site.get(path)
    assert shown.json["title"] == "Gleb Kaluzhnii is a well-known actor"
    assert shown.json == patched.json
    assert shown.headers["ETag"] == patched.headers["ETag"] != created.headers["ETag"]

    reason = "Duplicate: the actor's fame is not a fact about conscription."
    deleted = site.delete(path, summary=reason)
    assert deleted.status_code == 204, deleted.json
    gone = site.get(path)
    assert gone.status_code == 410
    assert gone.json["deleted_by"] == "alice"
    assert gone.json["reason"] == reason
    assert gone.json["revisions_url"] == f"{path}/revisions"

    history = site.history(path)
    assert [r["action"] for r in history] == ["deleted", "updated", "created"]
    assert [r["version"] for r in history] == [3, 2, 1]
    assert [r["token"] for r in history] == ["alice"] * 3
    assert [r["summary"] for r in history] == [
        reason,
        fix,
        "Add: the actor's fame, as 000 states it.",
    ]
    assert [r["url"] for r in history] == [f"{path}/revisions/{n}" for n in (3, 2, 1)]
    seqs = [r["seq"] for r in reversed(history)]
    assert seqs == sorted(seqs) and len(set(seqs)) == 3
    assert gone.json["deleted_at"] == history[0]["at"]
    assert history[2]["at"] == created.json["created_at"]
    assert history[1]["at"] == patched.json["updated_at"]
    assert history[0]["patch"] == ROOT_REMOVED

    # The patches alone rebuild every state that the record's history shows.
    states = replay(history)
    assert states[0] == created.json
    assert states[1] == patched.json
    assert states[2] is None
    for version, state in ((1, states[0]), (2, states[1])):
        response = site.get(f"{path}/revisions/{version}")
        assert response.status_code == 200, response.json
        assert response.json == state
    tombstone = site.get(f"{path}/revisions/3")
    assert tombstone.status_code == 410
    assert tombstone.json["deleted_by"] == "alice"
    assert tombstone.json["reason"] == reason

    # The revisions url of the 410 works, and a deleted id is never reused.
    assert site.get(gone.json["revisions_url"]).json == history
    again = site.post("events", {**created.json, "id": record_id})
    assert again.status_code == 409, again.json
    assert site.get(path).status_code == 410


# 3. Contradictions ------------------------------------------------------------------------------


def contradicts(site: Site, record_id: str) -> list[str]:
    return site.body(f"{API}/events/{record_id}")["contradicts"]


def assert_history_replays(site: Site, path: str) -> list[dict]:
    """Each revision's body is what the patches up to it give; the last is the current one.

    Returns the history, newest first."""
    history = site.history(path)
    states = replay(history)
    for revision, state in zip(reversed(history), states, strict=True):
        shown = site.get(revision["url"])
        if state is None:  # a deletion: its revision answers 410, as the record did
            assert shown.status_code == 410, revision
        else:
            assert shown.status_code == 200, revision
            assert shown.json == state, revision
    if states[-1] is not None:
        assert states[-1] == site.body(path)
    return history


def test_contradictions_stay_symmetric(site):
    other = f"{API}/events/{DISPUTED}"
    assert contradicts(site, DISPUTED) == [CONTRADICTING]
    tag = site.etag(other)

    created = site.new_event(1, summary="Add, disputing the shortages.", contradicts=[DISPUTED])
    new_id = created.json["id"]
    assert created.json["contradicts"] == [DISPUTED]
    assert created.json["disputed"] is True
    assert sorted(contradicts(site, DISPUTED)) == sorted([CONTRADICTING, new_id])
    assert site.etag(other) != tag
    history = assert_history_replays(site, other)
    assert [r["action"] for r in history] == ["updated", "imported"]
    newest = history[0]
    assert (newest["version"], newest["token"]) == (2, "alice")
    assert newest["summary"] == "Add, disputing the shortages."
    before, after = replay(history)
    assert new_id not in before["contradicts"] and new_id in after["contradicts"]
    assert any(op["op"] == "add" and op.get("value") == new_id for op in newest["patch"])

    # Dropping the link drops it on the other side too.
    dropped = site.patch(created.headers["Location"], {"contradicts": []}, summary="Unlink.")
    assert dropped.status_code == 200, dropped.json
    assert dropped.json["contradicts"] == [] and dropped.json["disputed"] is False
    assert contradicts(site, DISPUTED) == [CONTRADICTING]
    history = assert_history_replays(site, other)
    assert [(r["action"], r["version"], r["summary"]) for r in history[:2]] == [
        ("updated", 3, "Unlink."),
        ("updated", 2, "Add, disputing the shortages."),
    ]

    # Deleting a record that contradicts it removes the link as well.
    deleted = site.delete(f"{API}/events/{CONTRADICTING}", summary="Remove the claim.")
    assert deleted.status_code == 204, deleted.json
    shown = site.body(other)
    assert shown["contradicts"] == [] and shown["disputed"] is False
    history = assert_history_replays(site, other)
    assert [(r["action"], r["version"]) for r in history] == [
        ("updated", 4),
        ("updated", 3),
        ("updated", 2),
        ("imported", 1),
    ]
    assert history[0]["summary"] == "Remove the claim."
    disputed = walk(site.client, f"{API}/events?disputed=true&page_size=100")
    assert DISPUTED not in [r["id"] for r in disputed]


# 4. Renaming an actor ---------------------------------------------------------------------------


def test_renaming_an_actor_renames_it_in_every_record(site):
    actor = f"{API}/actors/russia"
    urls = involved(site, f"{actor}/facts")
    assert len(urls) >= 3
    tags = {url: site.etag(url) for url in urls}
    unrelated = next(
        r["url"]
        for r in walk(site.client, f"{API}/events?page_size=100")
        if r["url"] not in urls and r["actors"]
    )
    unrelated_tag = site.etag(unrelated)
    actor_tag = site.etag(actor)

    renamed = site.patch(actor, {"name": "Russian Federation"}, summary="Official name.")
    assert renamed.status_code == 200, renamed.json
    assert renamed.json["name"] == "Russian Federation"
    assert renamed.headers["ETag"] != actor_tag
    assert site.etag(actor) == renamed.headers["ETag"]
    assert site.body(f"{actor}/revisions/2") == renamed.json

    for url in urls:
        shown = site.get(url)
        names = [ref["name"] for ref in shown.json["actors"] if ref["id"] == "russia"]
        assert names and set(names) == {"Russian Federation"}, url
        assert shown.headers["ETag"] != tags[url], url
        history = assert_history_replays(site, url)
        assert [(r["action"], r["version"], r["token"]) for r in history] == [
            ("updated", 2, "alice"),
            ("imported", 1, None),
        ], url
        assert history[0]["summary"] == "Official name."
        assert {op["path"] for op in history[0]["patch"]} >= {
            f"/actors/{i}/name"
            for i, ref in enumerate(shown.json["actors"])
            if ref["id"] == "russia"
        }
    # Lists show the new name too, and a record not involving the actor is untouched.
    listed = walk(site.client, f"{API}/events?actor=russia&page_size=100")
    assert listed
    for record in listed:
        assert "Russia" not in [ref["name"] for ref in record["actors"]]
    assert site.etag(unrelated) == unrelated_tag
    assert len(site.history(unrelated)) == 1


# 5. ETags -------------------------------------------------------------------------------------


def test_a_write_changes_only_the_written_records_etag(site):
    events = walk(site.client, f"{API}/events?page_size=100")
    written = next(r for r in events if not r["contradicts"])["url"]
    other_record = next(
        r for r in events if not r["contradicts"] and r["actors"] and r["url"] != written
    )
    other, actor = other_record["url"], other_record["actors"][0]["url"]
    tags = {path: site.etag(path) for path in (written, other, actor)}
    list_tag = site.etag(f"{API}/events")
    assert site.get(f"{API}/events", **{"If-None-Match": list_tag}).status_code == 304

    response = site.patch(written, {"summary": "A corrected summary."}, summary="Summary.")
    assert response.status_code == 200, response.json
    assert response.headers["ETag"] != tags[written]

    for path in (other, actor):
        cached = site.get(path, **{"If-None-Match": tags[path]})
        assert cached.status_code == 304, path
        assert cached.headers["ETag"] == tags[path]
    fresh = site.get(written, **{"If-None-Match": tags[written]})
    assert fresh.status_code == 200
    assert fresh.headers["ETag"] == response.headers["ETag"]
    assert fresh.json["summary"] == "A corrected summary."
    listed = site.get(f"{API}/events", **{"If-None-Match": list_tag})
    assert listed.status_code == 200
    assert listed.headers["ETag"] != list_tag

    # The old ETag no longer matches: a write with it is refused, and changes nothing.
    stale = site.patch(written, {"summary": "Lost update."}, etag=tags[written])
    assert stale.status_code == 412, stale.json
    assert site.body(written)["summary"] == "A corrected summary."
    assert len(site.history(written)) == 2


def test_a_patch_that_changes_nothing_leaves_no_revision(site):
    event = site.body(f"{API}/events")[0]["url"]
    actor = f"{API}/actors/vladimir-putin"
    list_tag = site.etag(f"{API}/events")
    for path, same in (
        (event, {"title": site.body(event)["title"]}),
        (actor, {"name": site.body(actor)["name"]}),
        (event, {}),
    ):
        before = site.get(path)
        response = site.patch(path, same, summary="No change.")
        assert response.status_code == 200, response.json
        assert response.json == before.json, path
        assert response.headers["ETag"] == before.headers["ETag"], path
        assert site.etag(path) == before.headers["ETag"]
        assert len(site.history(path)) == 1, path
    # No revision, no change of the dataset: cached lists stay valid.
    assert site.get(f"{API}/events", **{"If-None-Match": list_tag}).status_code == 304


# 6. Articles and actors: what may change, what may be deleted ----------------------------------

PUBLISHED_UNKNOWN = {
    "text": None,
    "value": None,
    "precision": "unknown",
    "inferred": False,
    "inference": None,
}


def test_new_article_gets_hash_and_word_count_and_its_text_may_change(site):
    text = "Повестка пришла.\nThe summons  arrived — über Nacht.\n"
    body = {
        "title": "A test article",
        "language": "en",
        "published": PUBLISHED_UNKNOWN,
        "text": text,
    }
    created = site.post("articles", body, summary="New source.")
    assert created.status_code == 201, created.json
    article = created.json
    assert article["text"] == text
    assert article["sha256"] == hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert article["word_count"] == len(text.split()) == 8
    assert article["file"] == f"articles/{article['id']}.txt"
    path = created.headers["Location"]
    assert site.body(path) == article

    # Nothing cites it yet: its text may change, and what derives from it follows.
    corrected = text + "Вторая строка."
    changed = site.patch(path, {"text": corrected}, summary="Full text.")
    assert changed.status_code == 200, changed.json
    assert changed.json["sha256"] == hashlib.sha256(corrected.encode("utf-8")).hexdigest()
    assert changed.json["word_count"] == len(corrected.split())
    assert site.body(path) == changed.json
    history = assert_history_replays(site, path)
    assert [r["action"] for r in history] == ["updated", "created"]


def test_text_of_a_cited_article_cannot_change(site):
    path = f"{API}/articles/{ARTICLE}"
    before = site.get(path)
    citing = [url.rsplit("/", 1)[1] for url in involved(site, f"{path}/facts")]
    assert citing
    refused = site.patch(path, {"text": before.json["text"] + " Appended."}, summary="No.")
    assert refused.status_code == 409, refused.json
    assert "cannot change" in refused.json["detail"]
    for record_id in citing:
        assert record_id in refused.json["detail"]
    after = site.get(path)
    assert after.json == before.json
    assert after.headers["ETag"] == before.headers["ETag"]
    assert len(site.history(path)) == 1

    # Its metadata still may change.
    noted = site.patch(path, {"note": "Checked again."}, summary="Note.")
    assert noted.status_code == 200, noted.json
    assert noted.json["note"] == "Checked again."
    assert noted.json["text"] == before.json["text"]


def test_deleting_a_cited_article_or_an_involved_actor_is_refused(site):
    for path in (f"{API}/articles/{ARTICLE}", f"{API}/actors/gleb-kaluzhnii"):
        before = site.get(path)
        referring = [url.rsplit("/", 1)[1] for url in involved(site, f"{path}/facts")]
        assert referring, path
        refused = site.delete(path, summary="Try.")
        assert refused.status_code == 409, refused.json
        for record_id in referring:
            assert record_id in refused.json["detail"], (path, record_id)
        after = site.get(path)
        assert after.status_code == 200
        assert after.json == before.json
        assert after.headers["ETag"] == before.headers["ETag"]
        assert len(site.history(path)) == 1


def test_deleting_an_uninvolved_actor(site):
    body = {"name": "Test Organisation", "kind": "organisation"}
    created = site.post("actors", body, summary="New actor.")
    assert created.status_code == 201, created.json
    path = created.headers["Location"]
    assert created.json["variants"] == [] and created.json["description"] is None

    # Deleting an actor needs an admin's token.
    curator = create_token(site.app, "bob", "curator")
    assert site.delete(path, token=curator).status_code == 403
    assert site.get(path).status_code == 200

    deleted = site.delete(path, summary="Not needed.")
    assert deleted.status_code == 204
    gone = site.get(path)
    assert gone.status_code == 410
    assert (gone.json["deleted_by"], gone.json["reason"]) == ("alice", "Not needed.")
    history = site.history(path)
    assert [(r["action"], r["version"]) for r in history] == [("deleted", 2), ("created", 1)]
    assert site.body(f"{path}/revisions/1") == created.json
    assert site.get(f"{path}/revisions/2").status_code == 410


# 7. Paging and missing revisions --------------------------------------------------------------


def test_revisions_page_by_page(site):
    path = f"{API}/events/{DISPUTED}"
    for n in range(3):
        response = site.patch(path, {"summary": f"Summary, take {n}."}, summary=f"Take {n}.")
        assert response.status_code == 200, response.json
    everything = site.history(path)
    assert [r["version"] for r in everything] == [4, 3, 2, 1]

    pages, url = [], f"{path}/revisions?page_size=1"
    while url:
        response = site.get(url)
        assert response.status_code == 200, response.json
        assert response.headers["X-Total-Count"] == "4"
        pages.append(response.json)
        url = links(response).get("next")
        assert len(pages) <= 4
    assert [len(page) for page in pages] == [1, 1, 1, 1]
    assert [page[0] for page in pages] == everything
    assert [r["summary"] for r in everything[:3]] == ["Take 2.", "Take 1.", "Take 0."]


MISSING_REVISIONS = [
    f"{API}/events/event-no-such-record/revisions",
    f"{API}/events/event-no-such-record/revisions/1",
    f"{API}/events/{DISPUTED}/revisions/999",
    f"{API}/events/{DISPUTED}/revisions/2",
    f"{API}/events/{DISPUTED}/revisions/0",
    f"{API}/events/{DISPUTED}/revisions/-1",
    f"{API}/events/{DISPUTED}/revisions/2147483647",
    f"{API}/events/{DISPUTED}/revisions/2147483648",
    f"{API}/events/{DISPUTED}/revisions/99999999999",
    f"{API}/events/{DISPUTED}/revisions/{'9' * 40}",
    f"{API}/events/{DISPUTED}/revisions/one",
    # The record exists, but not as a decree.
    f"{API}/decrees/{DISPUTED}/revisions",
    f"{API}/decrees/{DISPUTED}/revisions/1",
    f"{API}/actors/no-such-actor/revisions",
    f"{API}/articles/no-such-article/revisions/1",
    f"{API}/actors/{url_quote('кто-то')}/revisions",
]


def test_missing_revisions_are_404_never_500(site):
    site.app.config["PROPAGATE_EXCEPTIONS"] = False  # a crash is a 500 here, not an exception
    answers = {path: site.get(path) for path in MISSING_REVISIONS}
    statuses = {path: response.status_code for path, response in answers.items()}
    assert statuses == dict.fromkeys(MISSING_REVISIONS, 404)
    for path, response in answers.items():
        assert response.is_json, path
        assert response.json["status"] == 404, path


def test_writes_to_a_deleted_record_answer_410(site):
    site.app.config["PROPAGATE_EXCEPTIONS"] = False  # a crash is a 500 here, not an exception
    created = site.new_event(3)
    path, tag = created.headers["Location"], created.headers["ETag"]
    assert site.delete(path, summary="Gone for good.", etag=tag).status_code == 204
    headers = site._headers(tag)
    answers = {
        "PATCH": site.client.patch(path, data="{}", content_type=MERGE_PATCH, headers=headers),
        "PUT": site.client.put(path, json=created.json, headers=headers),
        "DELETE": site.client.delete(path, headers=headers),
    }
    assert {method: r.status_code for method, r in answers.items()} == dict.fromkeys(answers, 410)
    for response in answers.values():
        assert response.json["deleted_by"] == "alice"
        assert response.json["reason"] == "Gone for good."
    assert [r["action"] for r in site.history(path)] == ["deleted", "created"]


# 8. `data load` over edits made through the API ------------------------------------------------


def test_load_does_not_silently_revert_api_edits(site):
    path = f"{API}/events/{DISPUTED}"
    original, original_tag = site.body(path), site.etag(path)
    edited = site.patch(path, {"title": "Edited through the API"}, summary="Edit.")
    assert edited.status_code == 200, edited.json
    before = snapshot(site.url)

    refused = load(site.app)
    assert refused.exit_code == 1, refused.output
    assert f"event {DISPUTED}" in refused.output
    assert "--over-api-edits" in refused.output
    assert snapshot(site.url) == before
    assert site.get(path).json == edited.json
    assert site.etag(path) == edited.headers["ETag"]

    forced = site.app.test_cli_runner().invoke(args=["data", "load", "--over-api-edits"])
    assert forced.exit_code == 0, forced.output
    restored = site.get(path)
    assert restored.json["title"] == original["title"]
    assert {k: v for k, v in restored.json.items() if k != "updated_at"} == {
        k: v for k, v in original.items() if k != "updated_at"
    }
    assert restored.headers["ETag"] not in (edited.headers["ETag"], original_tag)
    history = assert_history_replays(site, path)
    assert [(r["action"], r["version"], r["token"]) for r in history] == [
        ("imported", 3, None),
        ("updated", 2, "alice"),
        ("imported", 1, None),
    ]
    assert history[0]["summary"] == LOAD_SUMMARY
    assert site.body(f"{path}/revisions/3") == restored.json

    # The files' state is the latest now: a plain load has nothing to do.
    again = load(site.app)
    assert again.exit_code == 0, again.output
    assert "Already up to date" in again.output
    assert len(site.history(path)) == 3


def test_load_does_not_silently_undo_a_deletion_made_through_the_api(site):
    record_id = unreferenced_event(DATA_DIR)
    path = f"{API}/events/{record_id}"
    assert site.delete(path, summary="Not a fact.").status_code == 204
    before = snapshot(site.url)

    refused = load(site.app)
    assert refused.exit_code == 1, refused.output
    assert f"event {record_id}" in refused.output
    assert snapshot(site.url) == before
    assert site.get(path).status_code == 410


def test_load_over_api_edits_restores_a_record_deleted_through_the_api(site):
    record_id = unreferenced_event(DATA_DIR)
    path = f"{API}/events/{record_id}"
    original, tag = site.body(path), site.etag(path)
    assert site.delete(path, summary="Not a fact.").status_code == 204

    forced = site.app.test_cli_runner().invoke(args=["data", "load", "--over-api-edits"])
    assert forced.exit_code == 0, forced.output
    restored = site.get(path)
    assert restored.status_code == 200
    assert restored.headers["ETag"] != tag
    # Its times are the load's or timestamps.yaml's (see test_load_keeps_the_times_of_facts).
    times = ("created_at", "updated_at")
    assert {k: v for k, v in restored.json.items() if k not in times} == {
        k: v for k, v in original.items() if k not in times
    }
    history = assert_history_replays(site, path)
    assert [(r["action"], r["version"], r["token"]) for r in history] == [
        ("imported", 3, None),
        ("deleted", 2, "alice"),
        ("imported", 1, None),
    ]
    assert site.body(f"{path}/revisions/1") == original
    assert site.get(f"{path}/revisions/2").status_code == 410

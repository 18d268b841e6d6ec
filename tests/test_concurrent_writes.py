"""Writes at the same time: gunicorn with two workers, clients in threads.

Every write locks the one-row dataset_state first (records.ChangeSet), so writers take turns:
of two PATCHes sent with the same If-Match, one wins and the other is refused (412); no update
is lost or applied twice; revisions are numbered by one gap-free `seq` in commit order. A write
that fails midway leaves nothing behind.
"""

import datetime as dt
import http.client
import itertools
import json
import re
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from sqlalchemy import create_engine, select
from sqlalchemy.exc import OperationalError

from api import records, search, store
from api.models import DatasetState, Revision

from .conftest import BACKENDS, DATA_DIR, dispose, empty_database, load, make_app
from .helpers import create_token, gunicorn, shipped_records, snapshot

MERGE_PATCH = "application/merge-patch+json"
EVENT = "event-anti-war-protests"
EVENT_URL = f"/api/v1/events/{EVENT}"


@dataclass
class Server:
    port: int
    token: str
    url: str
    log: Path

    def connection(self) -> http.client.HTTPConnection:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        connection.connect()
        return connection

    def call(self, method, path, body=None, headers=None, connection=None):
        """(status, headers, body) of one request; JSON bodies are parsed."""
        headers = dict(headers or {})
        if body is not None:
            headers.setdefault("Content-Type", "application/json")
        if method != "GET":
            headers.setdefault("Authorization", f"Bearer {self.token}")
        own = connection is None
        connection = connection or self.connection()
        try:
            data = json.dumps(body).encode() if body is not None else None
            connection.request(method, path, data, headers)
            response = connection.getresponse()
            payload = response.read()
            kind = response.getheader("Content-Type", "")
            parsed = json.loads(payload) if payload and "json" in kind else payload
            return response.status, dict(response.getheaders()), parsed
        finally:
            if own:
                connection.close()

    def get(self, path):
        status, headers, body = self.call("GET", path)
        assert status == 200, (path, status, body)
        return headers, body


@pytest.fixture(scope="module", params=BACKENDS)
def gunicorn_server(request, tmp_path_factory):
    """gunicorn (two workers) serving the shipped dataset, and an admin token."""
    tmp_path = tmp_path_factory.mktemp(f"writes-{request.param}")
    with empty_database(request.param, tmp_path) as url:
        app = make_app(url)
        result = load(app)
        assert result.exit_code == 0, result.output
        token = create_token(app)
        dispose(app)
        log = tmp_path / "gunicorn.log"
        home = {"HOME": str(tmp_path), "XDG_RUNTIME_DIR": str(tmp_path)}
        with gunicorn(url, log, workers=2, **home) as port:
            yield Server(port, token, url, log)


def server_errors(log: Path, since: int = 0) -> list[str]:
    """The messages of the log's lines above INFO and WARNING, from byte `since` on."""
    with log.open("rb") as lines:
        lines.seek(since)
        entries = [json.loads(line) for line in lines]
    return [
        f"{entry['message']}: {entry.get('exc_info', '').splitlines()[-1:]}"
        for entry in entries
        if entry["level"] not in ("INFO", "WARNING")
    ]


@pytest.fixture
def server(gunicorn_server):
    """The server; no error may be logged while a test uses it (a 500 is a bug)."""
    since = gunicorn_server.log.stat().st_size
    yield gunicorn_server
    assert server_errors(gunicorn_server.log, since) == []


def revision_count(server: Server, path: str) -> int:
    headers, _ = server.get(f"{path}/revisions")
    return int(headers["X-Total-Count"])


def at_once(*calls):
    """Run each call in a thread of its own, all released together; their results in order.

    Each thread opens its connection before the barrier, so the requests leave together.
    """
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(index, call):
        try:
            results[index] = call(barrier)
        except BaseException as error:  # noqa: BLE001 - reported by the test, not lost
            results[index] = error

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


def test_of_two_patches_with_the_same_etag_exactly_one_wins(server):
    revisions = revision_count(server, EVENT_URL)
    races = []
    for round_ in range(12):
        headers, before = server.get(EVENT_URL)
        etag = headers["ETag"]
        titles = [f"Race {round_}: writer {who}" for who in ("A", "B")]

        def patch(title, etag=etag):
            def call(barrier):
                connection = server.connection()
                try:
                    barrier.wait(timeout=30)
                    headers = {"Content-Type": MERGE_PATCH, "If-Match": etag}
                    return server.call("PATCH", EVENT_URL, {"title": title}, headers, connection)
                finally:
                    connection.close()

            return call

        outcomes = at_once(*(patch(title) for title in titles))
        statuses = [status for status, _, _ in outcomes]
        assert sorted(statuses) == [200, 412], (round_, outcomes)
        winner = titles[statuses.index(200)]
        won, lost = outcomes[statuses.index(200)], outcomes[statuses.index(412)]
        assert won[2]["title"] == winner
        assert lost[1]["Content-Type"] == "application/problem+json"
        assert lost[2]["status"] == 412

        headers, after = server.get(EVENT_URL)
        assert after["title"] == winner
        assert headers["ETag"] == won[1]["ETag"] != etag
        assert after["updated_at"] > before["updated_at"]
        revisions += 1
        assert revision_count(server, EVENT_URL) == revisions, round_
        _, history = server.get(f"{EVENT_URL}/revisions?page_size=1")
        assert history[0]["action"] == "updated" and history[0]["token"] == "writer"
        assert {"op": "replace", "path": "/title", "value": winner} in history[0]["patch"]
        races.append([outcome[1]["X-Request-Id"] for outcome in outcomes])

    # Not passed by luck: in some round the two requests were being served at the same time
    # (the access log has each one's worker, end time and duration).
    served = {}
    for line in server.log.read_text().splitlines():
        entry = json.loads(line)
        if entry.get("request_id"):
            end = dt.datetime.fromisoformat(entry["timestamp"])
            served[entry["request_id"]] = (
                end - dt.timedelta(milliseconds=entry["duration_ms"]),
                end,
            )
    overlapping = [
        (a, b)
        for a, b in races
        if a in served
        and b in served
        and served[a][0] < served[b][1]
        and served[b][0] < served[a][1]
    ]
    assert overlapping, (races, served)


def fresh_passages(count: int) -> list[dict]:
    """Sentences that occur once in a shipped article and that no record cites as they are,
    taken from each article in turn (so that concurrent writers cite different articles)."""
    cited = {
        (c["article_id"], c["start"], c["end"])
        for group in shipped_records(DATA_DIR).values()
        for record in group
        for c in record["sources"]
    }
    articles = yaml.safe_load((DATA_DIR / "articles.yaml").read_text(encoding="utf-8"))
    by_article = []
    for article in articles:
        article_text = (DATA_DIR / article["file"]).read_text(encoding="utf-8")
        found = []
        for sentence in re.split(r"(?<=[.!?])\s+", article_text):
            sentence = sentence.strip()
            if len(sentence) < 30 or article_text.count(sentence) != 1:
                continue
            start = article_text.index(sentence)
            if (article["id"], start, start + len(sentence)) not in cited:
                found.append({"article_id": article["id"], "quote": sentence})
        by_article.append(found)
    passages = [p for row in itertools.zip_longest(*by_article) for p in row if p]
    assert len(passages) >= count
    return passages[:count]


def new_event(passage: dict, n: int) -> dict:
    return {
        "kind": "report",
        "title": f"Concurrent create {n}",
        "summary": f"What passage {n} reports, written by a concurrent client.",
        "date": None,
        "sources": [passage],
    }


def test_concurrent_creates_all_land_with_distinct_gap_free_seqs(server):
    threads, each = 4, 5
    passages = fresh_passages(threads * each)
    bodies = [new_event(passage, n) for n, passage in enumerate(passages)]

    def writer(mine):
        def call(barrier):
            barrier.wait(timeout=30)
            return [server.call("POST", "/api/v1/events", body) for body in mine]

        return call

    shares = [bodies[i::threads] for i in range(threads)]
    outcomes = [outcome for batch in at_once(*map(writer, shares)) for outcome in batch]
    bodies = [body for share in shares for body in share]  # in the order of the outcomes
    assert [status for status, _, _ in outcomes] == [201] * len(bodies), [
        (status, body) for status, _, body in outcomes if status != 201
    ]
    created = [body["id"] for _, _, body in outcomes]
    assert len(set(created)) == len(created)
    for (_, headers, body), sent in zip(outcomes, bodies, strict=True):
        assert headers["Location"] == f"/api/v1/events/{body['id']}"
        assert body["title"] == sent["title"]

    # Every revision of every record, through the API: each seq once.
    seqs = []
    for collection in ("articles", "actors", "decrees", "campaigns", "penalties", "events"):
        _, items = server.get(f"/api/v1/{collection}?page_size=500")
        for item in items:
            _, history = server.get(f"{item['url']}/revisions?page_size=500")
            seqs += [revision["seq"] for revision in history]
    assert len(seqs) == len(set(seqs)), Counter(seqs).most_common(3)
    new_seqs = sorted(
        server.get(f"/api/v1/events/{event_id}/revisions")[1][0]["seq"] for event_id in created
    )
    assert len(new_seqs) == len(created) and new_seqs == sorted(set(new_seqs))

    # The whole history, from the first load to now: 1, 2, ... with no gap, and the dataset's
    # revision is its last number.
    engine = create_engine(server.url)
    try:
        with engine.connect() as connection:
            stored = list(connection.scalars(select(Revision.seq).order_by(Revision.seq)))
            state = connection.scalar(select(DatasetState.revision))
    finally:
        engine.dispose()
    assert stored == list(range(1, len(stored) + 1))
    assert state == stored[-1]
    assert sorted(seqs) == stored  # no revision is missing from the records' histories


# A write that fails midway --------------------------------------------------------------------


def _fail_in_search(monkeypatch, error):
    def reindex(*args, **kwargs):
        raise error

    monkeypatch.setattr(search, "reindex", reindex)


def _fail_in_change_set(monkeypatch, error):
    def reindex(self):
        raise error

    monkeypatch.setattr(records.ChangeSet, "_reindex", reindex)


FAILURES = {
    # A bug: a bare 500 (which must still be problem+json, never Flask's HTML page).
    "bug": (RuntimeError("injected failure"), 500),
    # The database failing under the write: 503.
    "database": (OperationalError("UPDATE search_documents", {}, Exception("injected")), 503),
}
WRITES = {
    "patch-event": ("PATCH", EVENT_URL, {"title": "Must not land"}),
    "create-event": ("POST", "/api/v1/events", None),
    "delete-event": ("DELETE", EVENT_URL, None),
    "patch-actor": ("PATCH", "/api/v1/actors/russia", {"name": "Must not land"}),
    "patch-article": (
        "PATCH",
        "/api/v1/articles/after-russia-kill-or-be-killed",
        {"note": "Must not land"},
    ),
}


@pytest.mark.parametrize(
    "where, failure",
    [(_fail_in_search, "bug"), (_fail_in_change_set, "database")],
    ids=["search.reindex-raises", "changeset-reindex-database-error"],
)
@pytest.mark.parametrize("write", sorted(WRITES))
def test_a_write_that_fails_midway_changes_nothing(
    backend, new_app, monkeypatch, write, where, failure
):
    app, url = new_app(backend)
    assert load(app).exit_code == 0
    token = create_token(app)
    app.config["PROPAGATE_EXCEPTIONS"] = False  # TESTING would raise it in the test instead
    client = app.test_client()
    method, path, body = WRITES[write]
    if body is None and method == "POST":
        body = new_event(fresh_passages(1)[0], 0)
    headers = {"Authorization": f"Bearer {token}"}
    if method != "POST":
        headers["If-Match"] = client.get(path).headers["ETag"]
    if body is not None:
        headers["Content-Type"] = MERGE_PATCH if method == "PATCH" else "application/json"
    watched = [
        EVENT_URL,
        "/api/v1/actors/russia",
        "/api/v1/articles/after-russia-kill-or-be-killed",
    ]

    def api_state():
        return {
            **{p: client.get(p).data for p in watched},
            **{f"{p}/revisions": client.get(f"{p}/revisions?page_size=500").data for p in watched},
            "events": client.get("/api/v1/events?page_size=500").data,
            "search": client.get("/api/v1/search?q=russia&page_size=500").data,
        }

    before, seen = snapshot(url), api_state()
    error, status = FAILURES[failure]
    where(monkeypatch, error)

    response = client.open(
        path, method=method, data=json.dumps(body) if body else None, headers=headers
    )

    assert response.status_code == status, response.data
    assert response.mimetype == "application/problem+json", response.data
    assert response.json["status"] == status
    assert "injected" not in response.get_data(as_text=True)  # no internals in the answer
    monkeypatch.undo()
    assert snapshot(url) == before
    assert api_state() == seen
    # And the same write, without the failure, then succeeds: no lock or session was left over.
    retried = client.open(
        path, method=method, data=json.dumps(body) if body else None, headers=headers
    )
    assert retried.status_code < 300, retried.data
    assert snapshot(url) != before


# More races ---------------------------------------------------------------------------------


def post_at_once(server: Server, bodies: list[dict]) -> list[tuple]:
    """POST each body to /events from a thread of its own, all at the same moment."""

    def post(body):
        def call(barrier):
            connection = server.connection()
            try:
                barrier.wait(timeout=30)
                return server.call("POST", "/api/v1/events", body, connection=connection)
            finally:
                connection.close()

        return call

    return at_once(*map(post, bodies))


def test_concurrent_creates_of_one_title_get_distinct_ids(server):
    """The id made from the title is chosen under the lock: never one id twice."""
    passages = fresh_passages(30)[-6:]  # not those the tests above cite
    bodies = [{**new_event(p, 0), "title": "Same title, concurrent"} for p in passages]
    outcomes = post_at_once(server, bodies)
    assert [status for status, _, _ in outcomes] == [201] * 6, outcomes
    base = "event-same-title-concurrent"
    assert sorted(body["id"] for _, _, body in outcomes) == sorted(
        [base] + [f"{base}-{n}" for n in range(2, 7)]
    )


def test_of_two_creates_citing_one_passage_one_is_refused(server):
    """One passage states one fact: checked under the lock, so two at once cannot both land."""
    passage = fresh_passages(40)[-1]
    bodies = [{**new_event(passage, 0), "title": f"One passage, writer {w}"} for w in "AB"]
    outcomes = post_at_once(server, bodies)
    assert sorted(status for status, _, _ in outcomes) == [201, 409], outcomes
    _, events = server.get("/api/v1/events?page_size=500")
    assert [e["sources"][0]["quote"] for e in events].count(passage["quote"]) == 1


def test_concurrent_creates_that_change_one_record_lose_none_of_its_changes(server):
    """Each new event contradicts one shipped event, which lists it back (contradicts is kept
    symmetric): that record is changed by every writer, and keeps every change."""
    shared = "/api/v1/events/event-kaluzhnii-criminal-case"
    headers, before = server.get(shared)
    revisions = revision_count(server, shared)
    passages = fresh_passages(36)[-4:]
    bodies = [
        {**new_event(p, n), "title": f"Contradicting {n}", "contradicts": [shared.split("/")[-1]]}
        for n, p in enumerate(passages)
    ]
    outcomes = post_at_once(server, bodies)
    assert [status for status, _, _ in outcomes] == [201] * 4, outcomes
    created = {body["id"] for _, _, body in outcomes}
    _, after = server.get(shared)
    assert set(after["contradicts"]) == set(before["contradicts"]) | created
    assert after["disputed"] is True
    assert revision_count(server, shared) == revisions + 4


def events_alone() -> list[str]:
    """Shipped events that no record refers to and that contradict none: each can go alone."""
    shipped = shipped_records(DATA_DIR)
    referred = {
        ref
        for group in shipped.values()
        for record in group
        for ref in [*record["contradicts"], *record.get("cases", [])]
    }
    return [
        e["id"]
        for e in shipped["events"]
        if e["id"] not in referred and not e["contradicts"] and e["id"] != EVENT
    ]


def test_a_delete_and_a_patch_at_once(server):
    """Whichever comes first wins: the other is told why (412 after a patch, 410 after a
    delete), and a deleted record gets no revision after its tombstone."""
    for event_id in events_alone()[:6]:
        path = f"/api/v1/events/{event_id}"
        headers, _ = server.get(path)
        etag = headers["ETag"]

        def write(method, etag=etag, path=path):
            def call(barrier):
                connection = server.connection()
                try:
                    barrier.wait(timeout=30)
                    if method == "DELETE":
                        return server.call("DELETE", path, None, {"If-Match": etag}, connection)
                    headers = {"Content-Type": MERGE_PATCH, "If-Match": etag}
                    return server.call("PATCH", path, {"notes": "Raced"}, headers, connection)
                finally:
                    connection.close()

            return call

        deleted, patched = (status for status, _, _ in at_once(write("DELETE"), write("PATCH")))
        assert (deleted, patched) in ((204, 410), (412, 200)), (event_id, deleted, patched)
        status, _, _ = server.call("GET", path)
        _, history = server.get(f"{path}/revisions")
        if deleted == 204:
            assert status == 410
            assert [r["action"] for r in history] == ["deleted", "imported"]
        else:
            assert status == 200
            assert [r["action"] for r in history] == ["updated", "imported"]


@pytest.mark.parametrize("method", ["PATCH", "PUT", "DELETE"])
def test_a_write_after_a_delete_is_told_the_record_is_gone(server, method):
    """What the loser of that race sees, without the race: 410 with the tombstone."""
    event_id = events_alone()[6 + ["PATCH", "PUT", "DELETE"].index(method)]
    path = f"/api/v1/events/{event_id}"
    headers, record = server.get(path)
    etag = headers["ETag"]
    assert server.call("DELETE", path, None, {"If-Match": etag})[0] == 204
    body = {"notes": "Too late"} if method == "PATCH" else (record if method == "PUT" else None)
    kind = {"PATCH": MERGE_PATCH, "PUT": "application/json"}.get(method)
    status, headers, problem = server.call(
        method, path, body, {"If-Match": etag, **({"Content-Type": kind} if kind else {})}
    )
    assert (status, headers["Content-Type"]) == (410, "application/problem+json"), problem
    assert problem["deleted_by"] == "writer"
    assert problem["revisions_url"] == f"{path}/revisions"


def test_an_export_is_one_state_while_writes_go_on(backend, new_app, tmp_path, monkeypatch):
    """Writes that commit while `data export` runs are in the export wholly or not at all.

    Between exporting the actors and the events, another client adds an actor and an event
    that involves it. An export with the event but not the actor could not be loaded.
    """
    app, url = new_app(backend)
    assert load(app).exit_code == 0
    token = create_token(app)
    other = make_app(url)  # another client of the same database, in a thread of its own
    headers = {"Authorization": f"Bearer {token}"}
    outcomes: list = []

    def writes():
        try:
            client = other.test_client()
            actor = client.post(
                "/api/v1/actors",
                json={"name": "Concurrent Actor", "kind": "organisation"},
                headers=headers,
            )
            outcomes.append(actor.status_code)
            event = new_event(fresh_passages(1)[0], 0)
            event["actors"] = [{"id": actor.json["id"], "role": "subject"}]
            outcomes.append(client.post("/api/v1/events", json=event, headers=headers).status_code)
        except Exception as error:  # noqa: BLE001 - reported below
            outcomes.append(error)

    each_fact, writer = store.each_fact, threading.Thread(target=writes)

    def each_fact_meanwhile(session, fact_type):
        if writer.ident is None:  # the first fact type: articles and actors are written
            writer.start()
            writer.join(timeout=2)  # where the export holds writes off, they wait: not done
        return each_fact(session, fact_type)

    monkeypatch.setattr(store, "each_fact", each_fact_meanwhile)
    try:
        result = app.test_cli_runner().invoke(args=["data", "export", str(tmp_path / "out")])
        assert result.exit_code == 0, result.output
    finally:
        writer.join(timeout=30)
        dispose(other)
    monkeypatch.undo()
    assert outcomes == [201, 201]  # both writes landed, during the export or after it

    exported = tmp_path / "out"
    actors = {a["id"] for a in yaml.safe_load((exported / "actors.yaml").read_text())}
    events = yaml.safe_load((exported / "events.yaml").read_text())
    involved = {ref["id"] for event in events for ref in event["actors"]}
    assert involved <= actors, f"the export names actors it lacks: {involved - actors}"
    copy, _ = new_app(backend, exported)
    loaded = load(copy)
    assert loaded.exit_code == 0, loaded.output

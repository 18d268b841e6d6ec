"""Mirrors: `flask mirror pull` following an origin that is written to while it pulls.

The origin is gunicorn (two workers) on the shipped dataset; writer threads create, update
and delete records over HTTP. The mirror is a database of its own on the same backend, pulled
into by `flask --app api mirror pull` as an operator runs it (a subprocess, one of them killed
part-way), and read through a Flask test client on the mirror database. Once the writers stop
and a last pull is done, the mirror answers what the origin answers, byte for byte.

Also: a reader of /changes never sees a gap, and what a pull refuses (a database that holds
data, another origin, an origin it cannot use).
"""

import http.server
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select
from werkzeug.serving import WSGIRequestHandler, make_server

from api import store
from api.config import PROJECT_DIR
from api.models import Actor, Article, DatasetState, Fact, Revision
from schemas.writes import RECORD_COLLECTIONS

from .conftest import BACKENDS, DATA_DIR, dispose, empty_database, load, make_app
from .helpers import create_token, free_port, gunicorn, shipped_records, snapshot
from .test_concurrent_writes import (
    MERGE_PATCH,
    Server,
    events_alone,
    fresh_passages,
    server_errors,
)

API = "/api/v1"
FLASK = Path(sys.executable).parent / "flask"
PAGE = 500  # the largest page of /changes
REPORT = re.compile(
    r"Mirror of (?P<source>\S+): (?:seeded from the snapshot at (?P<snapshot>\d+); )?"
    r"(?P<changes>.+); at sequence number (?P<seq>\d+)\."
)
# The headers a mirror's answer must share with the origin's (not Date, X-Request-Id, ...).
COMPARED_HEADERS = (
    "content-type",
    "content-disposition",
    "etag",
    "cache-control",
    "link",
    "x-total-count",
    "dataset-seq",
    "allow",
)


# The origin -------------------------------------------------------------------------------------


@dataclass
class Origin:
    server: Server
    backend: str
    base: str  # what `mirror pull` is given
    passages: list[dict]  # fresh passages to cite; each test takes its own share

    def seq(self) -> int:
        """The sequence number of its latest change."""
        status, headers, _ = raw(self.server, f"{API}/changes?since=0&page_size=1")
        assert status == 200
        return int(headers["dataset-seq"])


@pytest.fixture(scope="module", params=BACKENDS)
def origin_server(request, tmp_path_factory) -> Iterator[Origin]:
    """gunicorn (two workers) serving the shipped dataset, and an admin token."""
    tmp_path = tmp_path_factory.mktemp(f"origin-{request.param}")
    with empty_database(request.param, tmp_path) as url:
        app = make_app(url)
        result = load(app)
        assert result.exit_code == 0, result.output
        token = create_token(app)
        dispose(app)
        log = tmp_path / "gunicorn.log"
        home = {"HOME": str(tmp_path), "XDG_RUNTIME_DIR": str(tmp_path)}
        with gunicorn(url, log, workers=2, **home) as port:
            yield Origin(
                Server(port, token, url, log),
                request.param,
                f"http://127.0.0.1:{port}",
                fresh_passages(60),
            )


@pytest.fixture
def origin(origin_server) -> Iterator[Origin]:
    """The origin; no error may be logged while a test uses it (a 500 is a bug)."""
    since = origin_server.server.log.stat().st_size
    yield origin_server
    assert server_errors(origin_server.server.log, since) == []


def raw(server: Server, path: str, connection=None) -> tuple[int, dict[str, str], bytes]:
    """(status, headers by lower-case name, body bytes) of a GET to the server."""
    own = connection is None
    connection = connection or server.connection()
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body
    finally:
        if own:
            connection.close()


# Writers ----------------------------------------------------------------------------------------


def updatable_paths() -> list[str]:
    """Shipped records that writers patch and never delete: every type of record."""
    shipped = shipped_records(DATA_DIR)
    alone = set(events_alone())
    paths = [f"{API}/events/{e['id']}" for e in shipped["events"] if e["id"] not in alone][:8]
    for collection in ("decrees", "campaigns", "penalties"):
        paths += [f"{API}/{collection}/{r['id']}" for r in shipped[collection]]
    paths += [f"{API}/actors/{actor_id}" for actor_id in ("russia", "armenia", "cnn")]
    paths += [f"{API}/articles/{a}" for a in ("after-russia-kill-or-be-killed",)]
    return paths


def contradicted_events() -> list[str]:
    """Shipped events that new events may contradict (which changes them too): never deleted."""
    return [path.rsplit("/", 1)[1] for path in updatable_paths()[:4]]


@dataclass
class Tally:
    """What one writer did; `revisions`: how many revisions its writes must have left."""

    created: int = 0
    updated: int = 0
    deleted: int = 0
    retried: int = 0  # 412s, fetched again and retried
    revisions: int = 0
    unexpected: list = field(default_factory=list)


class Writers:
    """Threads that create events (citing fresh passages, some contradicting a shipped event),
    patch titles, summaries and notes (If-Match, again on 412) and delete events (their own
    creations, or shipped events nothing refers to), at random, until the block ends."""

    def __init__(self, origin: Origin, threads: int, passages, deletable, seed: str, pause=0.0):
        self.server, self.threads, self.seed, self.pause = origin.server, threads, seed, pause
        self.passages, self.deletable = list(passages), list(deletable)
        self.updatable, self.contradicted = updatable_paths(), contradicted_events()
        self.tallies = [Tally() for _ in range(threads)]
        self.stop = threading.Event()
        self._turns = threading.Condition()  # writes in flight, and whether they may start
        self._writing, self._paused = 0, False
        self.workers = [
            threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)
        ]

    def __enter__(self) -> "Writers":
        for worker in self.workers:
            worker.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for worker in self.workers:
            worker.join(timeout=60)
        assert not any(worker.is_alive() for worker in self.workers)

    @property
    def running(self) -> bool:
        return not self.stop.is_set() and all(worker.is_alive() for worker in self.workers)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """No write starts, and none is in flight, within the block."""
        with self._turns:
            self._paused = True
            assert self._turns.wait_for(lambda: self._writing == 0, timeout=60)
        try:
            yield
        finally:
            with self._turns:
                self._paused = False
                self._turns.notify_all()

    def _begin(self) -> bool:
        with self._turns:
            while self._paused and not self.stop.is_set():
                self._turns.wait(0.1)
            self._writing += 1
            return not self.stop.is_set()

    def _end(self) -> None:
        with self._turns:
            self._writing -= 1
            self._turns.notify_all()

    def total(self) -> Tally:
        total = Tally()
        for tally in self.tallies:
            for name in ("created", "updated", "deleted", "retried", "revisions"):
                setattr(total, name, getattr(total, name) + getattr(tally, name))
            total.unexpected += tally.unexpected
        return total

    def _run(self, index: int) -> None:
        rng = random.Random(f"{self.seed}-{index}")
        tally = self.tallies[index]
        pool = self.passages[index :: self.threads]
        doomed = self.deletable[index :: self.threads]
        mine: list[tuple[str, dict]] = []  # (id, passage) of its creations still there
        connection = None  # one per write (its GET and its PATCH or DELETE)

        def call(method, path, body=None, headers=None):
            return self.server.call(method, path, body, headers, connection)

        def summary(what: str) -> dict:
            return {"Edit-Summary": f"Writer {index}: {what}"} if rng.random() < 0.5 else {}

        def create(n: int) -> None:
            passage = pool.pop(rng.randrange(len(pool)))
            body = {
                "kind": "report",
                "title": f"Mirrored create {index}-{n}",
                "summary": f"What passage {n} of writer {index} reports.",
                "date": None,
                "sources": [passage],
            }
            if rng.random() < 0.3:
                body["contradicts"] = [rng.choice(self.contradicted)]
            status, _, record = call("POST", f"{API}/events", body, summary(f"create {n}"))
            if status != 201:
                tally.unexpected.append(("POST", body["title"], status, record))
                pool.append(passage)
                return
            mine.append((record["id"], passage))
            tally.created += 1
            tally.revisions += 1 + len(body.get("contradicts", []))

        def update(n: int) -> None:
            if mine and rng.random() < 0.3:
                path = f"{API}/events/{rng.choice(mine)[0]}"
            else:
                path = rng.choice(self.updatable)
            collection = path.split("/")[3]
            name = {"actors": "description", "articles": "note"}.get(collection)
            name = name or rng.choice(("title", "summary", "notes"))
            body = {name: f"The {name}, as writer {index} wrote it in write {n}."}
            for _ in range(100):
                status, headers, record = call("GET", path)
                if status != 200:
                    tally.unexpected.append(("GET", path, status, record))
                    return
                headers = {"Content-Type": MERGE_PATCH, "If-Match": headers["ETag"]}
                status, _, record = call("PATCH", path, body, {**headers, **summary(name)})
                if status == 412:
                    tally.retried += 1
                    continue
                if status != 200:
                    tally.unexpected.append(("PATCH", path, status, record))
                    return
                tally.updated += 1
                tally.revisions += 1
                return
            tally.unexpected.append(("PATCH", path, "lost every race"))

        def delete() -> None:
            passage = None
            if mine and (not doomed or rng.random() < 0.6):
                event_id, passage = mine.pop(rng.randrange(len(mine)))
            else:
                event_id = doomed.pop()
            path = f"{API}/events/{event_id}"
            for _ in range(100):
                status, headers, record = call("GET", path)
                if status != 200:
                    tally.unexpected.append(("GET", path, status, record))
                    return
                headers = {"If-Match": headers["ETag"], **summary(f"delete {event_id}")}
                status, _, answer = call("DELETE", path, None, headers)
                if status == 412:
                    tally.retried += 1
                    continue
                if status != 204:
                    tally.unexpected.append(("DELETE", path, status, answer))
                    return
                tally.deleted += 1
                tally.revisions += 1 + len(record["contradicts"])  # they change too
                if passage is not None:
                    pool.append(passage)  # free to cite again
                return
            tally.unexpected.append(("DELETE", path, "lost every race"))

        try:
            for n in range(1, 100_000):
                if self.stop.wait(rng.uniform(0, 2 * self.pause)):
                    return
                try:
                    if not self._begin():
                        return
                    connection = self.server.connection()
                    action = rng.choices(("create", "update", "delete"), (3, 5, 2))[0]
                    if action == "create" and pool:
                        create(n)
                    elif action == "delete" and (mine or doomed):
                        delete()
                    else:
                        update(n)
                finally:
                    self._end()
                    if connection is not None:
                        connection.close()
        except BaseException as error:  # noqa: BLE001 - reported by the test, not lost
            tally.unexpected.append(repr(error))


def wait_for(condition, what: str, timeout: float = 60):
    """Poll `condition` until it holds (its value is returned), or fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)
    return value


# Pulling ----------------------------------------------------------------------------------------


@dataclass
class Report:
    snapshot: int | None  # the seq the pull seeded from, if it did
    applied: dict[str, int]  # by action
    seq: int


@dataclass
class Pulled:
    returncode: int
    stdout: str
    stderr: str

    def report(self, source: str) -> Report:
        assert self.returncode == 0, self
        assert "Traceback" not in self.stderr, self.stderr
        match = REPORT.fullmatch(self.stdout.strip().splitlines()[-1])
        assert match and match["source"] == source, self.stdout
        changes = match["changes"]
        applied = {}
        if changes != "no new changes":
            applied = {a: int(n) for n, a in (part.split(" ") for part in changes.split(", "))}
        snapshot = int(match["snapshot"]) if match["snapshot"] else None
        return Report(snapshot, applied, int(match["seq"]))


def start_pull(mirror_url: str, source: str, *options: str) -> subprocess.Popen:
    """`flask --app api mirror pull SOURCE` on the mirror database, as an operator runs it."""
    return subprocess.Popen(
        [str(FLASK), "--app", "api", "mirror", "pull", source, *options],
        cwd=PROJECT_DIR,
        env={**os.environ, "DATABASE_URL": mirror_url},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def pull(mirror_url: str, source: str, *options: str) -> Pulled:
    process = start_pull(mirror_url, source, *options)
    try:
        stdout, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return Pulled(process.returncode, stdout, stderr)


@contextmanager
def state_reader(url: str) -> Iterator:
    """A function: (revision, history_from, mirror_of) of the database, read afresh."""
    engine = create_engine(url)
    columns = (DatasetState.revision, DatasetState.history_from, DatasetState.mirror_of)

    def read() -> tuple[int, int, str | None]:
        with engine.connect() as connection:
            row = connection.execute(select(*columns).where(DatasetState.id == 1)).first()
        return tuple(row) if row else (0, 0, None)

    try:
        yield read
    finally:
        engine.dispose()


def kill_part_way(mirror_url: str, source: str, state) -> tuple[int, int]:
    """A pull of one change per page, SIGKILLed once it has committed a few pages: the
    sequence numbers the mirror was at before it and after it."""
    before = state()[0]
    process = start_pull(mirror_url, source, "--page-size", "1")
    try:
        deadline = time.monotonic() + 60
        while state()[0] < before + 3:
            assert process.poll() is None, ("it ended before it was killed", process.communicate())
            assert time.monotonic() < deadline, "the pull committed no page in time"
            time.sleep(0.002)
        process.send_signal(signal.SIGKILL)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL
    return before, state()[0]


# Comparing answers ------------------------------------------------------------------------------


def comparable(body: bytes) -> bytes:
    """The body, but a problem's request_id (each answer's own)."""
    if body.startswith(b'{"type":"about:blank"'):
        return json.dumps({k: v for k, v in json.loads(body).items() if k != "request_id"}).encode()
    return body


class Compare:
    """The same GET to the origin (over HTTP) and to the mirror (a test client)."""

    def __init__(self, origin: Origin, mirror_client):
        self.origin, self.mirror = origin, mirror_client
        self.connection = origin.server.connection()
        self.count = 0

    def close(self):
        self.connection.close()

    def __call__(self, path: str) -> tuple[int, dict, bytes]:
        """Assert both answer alike; the origin's answer."""
        status, headers, body = raw(self.origin.server, path, self.connection)
        answer = self.mirror.get(path)
        mirrored = {k.lower(): v for k, v in answer.headers.items()}
        theirs = (status, {h: headers.get(h) for h in COMPARED_HEADERS}, comparable(body))
        ours = (
            answer.status_code,
            {h: mirrored.get(h) for h in COMPARED_HEADERS},
            comparable(answer.data),
        )
        assert ours == theirs, path
        self.count += 1
        return status, headers, body

    def json(self, path: str):
        status, _, body = self(path)
        assert status == 200, (path, status, body)
        return json.loads(body)


def export_records(body: bytes) -> tuple[list[dict], dict]:
    lines = [json.loads(line) for line in body.splitlines()]
    return lines[:-1], lines[-1]["manifest"]


def feed(compare: Compare, since: int, query: str = "") -> list[dict]:
    """Every change after `since`, page by page, each page alike on both."""
    entries: list[dict] = []
    while True:
        page = compare.json(f"{API}/changes?since={since}&page_size={PAGE}{query}")
        entries += page
        if len(page) < PAGE:
            return entries
        since = page[-1]["seq"]


def record_path(record_type: str, record_id: str) -> str:
    return f"{API}/{RECORD_COLLECTIONS[record_type]}/{record_id}"


LISTS = [
    *(f"{API}/{c}?page_size=500" for c in ("articles", "actors", *RECORD_COLLECTIONS.values())),
    f"{API}/events?sort=-updated_at&page_size=30",
    f"{API}/events?sort=title,-date&page_size=500",
    f"{API}/events?format=csv",
    f"{API}/events?format=ndjson",
    f"{API}/decrees?format=csv",
    f"{API}/actors?format=ndjson",
    f"{API}/articles?format=csv",
    f"{API}/events?disputed=true&page_size=500",
    f"{API}/events/facets",
    f"{API}/penalties/facets?facets=kind,year,actor",
    f"{API}/timeline?page_size=500",
    f"{API}/timeline/undated?page_size=500",
    f"{API}/actors/russia/facts",
    f"{API}/articles/after-russia-kill-or-be-killed/facts",
    f"{API}/search?q=mirrored&page_size=500",
    f"{API}/search?q=mobilisation&page_size=500",
    f"{API}/search?q=writer&type=event&page_size=500",
]


# 1. A mirror of an origin written to while it pulls ---------------------------------------------


def test_a_mirror_pulled_while_writes_go_on_ends_equal_to_its_origin(origin, new_database):
    source = origin.base
    mirror_url = new_database(origin.backend)
    mirror_app = None
    try:
        with state_reader(mirror_url) as state:
            mirror_app, pulls = follow_while_writing(origin, mirror_url, state)
        seeded, killed_at, end = pulls
        client = mirror_app.test_client()
        changes = answers_alike(Compare(origin, client), seeded.snapshot, killed_at, end)

        # A mirror is read-only: writes answer 405 (even with a valid token of its own).
        token = create_token(mirror_app, name="mirror-admin")
        before = snapshot(mirror_url)
        writes = [
            ("POST", f"{API}/events", {"title": "Never"}),
            ("PATCH", f"{API}/decrees/decree-partial-mobilisation", {"title": "Never"}),
            ("PUT", f"{API}/actors/russia", {"name": "Never", "kind": "state"}),
            ("DELETE", record_path(changes[-1]["type"], changes[-1]["id"]), None),
        ]
        for method, path, body in writes:
            response = client.open(
                path,
                method=method,
                json=body,
                headers={"Authorization": f"Bearer {token}", "If-Match": "*"},
            )
            assert response.status_code == 405, (method, path, response.data)
            assert response.mimetype == "application/problem+json"
            assert response.json["status"] == 405
            assert source in response.json["detail"]
            assert response.headers["Allow"] == "GET, HEAD, OPTIONS"
        assert snapshot(mirror_url) == before

        # Caught up: a second pull finds nothing new and changes nothing.
        again = pull(mirror_url, source)
        assert again.stdout.strip() == (
            f"Mirror of {source}: no new changes; at sequence number {end}."
        )
        assert again.report(source).applied == {}
        assert snapshot(mirror_url) == before
    finally:
        if mirror_app is not None:
            dispose(mirror_app)


def follow_while_writing(origin: Origin, mirror_url: str, state):
    """Writers at work; the mirror seeded, a pull killed part-way, the next resuming; once the
    writers stop, a last pull. The mirror's app, and (the seed's report, the seq the killed
    pull left, the origin's last seq)."""
    source, start = origin.base, origin.seq()
    passages, doomed = origin.passages[:32], events_alone()[:16]
    with Writers(origin, 3, passages, doomed, "mirror", pause=0.3) as writers:
        wait_for(lambda: origin.seq() >= start + 10, "the first writes")

        # The first pull seeds from a snapshot while the writers go on.
        seeded = pull(mirror_url, source).report(source)
        assert seeded.snapshot is not None and seeded.snapshot > start, seeded
        # ... then applies what the writers committed since, up to where the origin was.
        assert seeded.seq == seeded.snapshot + sum(seeded.applied.values())
        assert state() == (seeded.seq, seeded.snapshot, source)  # history_from, mirror_of
        mirror_app = make_app(mirror_url)

        # A pull killed part-way keeps the pages it committed, and only those: what the
        # origin's records were at that sequence number.
        wait_for(lambda: origin.seq() - state()[0] >= 15, "a backlog of changes")
        before, killed_at = kill_part_way(mirror_url, source, state)
        assert before + 3 <= killed_at < origin.seq()
        status, _, then = raw(origin.server, f"{API}/export?as_of={killed_at}")
        assert status == 200
        mirrored = mirror_app.test_client().get(f"{API}/export")
        assert mirrored.headers["Dataset-Seq"] == str(killed_at)
        assert mirrored.data == then, "the killed pull left a state the origin never had"

        # The next pull resumes right after the last page committed, while writes go on.
        resumed = pull(mirror_url, source).report(source)
        assert resumed.snapshot is None
        assert sum(resumed.applied.values()) == resumed.seq - killed_at > 0, resumed
        assert writers.running, "the writers stopped before the mirror was done with them"
    total = writers.total()
    assert total.unexpected == []
    assert min(total.created, total.updated, total.deleted) > 0, total
    end = origin.seq()
    assert end - start == total.revisions, "a write was lost or counted twice"

    final = pull(mirror_url, source, "--page-size", "25").report(source)
    assert final.seq == end and final.snapshot is None
    assert sum(final.applied.values()) == end - resumed.seq
    assert state() == (end, seeded.snapshot, source)
    return mirror_app, (seeded, killed_at, end)


def answers_alike(compare: Compare, history_from: int, killed_at: int, end: int) -> list[dict]:
    """The mirror (at `end`, its history from `history_from`) answers as its origin does:
    the snapshot, the feed, lists and records. The feed's changes."""
    sample = random.Random(end).sample
    try:
        # The snapshot, byte for byte; and as it was at the seed.
        _, headers, body = compare(f"{API}/export")
        assert headers["dataset-seq"] == str(end)
        exported, manifest = export_records(body)
        assert manifest["seq"] == end
        compare(f"{API}/export?as_of={history_from}")
        compare(f"{API}/export?as_of={killed_at}")

        # The feed from the mirror's history on, in every form.
        changes = feed(compare, history_from)
        assert [c["seq"] for c in changes] == list(range(history_from + 1, end + 1))
        assert feed(compare, killed_at) == [c for c in changes if c["seq"] > killed_at]
        feed(compare, history_from, "&type=event")
        compare(f"{API}/changes?since={history_from}&page_size=500&format=ndjson")
        compare(f"{API}/changes?since={end}")
        gone = compare.mirror.get(f"{API}/changes?since={history_from - 1}")
        assert gone.status_code == 410 and gone.mimetype == "application/problem+json"

        # Lists, searches, facets, timelines; every page of a paged list.
        for path in LISTS:
            assert compare(path)[0] == 200, path
        path = f"{API}/events?page_size=9"
        while path:
            _, headers, _ = compare(path)
            path = re.search(r'<([^>]+)>; rel="next"', headers.get("link", ""))
            path = path and path[1]

        # Records; some as they were at the seed (or 404: created since); the history
        # of some the mirror saw created; some deleted since the seed (410, and history).
        paths = [record_path(line["type"], line["id"]) for line in exported]
        for path in sample(paths, 40):
            assert compare(path)[0] == 200
        for path in sample(paths, 15):
            compare(f"{path}?as_of={history_from}")
        born = sorted(
            {record_path(c["type"], c["id"]) for c in changes if c["action"] == "created"}
        )
        dead = sorted(
            {record_path(c["type"], c["id"]) for c in changes if c["action"] == "deleted"}
        )
        assert born and dead
        for path in sample(born, min(12, len(born))):
            compare(f"{path}/revisions?page_size=500")
            compare(f"{path}/revisions?page_size=2")
            compare(f"{path}/revisions/1")
        for path in sample(dead, min(12, len(dead))):
            assert compare(path)[0] == 410
        for path in sorted(set(born) & set(dead)):  # whole histories since the seed
            compare(f"{path}/revisions?page_size=500")
            compare(f"{path}/revisions/2")  # an update's, or the tombstone (410)
        assert compare.count > 100
        return changes
    finally:
        compare.close()


# 2. A reader of the feed never skips a change ---------------------------------------------------


def test_a_reader_of_the_feed_never_skips_a_change(origin):
    """Numbers are handed out under the lock every writer takes, in commit order: a poll can
    never see a change before every change numbered below it."""
    server = origin.server
    start = origin.seq()
    page_size = 7
    polls: list[tuple[int, int, list[dict]]] = []  # (since, Dataset-Seq, entries)
    errors: list = []
    writers_done = threading.Event()

    def read():
        connection = server.connection()
        last = start
        try:
            while True:
                finishing = writers_done.is_set()
                path = f"{API}/changes?since={last}&page_size={page_size}"
                status, headers, entries = server.call("GET", path, connection=connection)
                assert status == 200, (path, status, entries)
                polls.append((last, int(headers["Dataset-Seq"]), entries))
                if entries:
                    last = entries[-1]["seq"]
                elif finishing:  # every write had committed before this poll: caught up
                    return
        except BaseException as error:  # noqa: BLE001 - reported by the test
            errors.append(error)
        finally:
            connection.close()

    reader = threading.Thread(target=read, daemon=True)
    passages, doomed = origin.passages[32:], events_alone()[16:28]
    try:
        with Writers(origin, 3, passages, doomed, "reader") as writers:
            reader.start()
            wait_for(lambda: origin.seq() >= start + 60, "60 changes", timeout=90)
    finally:
        writers_done.set()
        if reader.ident is not None:
            reader.join(timeout=60)
    assert not reader.is_alive() and errors == []
    total = writers.total()
    assert total.unexpected == []
    end = origin.seq()
    assert end - start == total.revisions

    seen: list[dict] = []
    for since, latest, entries in polls:
        seqs = [entry["seq"] for entry in entries]
        if entries:
            assert seqs == list(range(since + 1, since + 1 + len(seqs))), (since, seqs)
        # One snapshot: the page and the latest number agree.
        if len(entries) < page_size:
            assert (seqs[-1] if seqs else since) == latest, (since, seqs, latest)
        else:
            assert seqs[-1] <= latest
        seen += entries
    latests = [latest for _, latest, _ in polls]
    assert latests == sorted(latests)
    assert [entry["seq"] for entry in seen] == list(range(start + 1, end + 1))
    # Not passed by luck: the reader caught the writers in the act, again and again.
    assert sum(1 for _, _, entries in polls if 0 < len(entries) < page_size) >= 10

    everything: list[dict] = []
    since = 0
    while True:
        _, page = server.get(f"{API}/changes?since={since}&page_size={PAGE}")
        everything += page
        if len(page) < PAGE:
            break
        since = page[-1]["seq"]
    assert [entry["seq"] for entry in everything] == list(range(1, end + 1))
    for entry in seen:
        assert everything[entry["seq"] - 1] == entry
    engine = create_engine(server.url)
    try:
        with engine.connect() as connection:
            assert connection.scalar(select(func.max(Revision.seq))) == end
            assert connection.scalar(select(func.count()).select_from(Revision)) == end
            assert connection.scalar(select(DatasetState.revision)) == end
    finally:
        engine.dispose()


# A snapshot taken while a write commits ----------------------------------------------------------


def test_a_mirror_seeded_while_a_write_commits_ends_equal_to_its_origin(
    backend, new_app, new_database, monkeypatch
):
    """The write commits after /export has answered (its Dataset-Seq is sent), as its records
    begin to stream: the snapshot is the state at that seq, the write comes in the feed."""
    origin_app, origin_url = new_app(backend)
    assert load(origin_app).exit_code == 0
    token = create_token(origin_app)
    seq = int(origin_app.test_client().get(f"{API}/changes").headers["Dataset-Seq"])
    writer = make_app(origin_url)  # another client of the origin's database
    wrote: list[int] = []

    def write():
        response = writer.test_client().patch(
            f"{API}/actors/russia",
            json={"description": "Written while the snapshot streams."},
            headers={"Authorization": f"Bearer {token}", "If-Match": "*"},
            content_type=MERGE_PATCH,
        )
        wrote.append(response.status_code)

    each_record = store.snapshot

    def snapshot_meanwhile(session, as_of=None):
        if not wrote:  # the first snapshot only: a write commits, from another thread
            thread = threading.Thread(target=write)
            thread.start()
            thread.join(timeout=30)
        return each_record(session, as_of)

    monkeypatch.setattr(store, "snapshot", snapshot_meanwhile)
    mirror_url = new_database(backend)
    try:
        with served(origin_app) as source:
            seeded = pull(mirror_url, source)
            assert wrote == [200]
            assert seeded.report(source) == Report(seq, {"updated": 1}, seq + 1)
            again = pull(mirror_url, source)
            assert again.report(source) == Report(None, {}, seq + 1)
        mirror_app = make_app(mirror_url)
        try:
            mirrored = mirror_app.test_client().get(f"{API}/export")
            assert mirrored.data == origin_app.test_client().get(f"{API}/export").data
        finally:
            dispose(mirror_app)
    finally:
        dispose(writer)


# 3. What a pull refuses -------------------------------------------------------------------------


def test_a_pull_into_a_database_that_holds_data_is_refused(origin, new_app):
    app, url = new_app(origin.backend)
    assert load(app).exit_code == 0
    before = snapshot(url)
    pulled = pull(url, origin.base)
    assert pulled.returncode == 1, pulled
    assert pulled.stdout == ""
    assert pulled.stderr.strip() == (
        "Mirror pull failed: This database is not a mirror and holds data: not mirrored."
    )
    assert snapshot(url) == before


class Quiet(WSGIRequestHandler):
    def log_request(self, *args):
        pass


@contextmanager
def served(app) -> Iterator[str]:
    """The app served in this process (werkzeug, threaded): its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=Quiet)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=30)
        server.server_close()


def test_a_mirror_refuses_to_pull_from_another_origin(origin, new_app, new_database):
    other_app, _ = new_app(origin.backend)  # a second origin, with the same data
    assert load(other_app).exit_code == 0
    mirror_url = new_database(origin.backend)
    first = pull(mirror_url, origin.base).report(origin.base)
    assert first.snapshot == first.seq == origin.seq()
    before = snapshot(mirror_url)
    with served(other_app) as other:
        pulled = pull(mirror_url, other)
    assert pulled.returncode == 1, pulled
    assert pulled.stdout == ""
    assert pulled.stderr.strip() == (
        f"Mirror pull failed: This database mirrors {origin.base}, not {other}."
    )
    assert snapshot(mirror_url) == before


class NotAnApi(http.server.BaseHTTPRequestHandler):
    """A web server that is not this API: an HTML page, or a stream cut mid-record."""

    protocol_version = "HTTP/1.1"
    cut = False

    def do_GET(self):
        self.send_response(200)
        if not self.cut:
            body = b"<!doctype html>\n<html><body>Welcome to nginx!</body></html>\n"
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        part = b'{"seq": 1, "type": "article", "id": "after-'
        self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args):
        pass


class CutStream(NotAnApi):
    cut = True


@contextmanager
def not_an_api(handler) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=30)
        server.server_close()


@pytest.mark.parametrize(
    "where",
    [
        "closed-port",
        "not-found",
        "html-page",
        "cut-mid-record",
    ],
)
def test_a_pull_from_an_origin_it_cannot_use_fails_in_one_line(origin, new_database, where):
    mirror_url = new_database(origin.backend)

    @contextmanager
    def source() -> Iterator[str]:
        if where == "closed-port":
            yield f"http://127.0.0.1:{free_port()}"
        elif where == "not-found":
            yield f"{origin.base}/no/api/here"
        else:
            with not_an_api(NotAnApi if where == "html-page" else CutStream) as url:
                yield url

    with source() as url:
        pulled = pull(mirror_url, url)
    assert pulled.returncode == 1, pulled
    assert pulled.stdout == ""
    assert "Traceback" not in pulled.stderr, pulled.stderr
    lines = pulled.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Mirror pull failed: {url}/api/v1/"), lines
    if where == "not-found":
        assert ": 404 " in lines[0]
    # Nothing was seeded: the database is no mirror, and holds nothing.
    engine = create_engine(mirror_url)
    try:
        with engine.connect() as connection:
            for model in (Article, Actor, Fact, Revision):
                assert connection.scalar(select(func.count()).select_from(model)) == 0
            assert connection.scalar(select(DatasetState.mirror_of)) is None
    finally:
        engine.dispose()

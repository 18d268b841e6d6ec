"""Read replicas on PostgreSQL: reads from a real streaming standby, the rest from the primary.

A private primary cluster (initdb into a temporary directory, on a free port) and a standby
made from it with `pg_basebackup -R`, on another port, are started here and stopped at the end:
never the shared server of TEST_DATABASE_URL. Replay is paused on the standby to tell which
server answered. Skipped when the PostgreSQL binaries are not installed; with them, on CI
(CI=true), these tests always run.
"""

import glob
import importlib
import json
import logging
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from api import create_app
from api.config import ConfigError, replica_urls

from .conftest import dispose, load
from .helpers import create_token, free_port

API = "/api/v1"
ACTOR = f"{API}/actors/armenia"
MERGE_PATCH = "application/merge-patch+json"
PG_COMMANDS = ("initdb", "pg_ctl", "pg_basebackup", "postgres")


def _pg_bin() -> Path | None:
    """The newest installed PostgreSQL's binaries (Debian's layout), else those on PATH."""
    for directory in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if all((Path(directory) / command).exists() for command in PG_COMMANDS):
            return Path(directory)
    found = [shutil.which(command) for command in PG_COMMANDS]
    return Path(found[0]).parent if all(found) else None


def _missing() -> str | None:
    if _pg_bin() is None:
        return f"PostgreSQL's {', '.join(PG_COMMANDS)} are not installed"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root, and there is no postgres user to run PostgreSQL as"
    return None


class Cluster:
    """A PostgreSQL server on its own port, with its data directory under `root`.

    As root, every command runs as the postgres user (PostgreSQL refuses to run as root),
    as bench/hostile.py does for its private cluster.
    """

    def __init__(self, root: Path, name: str):
        self.root, self.data, self.log = root, root / name, root / f"{name}.log"
        self.port = free_port()
        self.running = False

    def run(self, command: str, *args: str) -> None:
        argv = [str(_pg_bin() / command), *args]
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=self.root)
        assert done.returncode == 0, f"{command} failed: {done.stdout}{done.stderr}"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        self.run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")
        self.running = False

    def url(self, database: str = "facts") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str = "facts") -> psycopg.Connection:
        return psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname=database, autocommit=True
        )

    def scalar(self, sql: str):
        with self.connect() as connection:
            return connection.execute(sql).fetchone()[0]


def wait_for(condition, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


REVISION = "SELECT revision FROM dataset_state WHERE id = 1"


class Servers:
    """The primary, its standby, and an app on both (DATABASE_REPLICA_URL = the standby)."""

    def __init__(self, primary: Cluster, standby: Cluster, app):
        self.primary, self.standby, self.app = primary, standby, app
        self.client = app.test_client()
        self.token = create_token(app)

    def caught_up(self) -> None:
        """Wait until the standby has replayed every commit of the primary."""
        head = self.primary.scalar(REVISION)
        wait_for(lambda: self.standby.scalar(REVISION) == head, "the standby to catch up")

    def pause_replay(self) -> None:
        self.caught_up()
        with self.standby.connect() as connection:
            connection.execute("SELECT pg_wal_replay_pause()")

    def resume_replay(self) -> None:
        with self.standby.connect() as connection:
            connection.execute("SELECT pg_wal_replay_resume()")

    def describe(self, description: str):
        """PATCH the actor's description through the API: the response."""
        response = self.client.patch(
            ACTOR,
            data=json.dumps({"description": description}),
            content_type=MERGE_PATCH,
            headers={"Authorization": f"Bearer {self.token}", "If-Match": "*"},
        )
        assert response.status_code == 200, response.json
        return response


def replica_app(primary_url: str, replicas: str):
    return create_app(
        {"TESTING": True, "DATABASE_URL": primary_url, "DATABASE_REPLICA_URL": replicas}
    )


def dispose_all(app) -> None:
    dispose(app)
    for replica in app.extensions["db_replicas"]:
        replica.sessions.kw["bind"].dispose()


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    if reason := _missing():
        if os.environ.get("CI") == "true" and _pg_bin() is not None:
            pytest.fail(f"CI has PostgreSQL's binaries, but {reason}")  # never a silent skip
        pytest.skip(reason)
    # Not pytest's tmp_path: its parent is private to root, and the servers run as postgres.
    root = Path(tempfile.mkdtemp(prefix="replicas-pg-"))
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(root, user.pw_uid, user.pw_gid)
    primary, standby = Cluster(root, "primary"), Cluster(root, "standby")
    app = None
    try:
        # initdb's pg_hba.conf lets local replication connections in with -A trust, and
        # wal_level=replica and max_wal_senders=10 are the defaults: a standby can stream.
        primary.run(
            "initdb", "-D", str(primary.data), "-A", "trust", "-U", "postgres", "-E", "UTF8"
        )
        primary.start()
        with primary.connect("postgres") as connection:
            connection.execute("CREATE DATABASE facts")
        app = replica_app(primary.url(), standby.url())
        result = load(app)  # on the primary: the CLI never reads from a replica
        assert result.exit_code == 0, result.output
        # -R: standby.signal and primary_conninfo, so that it starts as a streaming standby;
        # -c fast: a checkpoint now, not one spread over minutes.
        source = ["-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres"]
        primary.run(
            "pg_basebackup", *source, "-D", str(standby.data), "-R", "-X", "stream", "-c", "fast"
        )
        standby.start()
        servers = Servers(primary, standby, app)
        assert standby.scalar("SELECT pg_is_in_recovery()") is True
        servers.caught_up()
        yield servers
    finally:
        if app is not None:
            dispose_all(app)
        for cluster in (standby, primary):
            if cluster.running:
                try:
                    cluster.stop("immediate")
                except (AssertionError, subprocess.SubprocessError, OSError):
                    pass
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def paused(servers) -> Iterator[Servers]:
    """Replay paused on the standby for the test (resumed after it, even if it fails)."""
    servers.pause_replay()
    try:
        yield servers
    finally:
        servers.resume_replay()
        servers.caught_up()


def description(response) -> str:
    assert response.status_code == 200, response.json
    return response.json["description"]


# The settings -----------------------------------------------------------------------------------


def test_replica_urls_are_separated_by_commas_or_whitespace():
    primary = "postgresql+psycopg://db/facts"
    assert replica_urls("", primary) == []
    assert replica_urls(
        " postgresql://a/facts, postgres://b/facts\n postgresql://c/f ", primary
    ) == [
        "postgresql+psycopg://a/facts",
        "postgresql+psycopg://b/facts",
        "postgresql+psycopg://c/f",
    ]


def test_replicas_need_postgresql(tmp_path):
    with pytest.raises(ConfigError, match="needs a PostgreSQL DATABASE_URL"):
        replica_app(f"sqlite:///{tmp_path / 'facts.sqlite3'}", "postgresql://replica/facts")
    with pytest.raises(ConfigError, match="sqlite:// is not PostgreSQL"):
        replica_app("postgresql+psycopg://primary/facts", f"sqlite:///{tmp_path / 'facts.sqlite3'}")


# Routing ----------------------------------------------------------------------------------------


def test_reads_come_from_the_replica_and_min_dataset_seq_reads_your_write(paused):
    client = paused.client
    before = client.get(ACTOR)
    old = description(before)
    seen = int(before.headers["Dataset-Seq"])
    assert seen == paused.primary.scalar(REVISION)

    written = paused.describe("Written while the standby does not replay.")
    seq = int(written.headers["Dataset-Seq"])  # the write goes to the primary: it works
    assert seq > seen
    assert written.json["description"] == "Written while the standby does not replay."

    # A plain read is the replica's: the state before the write, and it says so.
    stale = client.get(ACTOR)
    assert description(stale) == old
    assert stale.headers["Dataset-Seq"] == str(seen)
    assert "Min-Dataset-Seq" in stale.headers["Vary"]
    # The replica has replayed `seen`: it serves a client that asks for no more.
    assert description(client.get(ACTOR, headers={"Min-Dataset-Seq": str(seen)})) == old
    # It has not replayed the write: the primary serves the client that made it.
    fresh = client.get(ACTOR, headers={"Min-Dataset-Seq": str(seq)})
    assert description(fresh) == "Written while the standby does not replay."
    assert fresh.headers["Dataset-Seq"] == str(seq)
    # A list, and HEAD, route the same way.
    listing = client.get(f"{API}/actors?page_size=500")
    assert listing.headers["Dataset-Seq"] == str(seen)
    assert client.head(ACTOR, headers={"Min-Dataset-Seq": str(seq)}).headers["Dataset-Seq"] == (
        str(seq)
    )

    # Once replay resumes, the plain read catches up.
    paused.resume_replay()
    wait_for(
        lambda: (
            client.get(ACTOR).json["description"] == "Written while the standby does not replay."
        ),
        "the replica to show the write",
    )
    assert client.get(ACTOR).headers["Dataset-Seq"] == str(seq)


def test_the_change_feed_the_snapshot_and_readiness_are_the_primarys(paused):
    client = paused.client
    seq = int(paused.describe("The feed's head is the primary's.").headers["Dataset-Seq"])
    assert int(client.get(ACTOR).headers["Dataset-Seq"]) < seq  # the replica lags

    changes = client.get(f"{API}/changes?since={seq - 1}")
    assert changes.status_code == 200
    assert changes.headers["Dataset-Seq"] == str(seq)
    assert [change["seq"] for change in changes.json] == [seq]
    export = client.get(f"{API}/export")
    assert export.headers["Dataset-Seq"] == str(seq)
    *_, manifest = export.data.decode().splitlines()
    assert json.loads(manifest)["manifest"]["seq"] == seq
    assert client.get("/readyz").json["revision"] == seq


def test_every_write_method_goes_to_the_primary(servers):
    """The standby is read-only: a write routed there would fail."""
    client, auth = servers.client, {"Authorization": f"Bearer {servers.token}"}
    body = {"name": "Replica Test Organisation", "kind": "organisation", "variants": []}
    body["description"] = None
    created = client.post(f"{API}/actors", json=body, headers=auth)
    assert created.status_code == 201, created.json
    url = created.headers["Location"]
    seq = int(created.headers["Dataset-Seq"])
    shown = client.get(url, headers={"Min-Dataset-Seq": str(seq)})
    assert shown.status_code == 200, shown.json
    put = client.put(url, json={**body, "description": "Put."}, headers={**auth, "If-Match": "*"})
    assert put.status_code == 200, put.json
    assert int(put.headers["Dataset-Seq"]) == seq + 1
    deleted = client.delete(url, headers={**auth, "If-Match": "*"})
    assert deleted.status_code == 204
    assert int(deleted.headers["Dataset-Seq"]) == seq + 2
    assert client.get(url, headers={"Min-Dataset-Seq": str(seq + 2)}).status_code == 410


@pytest.mark.parametrize("value", ["abc", "-1", "1.5", "", "1e3", "12345678901234567890"])
def test_a_malformed_min_dataset_seq_is_a_400_problem(servers, value):
    response = servers.client.get(ACTOR, headers={"Min-Dataset-Seq": value})
    assert response.status_code == 400
    assert response.content_type == "application/problem+json"
    assert "Min-Dataset-Seq" in response.json["detail"]


def test_a_replica_that_cannot_be_reached_leaves_the_reads_to_the_primary(servers, caplog):
    nothing = f"postgresql://postgres@127.0.0.1:{free_port()}/facts"  # no server listens
    app = replica_app(servers.primary.url(), nothing)
    try:
        client = app.test_client()
        with caplog.at_level(logging.WARNING):
            response = client.get(ACTOR)
        assert response.status_code == 200, response.json
        assert response.headers["Dataset-Seq"] == str(servers.primary.scalar(REVISION))
        assert any("is unavailable, reading from the primary" in m for m in caplog.messages)
        assert client.get(f"{API}/actors").status_code == 200  # not tried again for a while
    finally:
        dispose_all(app)


def test_a_replica_that_goes_down_and_comes_back(servers, caplog, monkeypatch):
    """Its pooled connections are broken: the reads go to the primary, then back to it."""
    monkeypatch.setattr(
        importlib.import_module("api.db"), "REPLICA_RETRY_SECONDS", 0
    )  # try it again on every request
    app = replica_app(servers.primary.url(), servers.standby.url())
    try:
        client = app.test_client()
        assert client.get(ACTOR).status_code == 200  # a pooled connection to the standby
        servers.standby.stop()
        try:
            written = servers.describe("Written while the standby is down.")
            with caplog.at_level(logging.WARNING):
                response = client.get(ACTOR)
            assert description(response) == "Written while the standby is down."
            assert response.headers["Dataset-Seq"] == written.headers["Dataset-Seq"]
            assert any("is unavailable" in m for m in caplog.messages)
        finally:
            servers.standby.start()
        servers.pause_replay()  # caught up first
        try:
            servers.describe("Written once the standby is back.")
            assert description(client.get(ACTOR)) == "Written while the standby is down."
        finally:
            servers.resume_replay()
    finally:
        dispose_all(app)

"""The database connection: one engine per app, one session per request.

With read replicas (DATABASE_REPLICA_URL, PostgreSQL streaming standbys), the reads of a GET
or HEAD request go to one of them, picked at random; everything else goes to the primary:
writes, the reads of any other request, the change feed and the snapshot (whose head must be
the latest commit, whichever app server a mirror's requests reach), readiness, migrations and
the CLI. The views do not know: db.session() decides here. docs/scaling.md has the rules.
"""

import random
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path

from flask import Flask, Response, current_app, g, has_request_context, request
from flask_smorest import abort
from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from schemas.contract import MIN_SEQ_HEADER, SEQ_HEADER

from . import store
from .config import replica_urls

# Blueprints whose reads are the primary's: the change feed, the snapshot, /readyz.
PRIMARY_BLUEPRINTS = {"changes", "export", "operations"}
REPLICA_RETRY_SECONDS = 5.0  # a replica that could not be connected to is left alone this long
REPLICA_CONNECT_TIMEOUT = 3  # seconds, unless its URL sets connect_timeout


def _configure_sqlite(dbapi_connection, _record) -> None:
    # The driver's own transaction handling skips SELECTs: turn it off and BEGIN ourselves
    # (_begin_sqlite), so that a request's reads see one snapshot, as on PostgreSQL.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _begin_sqlite(connection) -> None:
    # A write takes SQLite's write lock at BEGIN: a deferred transaction that read first
    # could not upgrade to writing once another writer had committed (SQLITE_BUSY).
    writes = connection.get_execution_options().get("writes", False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")


def make_engine(url: str, connect_timeout: int | None = None) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:" and "uri" not in parsed.query:
            # Opened read-write, never created: a missing file is an error (503), not a new,
            # empty database. `flask db upgrade` and `data load` create it (migrate.py).
            parsed = parsed.set(database=f"file:{parsed.database}").update_query_dict(
                {"mode": "rw", "uri": "true"}
            )
        engine = create_engine(parsed)
        event.listen(engine, "connect", _configure_sqlite)
        event.listen(engine, "begin", _begin_sqlite)
        return engine
    # PostgreSQL: a pooled connection that a restart broke is replaced, not used (pre-ping);
    # each request reads one snapshot, so the statements of one answer (a count and its page,
    # a ranking and its documents) agree while a load commits.
    # A standby: hot standby allows REPEATABLE READ, and its snapshots are of replayed commits.
    connect_args = {}
    if connect_timeout and "connect_timeout" not in parsed.query:
        connect_args["connect_timeout"] = connect_timeout
    return create_engine(
        parsed, pool_pre_ping=True, isolation_level="REPEATABLE READ", connect_args=connect_args
    )


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite database URL, if it names one."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database.removeprefix("file:"))


@dataclass
class Replica:
    sessions: sessionmaker
    retry_at: float = 0.0  # monotonic time before which it is not tried (it was down)


def min_seq() -> int | None:
    """The request's Min-Dataset-Seq, if it sends one: a sequence number (400 otherwise)."""
    value = request.headers.get(MIN_SEQ_HEADER)
    if value is None:
        return None
    if not re.fullmatch(r"[0-9]{1,18}", value.strip()):
        abort(
            HTTPStatus.BAD_REQUEST,
            message=f"The {MIN_SEQ_HEADER} header must be a sequence number (a Dataset-Seq "
            f"that a write answered), not {value[:40]!r}.",
        )
    return int(value)


def _check_min_seq() -> None:
    """A malformed Min-Dataset-Seq is a 400 on any request, replicas or not."""
    min_seq()


def _replica_session(replicas: list[Replica], wanted: int) -> Session | None:
    """A session on a replica that is up and has replayed sequence number `wanted`, if any.

    Its first statement reads the revision: that connects (a replica that is down is found
    now, not halfway through a view), and takes the snapshot that every later read of the
    request sees, so the revision checked is the one served, and the Dataset-Seq reported.
    """
    now = time.monotonic()
    for replica in random.sample(replicas, len(replicas)):
        if replica.retry_at > now:
            continue
        session = replica.sessions()
        try:
            revision = store.revision(session)
        except OperationalError as error:
            session.close()
            replica.retry_at = now + REPLICA_RETRY_SECONDS
            current_app.logger.warning(
                "Replica %s is unavailable, reading from the primary: %s",
                replica.sessions.kw["bind"].url.render_as_string(),  # the password hidden
                str(error.orig).strip(),
            )
            continue
        if revision >= wanted:
            g.dataset_seq = revision
            return session
        session.close()  # behind the client's own write: another replica, or the primary
    return None


class Database:
    def init_app(self, app: Flask) -> None:
        urls = replica_urls(app.config.get("DATABASE_REPLICA_URL", ""), app.config["DATABASE_URL"])
        engine = make_engine(app.config["DATABASE_URL"])
        app.extensions["db_replicas"] = [
            Replica(sessionmaker(make_engine(url, REPLICA_CONNECT_TIMEOUT), expire_on_commit=False))
            for url in urls
        ]
        app.extensions["db"] = sessionmaker(engine, expire_on_commit=False)
        # Writes read the latest committed state (they are serialised by a row lock, see
        # curation.py): on PostgreSQL READ COMMITTED, where a snapshot would make the second
        # of two writers fail instead of wait; on SQLite BEGIN IMMEDIATE.
        writer = engine.execution_options(writes=True)
        if engine.dialect.name == "postgresql":
            writer = writer.execution_options(isolation_level="READ COMMITTED")
        app.extensions["db_writes"] = sessionmaker(writer, expire_on_commit=False)
        app.teardown_appcontext(self._close_session)
        app.before_request(_check_min_seq)
        if urls:
            app.after_request(self._report_seq)

    @staticmethod
    def engine() -> Engine:
        return current_app.extensions["db"].kw["bind"]

    @staticmethod
    def dialect() -> str:
        """'sqlite' or 'postgresql': the few queries that differ by backend ask this."""
        return current_app.extensions["db"].kw["bind"].dialect.name

    def session(self) -> Session:
        """The session of the current request (or CLI command): a replica's for the reads of
        a GET or HEAD, if there are replicas (see _read_session), else the primary's."""
        if "db_session" not in g:
            g.db_session = self._read_session()
        return g.db_session

    def stream_session(self) -> Session:
        """A read session of its own, for a response streamed after the request's teardown
        (which closes the request's session): its statements, the first one included, see
        one snapshot. The caller closes it when the stream ends."""
        return self._read_session()

    @staticmethod
    def _read_session() -> Session:
        """The session of a read: a replica's if the request is a GET or HEAD that may read
        from one and one is up and has replayed its Min-Dataset-Seq, else the primary's."""
        replicas = current_app.extensions["db_replicas"]
        primary = current_app.extensions["db"]
        if not (replicas and has_request_context() and request.method in ("GET", "HEAD")):
            return primary()
        if request.blueprint in PRIMARY_BLUEPRINTS:
            return primary()  # they report their own Dataset-Seq, /readyz its revision
        session = _replica_session(replicas, min_seq() or 0)
        if session is None:
            session = primary()
            g.dataset_seq = store.revision(session)
        return session

    @staticmethod
    def _report_seq(response: Response) -> Response:
        """With replicas, a read says which state it was read at: the revision of the
        snapshot it was served from, unless the view set its own (/changes, as_of)."""
        if "dataset_seq" in g:
            response.headers.setdefault(SEQ_HEADER, str(g.dataset_seq))
            response.vary.add(MIN_SEQ_HEADER)
        return response

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A write: a session whose work is committed together, or rolled back on any error."""
        with current_app.extensions["db_writes"]() as session, session.begin():
            yield session

    @staticmethod
    def _close_session(_exc: BaseException | None) -> None:
        session = g.pop("db_session", None)
        if session is None:
            return
        try:
            session.close()  # a read-only transaction: rolled back
        except DBAPIError as error:
            # The database went away after the response was made (it is sent already): the
            # connection is dropped from the pool, and the next request gets a new one.
            current_app.logger.warning("Closing a session failed: %s", str(error.orig).strip())


db = Database()

"""The database connection: one engine per app, one session per request."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flask import Flask, current_app, g
from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker


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


def make_engine(url: str) -> Engine:
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
    return create_engine(parsed, pool_pre_ping=True, isolation_level="REPEATABLE READ")


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite database URL, if it names one."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database.removeprefix("file:"))


class Database:
    def init_app(self, app: Flask) -> None:
        engine = make_engine(app.config["DATABASE_URL"])
        app.extensions["db"] = sessionmaker(engine, expire_on_commit=False)
        # Writes read the latest committed state (they are serialised by a row lock, see
        # curation.py): on PostgreSQL READ COMMITTED, where a snapshot would make the second
        # of two writers fail instead of wait; on SQLite BEGIN IMMEDIATE.
        writer = engine.execution_options(writes=True)
        if engine.dialect.name == "postgresql":
            writer = writer.execution_options(isolation_level="READ COMMITTED")
        app.extensions["db_writes"] = sessionmaker(writer, expire_on_commit=False)
        app.teardown_appcontext(self._close_session)

    @staticmethod
    def engine() -> Engine:
        return current_app.extensions["db"].kw["bind"]

    @staticmethod
    def dialect() -> str:
        """'sqlite' or 'postgresql': the few queries that differ by backend ask this."""
        return current_app.extensions["db"].kw["bind"].dialect.name

    @staticmethod
    def session() -> Session:
        """The session of the current request (or CLI command)."""
        if "db_session" not in g:
            g.db_session = current_app.extensions["db"]()
        return g.db_session

    @staticmethod
    def stream_session() -> Session:
        """A read session of its own, for a response streamed after the request's teardown
        (which closes the request's session): its statements, the first one included, see
        one snapshot. The caller closes it when the stream ends."""
        return current_app.extensions["db"]()

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

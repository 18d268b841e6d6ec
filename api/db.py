"""The database connection: one engine per app, one session per request."""

from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask, current_app, g
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker


def _enforce_sqlite_foreign_keys(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(url: str) -> Engine:
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _enforce_sqlite_foreign_keys)
    return engine


class Database:
    def init_app(self, app: Flask) -> None:
        engine = make_engine(app.config["DATABASE_URL"])
        app.extensions["db"] = sessionmaker(engine, expire_on_commit=False)
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

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work is committed together, or rolled back on any error."""
        with current_app.extensions["db"]() as session, session.begin():
            yield session

    @staticmethod
    def _close_session(_exc: BaseException | None) -> None:
        session = g.pop("db_session", None)
        if session is not None:
            session.close()


db = Database()

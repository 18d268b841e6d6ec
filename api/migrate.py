"""The database schema: Alembic migrations, applied by `flask db upgrade` and `data load`."""

import fcntl
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import current_app
from sqlalchemy import Connection, text

from .db import db, sqlite_file

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config() -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    # configparser interpolates "%": escape the ones of URL-encoded options.
    config.set_main_option("sqlalchemy.url", current_app.config["DATABASE_URL"].replace("%", "%%"))
    return config


def upgrade_database() -> None:
    if path := sqlite_file(current_app.config["DATABASE_URL"]):
        path.parent.mkdir(parents=True, exist_ok=True)
        # Created here, as the app opens SQLite files without creating them; write-ahead
        # logging, so that readers, each in a snapshot, never hold up a load's commit.
        with closing(sqlite3.connect(path)) as connection:
            connection.execute("PRAGMA journal_mode=WAL")
    with db.engine().begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


@contextmanager
def exclusive() -> Iterator[None]:
    """One schema or data change at a time on this database: a second `data load` waits.

    PostgreSQL: an advisory lock, per schema (tests share one database); SQLite: a lock on
    a file beside the database.
    """
    if path := sqlite_file(current_app.config["DATABASE_URL"]):
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_name(path.name + ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield
        return
    key = text("SELECT hashtext(current_schema() || :purpose)")
    with db.engine().connect() as connection:
        lock_id = connection.scalar(key, {"purpose": ":conscription-facts:load"})
        connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": lock_id})
        connection.commit()
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": lock_id})
            connection.commit()


@cache
def _heads() -> frozenset[str]:
    return frozenset(ScriptDirectory(str(MIGRATIONS)).get_heads())


def schema_is_current(connection: Connection) -> bool:
    """Whether the database's schema is at the migrations' head."""
    return set(MigrationContext.configure(connection).get_current_heads()) == _heads()

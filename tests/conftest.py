"""Fixtures: the app on every reachable backend, loaded with the shipped dataset.

The suite runs once on SQLite and once more on PostgreSQL when it is reachable
(TEST_DATABASE_URL, default the local server). On CI (CI=true) an unreachable PostgreSQL is
an error, never a silent skip.
"""

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from api import create_app
from api.config import PROJECT_DIR, database_url

DATA_DIR = PROJECT_DIR / "data"
PG_URL = database_url(os.environ.get("TEST_DATABASE_URL", "postgresql://127.0.0.1:5432/test"))


def _postgres_error() -> str | None:
    url = make_url(PG_URL)
    try:
        psycopg.connect(
            host=url.host,
            port=url.port,
            dbname=url.database,
            user=url.username,
            password=url.password,
            connect_timeout=3,
        ).close()
    except psycopg.Error as error:
        return str(error).strip()
    return None


POSTGRES_ERROR = _postgres_error()
BACKENDS = ["sqlite"] + (["postgresql"] if POSTGRES_ERROR is None else [])


def pytest_configure(config):
    if POSTGRES_ERROR and os.environ.get("CI") == "true":
        raise pytest.UsageError(f"CI needs PostgreSQL at {PG_URL}: {POSTGRES_ERROR}")


def pytest_report_header(config):
    if POSTGRES_ERROR:
        return f"backends: sqlite only (PostgreSQL unreachable: {POSTGRES_ERROR})"
    return f"backends: sqlite, postgresql ({make_url(PG_URL).render_as_string()})"


@contextmanager
def empty_database(backend: str, tmp_dir: Path) -> Iterator[str]:
    """The URL of a new, empty database; on PostgreSQL a schema of its own, dropped after."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_dir / 'facts.sqlite3'}"
        return
    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = make_url(PG_URL).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    try:
        url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(False)
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def new_database(tmp_path_factory) -> Iterator:
    """A factory of empty databases: new_database(backend) -> URL."""
    with ExitStack() as stack:
        yield lambda backend: stack.enter_context(
            empty_database(backend, tmp_path_factory.mktemp("db"))
        )


@pytest.fixture
def new_app(new_database) -> Iterator:
    """A factory of apps on new, empty databases: new_app(backend) -> (app, url).

    Their connections are closed at teardown, even when the test fails.
    """
    apps = []

    def make(backend: str, data_dir: Path = DATA_DIR):
        url = new_database(backend)
        apps.append(make_app(url, data_dir))
        return apps[-1], url

    yield make
    for app in apps:
        dispose(app)


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


def make_app(url: str, data_dir: Path = DATA_DIR):
    return create_app({"TESTING": True, "DATABASE_URL": url, "DATA_DIR": data_dir})


def load(app, data_dir: Path | None = None):
    """Run `flask data load` through the CLI."""
    args = ["data", "load"] + (["--data-dir", str(data_dir)] if data_dir else [])
    return app.test_cli_runner().invoke(args=args)


# The shipped dataset, loaded once per backend for the read-only tests.
@pytest.fixture(scope="session", params=BACKENDS)
def loaded_app(request, tmp_path_factory):
    with empty_database(request.param, tmp_path_factory.mktemp("shipped")) as url:
        app = make_app(url)
        result = load(app)
        assert result.exit_code == 0, result.output
        yield app
        dispose(app)


def dispose(app) -> None:
    """Close the app's pooled connections (PostgreSQL cannot drop a schema in use)."""
    app.extensions["db"].kw["bind"].dispose()


@pytest.fixture
def client(loaded_app):
    return loaded_app.test_client()


@pytest.fixture
def data_copy(tmp_path) -> Path:
    """A writable copy of data/ for tests that break it on purpose."""
    return Path(shutil.copytree(DATA_DIR, tmp_path / "data"))

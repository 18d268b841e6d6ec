"""Small helpers shared by the tests."""

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
import yaml
from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.orm import Session, undefer

from api import formats, records, store
from api.config import PROJECT_DIR
from api.dataset import FACT_FILES
from api.models import FACT_TYPES, Actor, Article, Fact
from schemas.facts import COLLECTIONS

LINK = re.compile(r'<([^>]+)>; rel="([^"]+)"')


def stale_forms(app) -> list[tuple[str, str]]:
    """(type, id) of every record whose stored JSON or CSV form is not what its schema
    renders from the record now (records.store_forms)."""
    stale = []
    with app.app_context(), Session(app.extensions["db"].kw["bind"]) as session:
        for model in (Article, Actor, Fact):
            loading = store.FACT_LOADING if model is Fact else ()
            stmt = select(model).options(undefer(model.json_form), undefer(model.csv_form))
            for row in session.scalars(stmt.options(*loading)).unique():
                record_type = row.type if model is Fact else model.__name__.lower()
                schema = records.LIST_SCHEMAS[record_type]
                fresh = schema.dump(row)
                if row.json_form is None or orjson.loads(row.json_form) != fresh:
                    stale.append((record_type, row.id))
                elif row.csv_form != formats.csv_line(schema, fresh):
                    stale.append((record_type, row.id))
    return stale


def stale_facets(app) -> dict[str, dict]:
    """Per fact type, the whole collection's facets as writes kept them (facet_counts) where
    they differ from the facets counted from the records now."""
    stale = {}
    with app.app_context(), Session(app.extensions["db"].kw["bind"]) as session:
        for fact_type in FACT_TYPES:
            everything = store.fact_query(fact_type)
            kept = store.facets(session, everything, list(store.FACETS), whole=fact_type)
            counted = store._facets(session, everything, list(store.FACETS))
            if kept != counted:
                stale[fact_type] = {"kept": kept, "counted": counted}
    return stale


def json_lines(text: str) -> list[dict]:
    """Every line of the text as JSON: one that is not JSON fails the test."""
    return [orjson.loads(line) for line in text.splitlines() if line.strip()]


def links(response) -> dict[str, str]:
    return {rel: url for url, rel in LINK.findall(response.headers.get("Link", ""))}


def walk(client, url: str) -> list[dict]:
    """Every item of a paginated list, following the `next` links."""
    items: list[dict] = []
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.json
        items += response.json
        url = links(response).get("next")
    return items


def shipped_records(data_dir: Path) -> dict[str, list[dict]]:
    """The records of each fact collection, as the YAML files hold them."""
    return {
        COLLECTIONS[fact_type]: yaml.safe_load((data_dir / name).read_text(encoding="utf-8")) or []
        for fact_type, name in FACT_FILES.items()
    }


def edit(path: Path, change):
    """Change the records of a YAML file in place; what `change` returns is returned."""
    records = yaml.safe_load(path.read_text(encoding="utf-8"))
    outcome = change(records)
    path.write_text(yaml.safe_dump(records, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return outcome


def unreferenced_event(data_dir: Path) -> str:
    """The id of an event that no other record refers to (it can be removed alone)."""
    records = shipped_records(data_dir)
    referred = {
        ref
        for group in records.values()
        for record in group
        for ref in [*record["contradicts"], *record.get("cases", [])]
    }
    return next(r["id"] for r in records["events"] if r["id"] not in referred)


def create_token(app, name: str = "writer", role: str = "admin") -> str:
    """A new token through the CLI, as a curator gets one: the last line of its output."""
    result = app.test_cli_runner().invoke(args=["tokens", "create", "--name", name, "--role", role])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    assert token.startswith("cft_") and " " not in token, result.output
    return token


def snapshot(url: str) -> dict[str, list]:
    """Every row of every table (the search index's included): proof that nothing changed."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return {
                table: sorted(map(repr, connection.execute(text(f'SELECT * FROM "{table}"'))))
                for table in sorted(inspect(connection).get_table_names())
            }
    finally:
        engine.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def gunicorn(url: str, log: Path, workers: int = 1, **env: str) -> Iterator[int]:
    """gunicorn with the shipped gunicorn.conf.py, as `make run` starts it: its port, once
    /healthz answers. Its output goes to `log`."""
    port = free_port()
    environ = {**os.environ, "DATABASE_URL": url, "PORT": str(port)}
    environ.update(WEB_CONCURRENCY=str(workers), **env)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), "api:create_app()"],
            cwd=PROJECT_DIR,
            env=environ,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5).close()
                break
            except OSError:
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)

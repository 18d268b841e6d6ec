"""Small helpers shared by the tests."""

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
import yaml
from alembic import command
from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.orm import Session, undefer

from api import formats, records, store
from api.config import PROJECT_DIR
from api.dataset import FACT_FILES
from api.db import db
from api.migrate import alembic_config
from api.models import FACT_TYPES, Actor, Article, Fact
from schemas.contract import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from schemas.facts import COLLECTIONS
from schemas.queries import encode_cursor

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


def downgrade(app, revision: str) -> None:
    """Take the app's database schema back to a migration (to test the ones after it)."""
    with app.app_context(), db.engine().begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


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


def pages(client, url: str) -> Iterator:
    """Each page (its response) of a paginated list, following the `next` links."""
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.json
        yield response
        url = links(response).get("next")


def walk(client, url: str) -> list[dict]:
    """Every item of a paginated list, following the `next` links."""
    return [item for response in pages(client, url) for item in response.json]


def linked_records(client, url: str) -> list[dict]:
    """Every record of an actor's or an article's /facts: its pages' groups, in order."""
    return [
        record
        for response in pages(client, url)
        for group in response.json.values()
        for record in group
    ]


def assert_linked_pages(client, url: str, page_size: int) -> list[dict]:
    """Walk an actor's or an article's /facts `page_size` records a page, forward then back,
    checking each page. The records, in id order.

    A page has every type's group, each in id order, of its type; its records follow those
    of the page before in id order; every page gives the total; the first has no `prev`,
    the last no `next`; the `prev` links lead back through the same pages.
    """
    forward = list(pages(client, f"{url}?page_size={page_size}"))
    records: list[dict] = []
    for number, response in enumerate(forward):
        groups = response.json
        assert list(groups) == list(COLLECTIONS.values()), groups
        for fact_type, collection in COLLECTIONS.items():
            assert {record["type"] for record in groups[collection]} <= {fact_type}
        page = sorted((r for group in groups.values() for r in group), key=lambda r: r["id"])
        for group in groups.values():
            assert [r["id"] for r in group] == sorted(r["id"] for r in group)
        assert len(page) == page_size or (number == len(forward) - 1 and len(page) <= page_size)
        assert not records or not page or records[-1]["id"] < page[0]["id"]
        records += page
        rels = links(response)
        assert ("prev" in rels, "next" in rels) == (number > 0, number < len(forward) - 1)
    assert {r.headers["X-Total-Count"] for r in forward} == {str(len(records))}
    backward, previous = [forward[-1].json], links(forward[-1]).get("prev")
    while previous:
        response = client.get(previous)
        assert response.status_code == 200, response.json
        backward.append(response.json)
        previous = links(response).get("prev")
    assert backward[::-1] == [response.json for response in forward]
    for record in records:
        assert record == client.get(record["url"]).json
    if len(records) <= DEFAULT_PAGE_SIZE:  # one page of the default size holds them all
        whole = client.get(url)
        grouped = {c: [r for r in records if r["type"] == t] for t, c in COLLECTIONS.items()}
        assert whole.json == grouped
        assert whole.headers["Link"] == f'<{url}>; rel="first"'
    return records


def ids_where(records: dict[str, list[dict]], linked: Callable[[dict], bool]) -> list[str]:
    """The ids of the records (by collection) for which `linked` is true, in id order."""
    return sorted(record["id"] for group in records.values() for record in group if linked(record))


def assert_pages_follow_writes(client, auth: dict[str, str], url: str, event: dict) -> None:
    """A new event linked to the actor or article whose /facts is `url` is in its pages,
    once; deleted, it is gone from them."""
    before = assert_linked_pages(client, url, page_size=2)
    created = client.post("/api/v1/events", json=event, headers=auth)
    assert created.status_code == 201, created.json
    after = assert_linked_pages(client, url, page_size=2)
    assert [r["id"] for r in after] == sorted([*(r["id"] for r in before), created.json["id"]])
    assert created.json in after
    assert delete_current(client, auth, created.headers["Location"]).status_code == 204
    assert assert_linked_pages(client, url, page_size=2) == before


def assert_facts_go_with_their_record(client, auth: dict[str, str], collection: str, body):
    """A new actor or article (`body`, posted to `collection`) has one empty page of records;
    once it is deleted (410), its /facts is a 404, as for an id never used."""
    created = client.post(f"/api/v1/{collection}", json=body, headers=auth)
    assert created.status_code == 201, created.json
    path = created.headers["Location"]
    assert assert_linked_pages(client, f"{path}/facts", page_size=2) == []
    assert delete_current(client, auth, path).status_code == 204
    assert client.get(path).status_code == 410
    gone = client.get(f"{path}/facts")
    assert gone.status_code == 404 and gone.mimetype == "application/problem+json"


def delete_current(client, auth: dict[str, str], path: str):
    """DELETE of the record at `path`, in the version it has now (If-Match: its ETag)."""
    tag = client.get(path).headers["ETag"]
    return client.delete(path, headers={**auth, "If-Match": tag})


def assert_paging_refused(client, url: str, list_name: str) -> None:
    """Bad paging of a /facts list (`url`, without a query) is a 422 naming the parameter;
    so is a cursor of another list, or of this list (`list_name`) that does not fit its order."""
    of_events = links(client.get("/api/v1/events?page_size=1"))["next"].split("cursor=")[1]
    own = links(client.get(f"{url}?page_size=1"))["next"].split("cursor=")[1]
    too_long = encode_cursor(["decree-a", "decree-b"], False, "id", list_name)
    for query, name in [
        ("page_size=0", "page_size"),
        (f"page_size={MAX_PAGE_SIZE + 1}", "page_size"),
        ("page_size=two", "page_size"),
        ("page_size=2&page_size=3", "page_size"),
        ("cursor=not*base64", "cursor"),
        (f"cursor={of_events}", "cursor"),
        (f"cursor={too_long}", "cursor"),
        ("sort=-id", "sort"),
        ("format=csv", "format"),
        ("as_of=1", "as_of"),
    ]:
        response = client.get(f"{url}?{query}")
        assert response.status_code == 422, (query, response.json)
        assert response.mimetype == "application/problem+json"
        assert list(response.json["errors"]["query"]) == [name], (query, response.json)
        assert response.json["detail"].startswith(f"Invalid query parameter {name}:"), query
    assert client.get(f"{url}?page_size=1&cursor={own}").status_code == 200


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

"""Stored representations: lists and fact details send the JSON and CSV stored with each
record when it changed. They must be byte for byte what the schemas render now."""

import csv
import io

import orjson
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from api import formats, records, store
from api.migrate import upgrade_database
from api.models import Actor, Article, Fact

from .conftest import load
from .helpers import downgrade, stale_facets, stale_forms, walk

API = "/api/v1"
LISTS = {  # collection: the type of its records
    "decrees": "decree",
    "campaigns": "campaign",
    "penalties": "penalty",
    "events": "event",
    "actors": "actor",
    "articles": "article",
}
MODELS = {"actor": Actor, "article": Article}


def fresh(app, record_type: str) -> list[dict]:
    """Every record of the type as its list schema renders it now, in id order."""
    model = MODELS.get(record_type, Fact)
    with app.app_context(), Session(app.extensions["db"].kw["bind"]) as session:
        stmt = select(model).order_by(model.id)
        if model is Fact:
            stmt = stmt.where(Fact.type == record_type).options(*store.FACT_LOADING)
        rows = session.scalars(stmt).unique().all()
        return [records.LIST_SCHEMAS[record_type].dump(row) for row in rows]


def test_every_shipped_record_is_stored_as_its_schema_renders_it(loaded_app):
    assert stale_forms(loaded_app) == []


@pytest.mark.parametrize("collection", LISTS)
def test_lists_send_what_the_schemas_render(client, loaded_app, collection):
    record_type = LISTS[collection]
    expected = fresh(loaded_app, record_type)
    assert expected, "the shipped data has records of every type"
    assert walk(client, f"{API}/{collection}?page_size=7") == expected

    schema = records.LIST_SCHEMAS[record_type]
    exported = client.get(f"{API}/{collection}?format=csv")
    assert exported.status_code == 200
    assert exported.mimetype == "text/csv"
    lines = [formats.csv_line(schema, record) for record in expected]
    assert exported.get_data(as_text=True) == formats.csv_header(schema).decode() + "".join(lines)
    rows = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True))))
    assert [row["id"] for row in rows] == [record["id"] for record in expected]

    ndjson = client.get(f"{API}/{collection}?format=ndjson").get_data()
    assert [orjson.loads(line) for line in ndjson.splitlines()] == expected

    page = client.get(f"{API}/{collection}?format=csv&page_size=2")
    assert page.get_data(as_text=True).splitlines()[1:] == [line.rstrip() for line in lines[:2]]
    assert 'rel="next"' in page.headers["Link"]


def test_a_fact_detail_is_its_stored_form_with_its_etag(client, loaded_app):
    for record in fresh(loaded_app, "event")[:5]:
        response = client.get(f"{API}/events/{record['id']}")
        assert response.status_code == 200
        assert response.mimetype == "application/json"
        assert response.json == record
        again = client.get(
            f"{API}/events/{record['id']}", headers={"If-None-Match": response.headers["ETag"]}
        )
        assert again.status_code == 304
        assert again.headers["ETag"] == response.headers["ETag"]
    assert client.get(f"{API}/decrees/{record['id']}").status_code == 404  # another type's id


def test_the_migrations_render_and_count_the_records_stored_before_them(backend, new_app):
    app, _ = new_app(backend)
    assert load(app).exit_code == 0
    downgrade(app, "0006")
    with app.app_context():
        upgrade_database()
    assert stale_forms(app) == []
    assert stale_facets(app) == {}  # 0008 counted them
    events = app.test_client().get("/api/v1/events/facets?facets=kind").get_json()
    assert sum(c["count"] for c in events["kind"]) == len(walk(app.test_client(), "/api/v1/events"))


def test_a_record_left_without_its_forms_is_rendered_again(backend, new_app):
    app, _ = new_app(backend)
    assert load(app).exit_code == 0
    with app.app_context(), Session(app.extensions["db"].kw["bind"]) as session:
        session.execute(update(Fact).values(json_form=None, csv_form=None))
        session.execute(update(Actor).where(Actor.kind == "person").values(json_form=None))
        session.commit()
        facts = session.scalar(select(func.count()).select_from(Fact))
        assert len(stale_forms(app)) > facts
        assert records.store_missing_forms(session, batch=10) > facts
        session.commit()
    assert stale_forms(app) == []

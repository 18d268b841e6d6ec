"""CSV, NDJSON and JSON representations, streamed; gzip; ETags, 304 and Cache-Control."""

import csv
import gzip
import hashlib
import io
import json

import pytest

from schemas.writes import RECORD_COLLECTIONS

from .conftest import DATA_DIR
from .helpers import shipped_records, walk

SHIPPED = shipped_records(DATA_DIR)
LISTS = [
    "/api/v1/events?kind=statement",
    "/api/v1/articles",
    "/api/v1/actors",
    "/api/v1/timeline",
    "/api/v1/search?q=putin",
]


def fetch(client, url, **kwargs):
    """GET and read the whole body, so that a streamed response is finished and closed."""
    response = client.get(url, **kwargs)
    response.was_streamed = response.is_streamed
    response.get_data()
    response.close()
    return response


def ndjson(response):
    return [json.loads(line) for line in response.get_data(as_text=True).splitlines()]


def csv_rows(response):
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


@pytest.mark.parametrize("url", LISTS)
def test_ndjson_and_csv_hold_every_match_of_the_json_list(client, url):
    as_json = walk(client, url + "&page_size=3" if "?" in url else url + "?page_size=3")
    sep = "&" if "?" in url else "?"
    by_arg = fetch(client, f"{url}{sep}format=ndjson")
    assert by_arg.status_code == 200 and by_arg.was_streamed
    assert by_arg.mimetype == "application/x-ndjson"
    assert ndjson(by_arg) == as_json
    by_accept = fetch(client, url, headers={"Accept": "application/x-ndjson"})
    assert ndjson(by_accept) == as_json
    as_csv = fetch(client, url, headers={"Accept": "text/csv"})
    assert as_csv.mimetype == "text/csv" and as_csv.was_streamed
    rows = csv_rows(as_csv)
    assert [row["id"] for row in rows] == [item["id"] for item in as_json]


def test_csv_flattens_nested_fields(client):
    rows = csv_rows(fetch(client, "/api/v1/penalties?format=csv"))
    by_id = {row["id"]: row for row in rows}
    for record in SHIPPED["penalties"]:
        row = by_id[record["id"]]
        assert row["title"] == record["title"]
        assert row["date.value"] == ((record["date"] or {}).get("value") or "")
        sources = json.loads(row["sources"])
        assert [s["quote"] for s in sources] == [s["quote"] for s in record["sources"]]
        assert row["applies_during"] == ";".join(record["applies_during"])
        assert row["disputed"] in ("true", "false")


def test_export_is_every_record_as_its_detail_endpoint_shows_it_then_a_manifest(client):
    response = fetch(client, "/api/v1/export")
    assert response.status_code == 200 and response.was_streamed
    lines = response.get_data().splitlines(keepends=True)
    *entries, manifest = [json.loads(line) for line in lines]
    manifest = manifest["manifest"]
    # The manifest: the sequence number (also a header), the counts, a checksum of the lines.
    assert manifest["seq"] == int(response.headers["Dataset-Seq"])
    assert manifest["sha256"] == hashlib.sha256(b"".join(lines[:-1])).hexdigest()
    counted = {
        c: sum(1 for e in entries if RECORD_COLLECTIONS[e["type"]] == c) for c in manifest["counts"]
    }
    assert counted == manifest["counts"]
    expected = {r["id"] for records_ in SHIPPED.values() for r in records_}
    facts = [e for e in entries if e["type"] not in ("article", "actor")]
    assert {e["id"] for e in facts} == expected and len(facts) == len(expected)
    assert manifest["counts"]["articles"] == 5 and entries[0]["type"] == "article"
    for entry in entries:
        detail = client.get(f"/api/v1/{RECORD_COLLECTIONS[entry['type']]}/{entry['id']}")
        assert entry["record"] == detail.json, entry["id"]
        assert entry["seq"] <= manifest["seq"] and entry["action"] == "created"


def test_export_refuses_other_formats(client):
    for fmt in ("json", "csv"):
        response = fetch(client, f"/api/v1/export?format={fmt}")
        assert response.status_code == 422 and "format" in response.json["errors"]["query"]


def test_export_defaults_to_ndjson(client):
    assert fetch(client, "/api/v1/export").mimetype == "application/x-ndjson"


@pytest.mark.parametrize("url", ["/api/v1/events", "/api/v1/events?format=csv", "/api/v1/export"])
def test_gzip_when_asked(client, url):
    plain = fetch(client, url)
    zipped = fetch(client, url, headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in zipped.headers["Vary"]
    assert gzip.decompress(zipped.get_data()) == plain.get_data()


URLS = [
    "/api/v1/events",
    "/api/v1/events?format=csv",
    "/api/v1/decrees/decree-2025-spring-call-up",
    "/api/v1/articles/after-russia-kill-or-be-killed/facts",
    "/api/v1/actors/vladimir-putin",
    "/api/v1/search?q=putin",
    "/api/v1/timeline",
    "/api/v1/events/facets",
    "/api/v1/export",
]


@pytest.mark.parametrize("url", URLS)
def test_conditional_get_answers_304(client, url):
    first = fetch(client, url)
    assert first.status_code == 200
    etag = first.headers["ETag"]
    assert etag.startswith('"') and not etag.startswith("W/")  # strong
    assert "max-age" in first.headers["Cache-Control"]
    again = fetch(client, url, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.headers["ETag"] == etag and not again.get_data()
    # The compressed representation has its own tag, which revalidates as well.
    zipped = fetch(client, url, headers={"Accept-Encoding": "gzip"})
    if zipped.headers.get("Content-Encoding") == "gzip":
        assert zipped.headers["ETag"] != etag
        revalidated = fetch(
            client,
            url,
            headers={"Accept-Encoding": "gzip", "If-None-Match": zipped.headers["ETag"]},
        )
        assert revalidated.status_code == 304


def test_representations_have_different_etags(client):
    tags = {
        fetch(client, url).headers["ETag"]
        for url in ("/api/v1/events", "/api/v1/events?format=csv", "/api/v1/events?page_size=2")
    }
    tags.add(fetch(client, "/api/v1/events", headers={"Accept": "text/csv"}).headers["ETag"])
    assert len(tags) == 4


def test_etag_changes_when_the_data_does(backend, new_app, data_copy):
    """A list's ETag follows the data; a record's follows that record alone."""
    from .conftest import load

    app, _ = new_app(backend)
    assert load(app, data_copy).exit_code == 0
    client = app.test_client()
    listed, record = "/api/v1/events", "/api/v1/decrees/decree-2025-spring-call-up"
    tags = {url: fetch(client, url).headers["ETag"] for url in (listed, record)}
    assert load(app, data_copy).exit_code == 0  # unchanged data: same tags
    for url, tag in tags.items():
        assert fetch(client, url, headers={"If-None-Match": tag}).status_code == 304
    text = (data_copy / "events.yaml").read_text(encoding="utf-8")
    (data_copy / "events.yaml").write_text(
        text.replace("title: ", "title: Edited ", 1), encoding="utf-8"
    )
    assert load(app, data_copy).exit_code == 0
    assert fetch(client, listed, headers={"If-None-Match": tags[listed]}).status_code == 200
    # An event changed, not the decree: the decree's tag still holds.
    assert fetch(client, record, headers={"If-None-Match": tags[record]}).status_code == 304


def test_matching_conditional_get_reads_no_records(loaded_app, client):
    from sqlalchemy import event

    url = "/api/v1/events?sort=-date&page_size=20"
    etag = fetch(client, url).headers["ETag"]
    engine = loaded_app.extensions["db"].kw["bind"]
    statements = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        assert fetch(client, url, headers={"If-None-Match": etag}).status_code == 304
    finally:
        event.remove(engine, "before_cursor_execute", record)
    queries = [s for s in statements if s != "BEGIN"]  # SQLite's snapshot (api/db.py)
    assert len(queries) == 1 and "dataset_state" in queries[0]


@pytest.mark.parametrize("url", ["/api/v1/export", "/api/v1/events?format=csv"])
def test_streams_give_their_database_connection_back(loaded_app, client, url):
    pool = loaded_app.extensions["db"].kw["bind"].pool
    for _ in range(3):
        assert fetch(client, url).status_code == 200
    assert pool.checkedout() == 0

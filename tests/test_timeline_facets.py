"""GET /api/v1/timeline (and /undated) and the /facets of each collection."""

from collections import Counter

import pytest

from schemas.common import date_bounds

from .conftest import DATA_DIR
from .helpers import shipped_records, walk

SHIPPED = shipped_records(DATA_DIR)
ALL = [dict(r, collection=c) for c, records in SHIPPED.items() for r in records]
TYPES = {"decrees": "decree", "campaigns": "campaign", "penalties": "penalty", "events": "event"}


def start(record):
    date = record["date"]
    if not date or date["value"] is None or date["value"].startswith("--"):
        return None
    return date_bounds(date["value"], date["precision"])[0]


def test_timeline_lists_every_dated_record_in_order(client):
    timeline = walk(client, "/api/v1/timeline?page_size=9")
    expected = sorted((start(r).isoformat(), r["id"]) for r in ALL if start(r))
    assert [(e["earliest"], e["id"]) for e in timeline] == expected
    for entry in timeline:
        assert entry["latest"] >= entry["earliest"]
        assert client.get(entry["url"]).json["date"] == entry["date"]


def test_undated_records_are_listed_apart_not_guessed(client):
    undated = walk(client, "/api/v1/timeline/undated")
    assert sorted(e["id"] for e in undated) == sorted(r["id"] for r in ALL if not start(r))
    assert all(e["earliest"] is None for e in undated)
    dated = {e["id"] for e in walk(client, "/api/v1/timeline")}
    assert dated.isdisjoint(e["id"] for e in undated)


def test_timeline_filters(client):
    only = walk(client, "/api/v1/timeline?type=decree,penalty&date_from=2022-09&date_to=2022-09")
    assert only and {e["type"] for e in only} <= {"decree", "penalty"}
    assert all(e["earliest"] <= "2022-09-30" and e["latest"] >= "2022-09-01" for e in only)
    article = "after-russia-kill-or-be-killed"
    cited = walk(client, f"/api/v1/timeline?article={article}")
    assert {e["id"] for e in cited} == {
        r["id"] for r in ALL if start(r) and article in {s["article_id"] for s in r["sources"]}
    }
    putin = walk(client, "/api/v1/timeline?actor=vladimir-putin")
    assert putin and all(
        "vladimir-putin" in {a["id"] for a in client.get(e["url"]).json["actors"]} for e in putin
    )
    searched = walk(client, "/api/v1/timeline?q=mobilisation&type=decree,campaign,event")
    assert searched and {e["type"] for e in searched} <= {"decree", "campaign", "event"}
    response = client.get("/api/v1/timeline?type=tweet")
    assert response.status_code == 422 and "type" in response.json["errors"]["query"]


@pytest.mark.parametrize("collection", list(SHIPPED))
def test_facets_count_the_filtered_records(client, collection):
    records = SHIPPED[collection]
    facets = client.get(f"/api/v1/{collection}/facets?facets=kind,year,article,actor,type").json
    assert {f["value"]: f["count"] for f in facets["kind"]} == Counter(r["kind"] for r in records)
    assert {f["value"]: f["count"] for f in facets["type"]} == {TYPES[collection]: len(records)}
    years = Counter(start(r).year if start(r) else None for r in records)
    assert {f["value"]: f["count"] for f in facets["year"]} == years
    articles = Counter(a for r in records for a in {s["article_id"] for s in r["sources"]})
    assert {f["value"]: f["count"] for f in facets["article"]} == articles
    actors = Counter(a for r in records for a in {x["id"] for x in r["actors"]})
    assert {f["value"]: f["count"] for f in facets["actor"]} == actors
    counts = [f["count"] for f in facets["kind"]]
    assert counts == sorted(counts, reverse=True)


def test_facets_follow_the_filters(client):
    facets = client.get("/api/v1/events/facets?facets=kind&actor=dagestan").json
    served = walk(client, "/api/v1/events?actor=dagestan")
    assert {f["value"]: f["count"] for f in facets["kind"]} == Counter(r["kind"] for r in served)
    assert set(facets) == {"kind"}
    response = client.get("/api/v1/events/facets?facets=colour")
    assert response.status_code == 422 and "facets" in response.json["errors"]["query"]

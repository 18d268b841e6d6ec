import yaml

from schemas.facts import COLLECTIONS

from .conftest import DATA_DIR, load
from .helpers import (
    assert_facts_go_with_their_record,
    assert_linked_pages,
    assert_pages_follow_writes,
    assert_paging_refused,
    create_token,
    ids_where,
    linked_records,
    links,
    shipped_records,
    walk,
)

ACTORS = yaml.safe_load((DATA_DIR / "actors.yaml").read_text(encoding="utf-8"))
RECORDS = shipped_records(DATA_DIR)
UKRAINE = "ukraine"  # in records of several types: a few pages of three


def test_lists_every_actor(client):
    served = walk(client, "/api/v1/actors")
    assert [a["id"] for a in served] == sorted(a["id"] for a in ACTORS)
    for kind in {a["kind"] for a in ACTORS}:
        of_kind = walk(client, f"/api/v1/actors?kind={kind}")
        assert [a["id"] for a in of_kind] == sorted(a["id"] for a in ACTORS if a["kind"] == kind)


def test_actor_facts_lists_the_records_that_involve_it(client):
    for actor in ACTORS:
        response = client.get(f"/api/v1/actors/{actor['id']}")
        assert response.status_code == 200
        detail = response.json
        assert detail["variants"] == actor["variants"]
        served = {
            (record["url"], ref["role"])
            for record in linked_records(client, f"{detail['facts_url']}?page_size=5")
            for ref in record["actors"]
            if ref["id"] == actor["id"]
        }
        expected = {
            (f"/api/v1/{collection}/{record['id']}", ref["role"])
            for collection, records in RECORDS.items()
            for record in records
            for ref in record["actors"]
            if ref["id"] == actor["id"]
        }
        assert served == expected and served, actor["id"]


def test_actor_refs_in_records_resolve(client):
    for record in walk(client, "/api/v1/events"):
        for ref in record["actors"]:
            assert client.get(ref["url"]).json["name"] == ref["name"]


def test_unknown_actor_is_a_json_404(client):
    response = client.get("/api/v1/actors/nobody")
    assert response.status_code == 404 and response.is_json


def test_actor_facts_pages_hold_every_record_once_as_its_detail_shows_it(client):
    records = assert_linked_pages(client, f"/api/v1/actors/{UKRAINE}/facts", page_size=3)
    involved = ids_where(RECORDS, lambda record: UKRAINE in {a["id"] for a in record["actors"]})
    assert [r["id"] for r in records] == involved and len(records) > 3 * 2
    # The same records as each collection filtered on the actor, in the same order.
    for fact_type, collection in COLLECTIONS.items():
        filtered = walk(client, f"/api/v1/{collection}?actor={UKRAINE}")
        assert [r for r in records if r["type"] == fact_type] == filtered, collection


def test_actor_facts_refuse_bad_paging_with_a_422(client):
    assert_paging_refused(client, f"/api/v1/actors/{UKRAINE}/facts", "actor_facts")


def test_actor_facts_answer_304_to_a_current_tag(client):
    url = f"/api/v1/actors/{UKRAINE}/facts?page_size=2"
    first = client.get(url)
    again = client.get(url, headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and not again.get_data()
    following = client.get(links(first)["next"], headers={"If-None-Match": first.headers["ETag"]})
    assert following.status_code == 200 and following.json != first.json


def test_actor_facts_pages_follow_writes(backend, new_app):
    app, _ = new_app(backend)
    assert load(app).exit_code == 0
    client, auth = app.test_client(), {"Authorization": f"Bearer {create_token(app)}"}
    passage = "a prominent actor known for his role in the television series"
    event = {
        "kind": "report",
        "title": "A test event in Ukraine",
        "summary": "What the cited passage states.",
        "date": None,
        "sources": [{"article_id": "kaluzhnii-reports-for-service", "quote": passage}],
        "actors": [{"id": UKRAINE, "role": "place"}, {"id": UKRAINE, "role": "subject"}],
    }
    assert_pages_follow_writes(client, auth, f"/api/v1/actors/{UKRAINE}/facts", event)
    actor = {"name": "Nobody Yet", "kind": "person"}
    assert_facts_go_with_their_record(client, auth, "actors", actor)

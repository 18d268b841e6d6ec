import yaml

from .conftest import DATA_DIR
from .helpers import shipped_records, walk

ACTORS = yaml.safe_load((DATA_DIR / "actors.yaml").read_text(encoding="utf-8"))
RECORDS = shipped_records(DATA_DIR)


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
        facts = client.get(detail["facts_url"]).json
        served = {
            (record["url"], ref["role"])
            for records in facts.values()
            for record in records
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

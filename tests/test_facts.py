import pytest

from .conftest import DATA_DIR
from .helpers import links, shipped_records, walk

SHIPPED = shipped_records(DATA_DIR)
COLLECTIONS = list(SHIPPED)


@pytest.mark.parametrize("collection", COLLECTIONS)
def test_list_serves_every_shipped_record(client, collection):
    served = walk(client, f"/api/v1/{collection}")
    assert [r["id"] for r in served] == sorted(r["id"] for r in SHIPPED[collection])
    assert SHIPPED[collection], f"no {collection} shipped"


@pytest.mark.parametrize("collection", COLLECTIONS)
def test_detail_matches_the_curated_record(client, collection):
    for shipped in SHIPPED[collection]:
        response = client.get(f"/api/v1/{collection}/{shipped['id']}")
        assert response.status_code == 200
        record = response.json
        assert record["url"] == f"/api/v1/{collection}/{shipped['id']}"
        assert record["disputed"] == bool(shipped["contradicts"])
        for key, value in shipped.items():
            if key == "actors":
                assert [{"id": a["id"], "role": a["role"]} for a in record[key]] == value
            elif key == "sources":
                assert [{k: s[k] for k in value[0]} for s in record[key]] == value
            elif key == "contradicts":
                assert record[key] == sorted(value)
            else:
                assert record[key] == value, key
        assert record["created_at"] and record["updated_at"]


@pytest.mark.parametrize("collection", COLLECTIONS)
def test_unknown_id_is_a_json_404(client, collection):
    response = client.get(f"/api/v1/{collection}/no-such-record")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert response.json["status"] == 404 and response.json["title"] == "Not Found"
    assert "no-such-record" in response.json["detail"]


def test_a_record_is_not_served_under_another_type(client):
    decree = SHIPPED["decrees"][0]["id"]
    assert client.get(f"/api/v1/events/{decree}").status_code == 404


@pytest.mark.parametrize("collection", COLLECTIONS)
def test_filters_by_kind(client, collection):
    for kind in {r["kind"] for r in SHIPPED[collection]}:
        served = walk(client, f"/api/v1/{collection}?kind={kind}")
        expected = sorted(r["id"] for r in SHIPPED[collection] if r["kind"] == kind)
        assert [r["id"] for r in served] == expected


@pytest.mark.parametrize("collection", COLLECTIONS)
def test_filters_by_actor(client, collection):
    for actor in {a["id"] for r in SHIPPED[collection] for a in r["actors"]}:
        served = walk(client, f"/api/v1/{collection}?actor={actor}")
        expected = sorted(
            r["id"] for r in SHIPPED[collection] if actor in {a["id"] for a in r["actors"]}
        )
        assert [r["id"] for r in served] == expected


@pytest.mark.parametrize("collection", COLLECTIONS)
def test_filters_disputed_records(client, collection):
    disputed = walk(client, f"/api/v1/{collection}?disputed=true")
    undisputed = walk(client, f"/api/v1/{collection}?disputed=false")
    assert [r["id"] for r in disputed] == sorted(
        r["id"] for r in SHIPPED[collection] if r["contradicts"]
    )
    assert all(not r["contradicts"] for r in undisputed)
    assert len(disputed) + len(undisputed) == len(SHIPPED[collection])


def test_some_records_are_disputed_and_link_each_other(client):
    disputed = [r for c in COLLECTIONS for r in walk(client, f"/api/v1/{c}?disputed=true")]
    assert disputed, "the dataset records no contradiction"
    by_id = {r["id"]: r for c in COLLECTIONS for r in walk(client, f"/api/v1/{c}")}
    for record in disputed:
        for other in record["contradicts"]:
            assert record["id"] in by_id[other]["contradicts"]


def test_cursor_pages_are_disjoint_and_complete(client):
    collection = max(COLLECTIONS, key=lambda c: len(SHIPPED[c]))
    first = client.get(f"/api/v1/{collection}?page_size=2")
    assert first.headers["X-Total-Count"] == str(len(SHIPPED[collection]))
    ids = [r["id"] for r in walk(client, f"/api/v1/{collection}?page_size=2")]
    assert ids == sorted(r["id"] for r in SHIPPED[collection])
    assert len(ids) == len(set(ids))
    # The first link drops the cursor but keeps the other arguments.
    second = client.get(links(first)["next"])
    assert links(second)["first"].endswith(f"/api/v1/{collection}?page_size=2")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("page_size=0", "page_size"),
        ("page_size=501", "page_size"),
        ("page_size=ten", "page_size"),
        ("cursor=not-a-cursor", "cursor"),
        ("kind=no-such-kind", "kind"),
        ("disputed=maybe", "disputed"),
        ("article=Not%20A%20Slug", "article"),
        ("colour=red", "colour"),
        ("kind=law&kind=decree", "kind"),
    ],
)
def test_bad_arguments_are_refused_naming_the_parameter(client, query, field):
    response = client.get(f"/api/v1/decrees?{query}")
    assert response.status_code in (400, 422)
    assert response.is_json
    assert field in response.json["errors"]["query"]
    assert response.json["detail"]


def test_etag_answers_304_when_unchanged(client):
    collection = COLLECTIONS[0]
    first = client.get(f"/api/v1/{collection}")
    etag = first.headers["ETag"]
    again = client.get(f"/api/v1/{collection}", headers={"If-None-Match": etag})
    assert again.status_code == 304
    other_page = client.get(f"/api/v1/{collection}?page_size=1", headers={"If-None-Match": etag})
    assert other_page.status_code == 200

import hashlib

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
from .test_writes import ARTICLE as NEW_ARTICLE

SHIPPED = yaml.safe_load((DATA_DIR / "articles.yaml").read_text(encoding="utf-8"))
RECORDS = shipped_records(DATA_DIR)
# Cited by records of three types, two of which cite it twice: a few pages of four.
MOST_CITED = "after-russia-kill-or-be-killed"
KALUZHNII = "kaluzhnii-reports-for-service"


def test_lists_every_shipped_article_without_text(client):
    articles = walk(client, "/api/v1/articles")
    assert [a["id"] for a in articles] == sorted(a["id"] for a in SHIPPED)
    assert all("text" not in article for article in articles)


def test_detail_serves_the_text_byte_for_byte_with_its_hash(client):
    for shipped in SHIPPED:
        response = client.get(f"/api/v1/articles/{shipped['id']}")
        assert response.status_code == 200
        article = response.json
        raw = (DATA_DIR / shipped["file"]).read_bytes()
        assert article["text"] == raw.decode("utf-8")
        assert article["sha256"] == hashlib.sha256(raw).hexdigest()
        assert article["word_count"] == len(raw.decode("utf-8").split())
        assert article["published"] == shipped["published"]
        assert article["url"] == f"/api/v1/articles/{shipped['id']}"


def test_publication_date_is_only_as_precise_as_the_text(client):
    article = client.get("/api/v1/articles/after-russia-kill-or-be-killed").json
    assert article["published"]["value"] == "2023-03-12"
    assert article["published"]["precision"] == "day"
    # This article states no date at all: nothing is made up.
    undated = client.get("/api/v1/articles/putin-decree-160000-digital-notification").json
    assert undated["published"]["value"] is None
    assert undated["published"]["precision"] == "unknown"


def test_article_facts_lists_every_record_citing_it(client):
    for shipped in SHIPPED:
        url = f"/api/v1/articles/{shipped['id']}/facts"
        assert set(client.get(url).json) == {"decrees", "campaigns", "penalties", "events"}
        records = linked_records(client, f"{url}?page_size=5")
        assert records, f"{shipped['id']} is cited by no record"
        for record in records:
            assert shipped["id"] in {s["article_id"] for s in record["sources"]}
        # The same records are found by filtering each collection on the article.
        for fact_type, collection in COLLECTIONS.items():
            filtered = walk(client, f"/api/v1/{collection}?article={shipped['id']}")
            assert [r["id"] for r in filtered] == [
                r["id"] for r in records if r["type"] == fact_type
            ]


def test_unknown_article_is_a_json_404(client):
    for url in ("/api/v1/articles/no-such-article", "/api/v1/articles/no-such-article/facts"):
        response = client.get(url)
        assert response.status_code == 404
        assert response.json["status"] == 404
        assert "no-such-article" in response.json["detail"]


def test_pages_of_one_cover_every_article_once(client):
    first = client.get("/api/v1/articles?page_size=2")
    assert first.headers["X-Total-Count"] == str(len(SHIPPED))
    assert len(first.json) == 2
    assert "next" in links(first) and "first" in links(first)
    ids = [a["id"] for a in walk(client, "/api/v1/articles?page_size=1")]
    assert ids == sorted(a["id"] for a in SHIPPED)


def test_article_facts_pages_hold_every_record_once_as_its_detail_shows_it(client):
    records = assert_linked_pages(client, f"/api/v1/articles/{MOST_CITED}/facts", page_size=4)
    citing = ids_where(RECORDS, lambda r: MOST_CITED in {s["article_id"] for s in r["sources"]})
    assert [r["id"] for r in records] == citing and len(records) > 4 * 2


def test_article_facts_refuse_bad_paging_with_a_422(client):
    assert_paging_refused(client, f"/api/v1/articles/{MOST_CITED}/facts", "article_facts")
    # A cursor of an actor's records, in the same order, belongs to another list.
    of_actor = links(client.get("/api/v1/actors/ukraine/facts?page_size=1"))["next"]
    cursor = of_actor.split("cursor=")[1]
    refused = client.get(f"/api/v1/articles/{MOST_CITED}/facts?cursor={cursor}")
    assert refused.status_code == 422 and list(refused.json["errors"]["query"]) == ["cursor"]


def test_article_facts_answer_304_to_a_current_tag(client):
    url = f"/api/v1/articles/{MOST_CITED}/facts?page_size=2"
    first = client.get(url)
    again = client.get(url, headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and not again.get_data()
    assert again.headers["ETag"] == first.headers["ETag"]


def test_article_facts_pages_follow_writes(backend, new_app):
    app, _ = new_app(backend)
    assert load(app).exit_code == 0
    client, auth = app.test_client(), {"Authorization": f"Bearer {create_token(app)}"}
    event = {  # cites the article twice: listed once
        "kind": "report",
        "title": "A test event citing the article twice",
        "summary": "What the cited passages state.",
        "date": None,
        "sources": [
            {"article_id": KALUZHNII, "quote": "he may be assigned to the Semensky regiment"},
            {"article_id": KALUZHNII, "quote": "mechanisms in place to enforce military service"},
        ],
    }
    assert_pages_follow_writes(client, auth, f"/api/v1/articles/{KALUZHNII}/facts", event)
    assert_facts_go_with_their_record(client, auth, "articles", NEW_ARTICLE)

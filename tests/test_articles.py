import hashlib

import yaml

from .conftest import DATA_DIR
from .helpers import links, walk

SHIPPED = yaml.safe_load((DATA_DIR / "articles.yaml").read_text(encoding="utf-8"))


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
        response = client.get(f"/api/v1/articles/{shipped['id']}/facts")
        assert response.status_code == 200
        groups = response.json
        assert set(groups) == {"decrees", "campaigns", "penalties", "events"}
        records = [record for group in groups.values() for record in group]
        assert records, f"{shipped['id']} is cited by no record"
        for record in records:
            assert shipped["id"] in {s["article_id"] for s in record["sources"]}
        # The same records are found by filtering each collection on the article.
        for collection, group in groups.items():
            filtered = walk(client, f"/api/v1/{collection}?article={shipped['id']}")
            assert [r["id"] for r in filtered] == [r["id"] for r in group]


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

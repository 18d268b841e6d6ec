"""The core guarantee, checked end to end through the HTTP API: every citation is verbatim."""

from .helpers import walk

COLLECTIONS = ("decrees", "campaigns", "penalties", "events")


def test_every_citation_is_verbatim_in_its_article(client):
    texts: dict[str, str] = {}
    checked = 0
    for collection in COLLECTIONS:
        for record in walk(client, f"/api/v1/{collection}?page_size=7"):
            assert record["sources"], f"{record['id']} has no source"
            for source in record["sources"]:
                url = source["article_url"]
                assert url == f"/api/v1/articles/{source['article_id']}"
                if url not in texts:
                    response = client.get(url)
                    assert response.status_code == 200
                    texts[url] = response.json["text"]
                text = texts[url]
                assert 0 <= source["start"] < source["end"] <= len(text)
                assert text[source["start"] : source["end"]] == source["quote"], record["id"]
                checked += 1
    assert checked >= 40, f"only {checked} citations served"
    served_articles = {a["url"] for a in walk(client, "/api/v1/articles")}
    assert set(texts) == served_articles, "an article is cited by no record"


def test_every_date_and_number_text_is_inside_a_quote(client):
    """Dates and numbers are stated by the sources, not supplied by us."""

    def stated(value):
        if isinstance(value, dict):
            if "precision" in value or "qualifier" in value:
                if value.get("text"):
                    yield value["text"]
            for key, item in value.items():
                if key != "sources":
                    yield from stated(item)
        elif isinstance(value, list):
            for item in value:
                yield from stated(item)

    for collection in COLLECTIONS:
        for record in walk(client, f"/api/v1/{collection}"):
            quotes = [s["quote"] for s in record["sources"]]
            for text in stated(record):
                assert any(text in quote for quote in quotes), (record["id"], text)


def test_inferred_dates_say_why(client):
    for collection in COLLECTIONS:
        for record in walk(client, f"/api/v1/{collection}"):
            date = record["date"]
            if date and date["inferred"]:
                assert date["inference"], record["id"]
            if date and date["value"] is None:
                assert date["precision"] == "unknown"

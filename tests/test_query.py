"""Filters, sorting and cursor pagination of the fact lists."""

import datetime as dt

import pytest
import yaml

from schemas.common import date_bounds

from .conftest import DATA_DIR, load
from .helpers import links, shipped_records, walk

SHIPPED = shipped_records(DATA_DIR)
ALL = [dict(r, collection=c) for c, records in SHIPPED.items() for r in records]


def span(record):
    date = record["date"]
    if not date or date["value"] is None:
        return None, None
    return date_bounds(date["value"], date["precision"])


def ids(records):
    return [r["id"] for r in records]


@pytest.mark.parametrize(
    ("date_from", "date_to"),
    [("2022-09", "2022-12"), ("2022-09-21", "2022-09-21"), ("2024", None), (None, "2022")],
)
def test_date_range_matches_records_whose_date_may_fall_in_it(client, date_from, date_to):
    low = (
        date_bounds(date_from, {4: "year", 7: "month", 10: "day"}[len(date_from)])[0]
        if date_from
        else dt.date.min
    )
    high = (
        date_bounds(date_to, {4: "year", 7: "month", 10: "day"}[len(date_to)])[1]
        if date_to
        else dt.date.max
    )
    args = "&".join(f"{k}={v}" for k, v in (("date_from", date_from), ("date_to", date_to)) if v)
    for collection, records in SHIPPED.items():
        expected = sorted(
            r["id"] for r in records if span(r)[0] and span(r)[1] >= low and span(r)[0] <= high
        )
        assert ids(walk(client, f"/api/v1/{collection}?{args}")) == expected
    assert any(span(r)[0] for r in ALL), "the dataset has no dated record"


def test_a_date_known_to_the_year_matches_a_range_on_its_last_day(client):
    """The longest span a date may denote still overlaps a range that touches only its end."""
    by_year = [r for r in ALL if r["date"] and r["date"]["precision"] == "year"]
    assert by_year, "the dataset has no record dated to the year"
    for record in by_year:
        last_day = f"{record['date']['value']}-12-31"
        served = walk(client, f"/api/v1/{record['collection']}?date_from={last_day}")
        assert record["id"] in ids(served)
        day_after = f"{int(record['date']['value']) + 1}-01-01"
        served = walk(client, f"/api/v1/{record['collection']}?date_from={day_after}")
        assert record["id"] not in ids(served)


def test_the_widest_date_range_matches_every_dated_record_and_no_other(client):
    for collection, records in SHIPPED.items():
        dated = sorted(r["id"] for r in records if span(r)[0])
        for args in ("date_from=0001", "date_to=9999", "date_from=0001-01-01&date_to=9999-12-31"):
            assert ids(walk(client, f"/api/v1/{collection}?{args}")) == dated, args


def test_records_with_unknown_year_never_match_a_date_range(client):
    yearless = [
        r for r in ALL if r["date"] and r["date"]["value"] and r["date"]["value"].startswith("--")
    ]
    served = {
        r["id"] for c in SHIPPED for r in walk(client, f"/api/v1/{c}?date_from=1900&date_to=2100")
    }
    assert yearless and not {r["id"] for r in yearless} & served


def test_quota_range(client):
    for collection in ("decrees", "campaigns"):
        quotas = {r["id"]: r["quota"]["value"] for r in SHIPPED[collection] if r["quota"]}
        assert quotas
        threshold = sorted(quotas.values())[len(quotas) // 2]
        served = walk(client, f"/api/v1/{collection}?quota_min={threshold}")
        assert ids(served) == sorted(i for i, q in quotas.items() if q >= threshold)
        served = walk(client, f"/api/v1/{collection}?quota_max={threshold}")
        assert ids(served) == sorted(i for i, q in quotas.items() if q <= threshold)


def test_text_filter_uses_full_text_search(client):
    served = walk(client, "/api/v1/campaigns?q=gosuslugi")
    assert served
    for record in served:
        text = " ".join(
            [record["title"], record["summary"], *(s["quote"] for s in record["sources"])]
        )
        assert "gosuslugi" in text.lower()
    everything = walk(client, "/api/v1/campaigns")
    missing = [
        r for r in everything if "gosuslugi" in " ".join(s["quote"] for s in r["sources"]).lower()
    ]
    assert {r["id"] for r in missing} <= {r["id"] for r in served}


def test_filters_combine(client):
    served = walk(client, "/api/v1/events?actor=dagestan&kind=protest")
    assert ids(served) == sorted(
        r["id"]
        for r in SHIPPED["events"]
        if r["kind"] == "protest" and "dagestan" in {a["id"] for a in r["actors"]}
    )


@pytest.mark.parametrize("sort", ["id", "-id", "date", "-date", "kind,-id", "title", "-updated_at"])
def test_sorted_pages_walk_the_same_order_as_one_page(client, sort):
    whole = ids(client.get(f"/api/v1/events?sort={sort}&page_size=500").json)
    assert len(whole) == len(SHIPPED["events"])
    paged = ids(walk(client, f"/api/v1/events?sort={sort}&page_size=4"))
    assert paged == whole


def test_date_order_keeps_undated_records_last_both_ways(client):
    for sort in ("date", "-date"):
        records = client.get(f"/api/v1/events?sort={sort}&page_size=500").json
        dated = [r for r in records if span(r)[0]]
        assert records[: len(dated)] == dated, sort
        starts = [span(r)[0] for r in dated]
        assert starts == sorted(starts, reverse=sort.startswith("-"))


def test_prev_links_walk_back_to_the_first_page(client):
    url = "/api/v1/events?sort=-date&page_size=4"
    pages, response = [], client.get(url)
    while "next" in links(response):
        pages.append(ids(response.json))
        response = client.get(links(response)["next"])
    pages.append(ids(response.json))
    assert len(pages) > 2
    back = []
    while "prev" in links(response):
        response = client.get(links(response)["prev"])
        back.append(ids(response.json))
    assert back == pages[-2::-1]
    assert "prev" not in links(client.get(url))


def test_order_is_stable_under_inserts(backend, new_app, data_copy):
    app, _ = new_app(backend)
    assert load(app, data_copy).exit_code == 0
    client = app.test_client()
    first = client.get("/api/v1/events?page_size=5")
    before = ids(walk(client, "/api/v1/events?page_size=500"))
    facets = client.get("/api/v1/events/facets?facets=type").json

    events = yaml.safe_load((data_copy / "events.yaml").read_text(encoding="utf-8"))
    # A new record that sorts first; two records' citations together make it no duplicate.
    donor, other = [r for r in events if not r["contradicts"]][:2]
    newcomer = {
        **donor,
        "id": "event-aaa-inserted-first",
        "title": "An inserted record",
        "sources": donor["sources"] + other["sources"],
    }
    events.append(newcomer)
    (data_copy / "events.yaml").write_text(
        yaml.safe_dump(events, allow_unicode=True), encoding="utf-8"
    )
    assert load(app, data_copy).exit_code == 0

    rest = walk(client, links(first)["next"])
    assert ids(first.json) + ids(rest) == before  # nothing skipped, nothing repeated
    # Counts and facets follow the new data at once.
    total = int(client.get("/api/v1/events?page_size=5").headers["X-Total-Count"])
    assert total == len(before) + 1
    after = client.get("/api/v1/events/facets?facets=type").json
    assert after["type"][0]["count"] == facets["type"][0]["count"] + 1


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("sort=colour", "sort"),
        ("sort=id,-id", "sort"),
        ("date_from=2022-13", "date_from"),
        ("date_from=22-09", "date_from"),
        ("date_to=yesterday", "date_to"),
        ("date_from=2023&date_to=2022", "date_to"),
        ("quota_min=abc", "quota_min"),
        ("quota_min=200000&quota_max=100", "quota_max"),
        ("quota_min=nan", "quota_min"),
        ("format=xml", "format"),
        ("date_from=0000", "date_from"),
        ("q=", "q"),
    ],
)
def test_bad_query_arguments_are_refused_naming_the_parameter(client, query, field):
    response = client.get(f"/api/v1/decrees?{query}")
    assert response.status_code == 422, response.json
    assert field in response.json["errors"]["query"], response.json


def test_cursor_of_another_sort_is_refused(client):
    first = client.get("/api/v1/events?sort=-date&page_size=2")
    cursor = links(first)["next"].split("cursor=")[1]
    response = client.get(f"/api/v1/events?sort=id&page_size=2&cursor={cursor}")
    assert response.status_code == 422
    assert "cursor" in response.json["errors"]["query"]


def test_huge_numbers_do_not_break_the_database(client):
    response = client.get("/api/v1/campaigns?quota_min=1e308&page_size=5")
    assert response.status_code == 200
    assert response.json == []


def test_csv_pages_when_asked(client):
    whole = client.get("/api/v1/events?format=csv").get_data(as_text=True).splitlines()
    page = client.get("/api/v1/events?format=csv&page_size=3")
    lines = page.get_data(as_text=True).splitlines()
    assert lines == whole[:4]  # header and the first three records
    assert "next" in links(page) and page.headers["X-Total-Count"] == str(len(SHIPPED["events"]))
    following = client.get(links(page)["next"]).get_data(as_text=True).splitlines()
    assert following[1:] == whole[4:7]

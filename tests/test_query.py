"""Filters, sorting and cursor pagination of the fact lists."""

import base64
import datetime as dt
import itertools
import re
from urllib.parse import quote

import pytest
import yaml

from api import store
from schemas.common import date_bounds
from schemas.queries import FACETS, FACT_SORTS, encode_cursor, encode_offset

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
        for args in (
            "date_from=0001",
            "date_to=9999",
            "date_to=9999-12",
            "date_from=0001-01-01&date_to=9999-12-31",
        ):
            assert ids(walk(client, f"/api/v1/{collection}?{args}")) == dated, args


def test_the_last_day_of_the_calendar_matches_no_record(client):
    """Undated records sort on 9999-12-31, but a date range never matches them."""
    for collection in SHIPPED:
        for args in ("date_from=9999-12-31", "date_from=9999-12&date_to=9999-12"):
            assert walk(client, f"/api/v1/{collection}?{args}") == [], args


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


def test_pages_of_one_shape_each_bind_their_own_values(client):
    """A page's statement is built once per shape and reused (store._page_statement): every
    request must still be answered with its own filter values, cursor and page size."""
    events = SHIPPED["events"]
    by_kind = {r["kind"]: [] for r in events}
    for record in sorted(events, key=lambda r: r["id"]):
        by_kind[record["kind"]].append(record["id"])
    assert len(by_kind) > 2
    for kind in [*by_kind, *reversed(by_kind)]:  # each shape again, after the others
        assert ids(walk(client, f"/api/v1/events?kind={kind}&page_size=2")) == by_kind[kind]
        for size in (1, 3):
            first = client.get(f"/api/v1/events?kind={kind}&page_size={size}")
            assert ids(first.json) == by_kind[kind][:size]
            assert first.headers["X-Total-Count"] == str(len(by_kind[kind]))
            assert ("next" in links(first)) == (len(by_kind[kind]) > size)


@pytest.mark.parametrize(
    "urls",
    [
        [f"/api/v1/events?q={word}&page_size=2" for word in ("putin", "mobilisation", "moscow")],
        [f"/api/v1/campaigns?quota_max={n}&sort=-date&page_size=2" for n in (1, 10**9, 0.5)],
        [f"/api/v1/events?actor={actor}&page_size=2" for actor in ("dagestan", "vladimir-putin")],
    ],
)
def test_a_kept_page_statement_answers_as_a_new_one_would(client, urls):
    """Lists of one shape share a built statement (store._page_statement): each walk answers
    what it answers when it is the first of its shape."""
    kept = [walk(client, url) for url in urls]
    assert len({str(records) for records in kept}) > 1  # the values do change the answer
    for url, records in zip(urls, kept, strict=True):
        store._page_statements.clear()
        assert walk(client, url) == records, url


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
    "query",
    [
        "date_from=2023&date_to=2022",
        "quota_min=200000&quota_max=100",
        "date_from=2022-10&date_to=2022-09-30",
    ],
)
def test_an_inverted_range_is_valid_and_matches_nothing(client, query):
    response = client.get(f"/api/v1/campaigns?{query}")
    assert response.status_code == 200
    assert response.json == [] and response.headers["X-Total-Count"] == "0"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("sort=colour", "sort"),
        ("sort=id,-id", "sort"),
        ("date_from=2022-13", "date_from"),
        ("date_from=22-09", "date_from"),
        ("date_to=yesterday", "date_to"),
        ("quota_min=abc", "quota_min"),
        ("quota_min=nan", "quota_min"),
        ("format=xml", "format"),
        ("date_from=0000", "date_from"),
        ("date_to=2023-02-29", "date_to"),
        ("date_to=2022-04-31", "date_to"),
        ("q=", "q"),
        ("q=%2A%22%3F", "q"),
        ("disputed=yes", "disputed"),
        ("sort=id,%20-date", "sort"),
    ],
)
def test_bad_query_arguments_are_refused_naming_the_parameter(client, query, field):
    response = client.get(f"/api/v1/decrees?{query}")
    assert response.status_code == 422, response.json
    assert field in response.json["errors"]["query"], response.json


@pytest.mark.parametrize(
    ("field", "value"),
    [
        *[("page_size", text) for text in ("٥", "+5", " 5", "5 ", "1_0", "05", "5.0", "0x5")],
        *[("quota_min", text) for text in ("١٠", "+10", " 10", "1_000", "inf", "-inf", "nan")],
        *[("quota_min", text) for text in ("1e999", "1e308", "1000000001", "-1", ".5", "5.")],
        *[("prison_years_max", text) for text in ("1001", "Infinity", "10\n")],
        *[("date_from", text) for text in ("٢٠٢٢", "２０２２", " 2022", "2022 ", "2022\n")],
        *[("date_to", text) for text in ("+2022", "2022-٠٩", "2022-9", "02022")],
    ],
)
def test_numbers_and_dates_are_ascii_as_json_and_iso_8601_write_them(client, field, value):
    collection = "penalties" if field.startswith("prison") else "campaigns"
    response = client.get(f"/api/v1/{collection}", query_string={field: value})
    assert response.status_code == 422, (field, value, response.json)
    assert list(response.json["errors"]["query"]) == [field]


def test_numbers_may_have_a_fraction_and_an_exponent(client):
    by_integer = client.get("/api/v1/campaigns?quota_min=100000&quota_max=1000000000").json
    assert by_integer
    for forms in ("quota_min=1e5&quota_max=1E9", "quota_min=100000.0&quota_max=1e%2B9"):
        assert client.get(f"/api/v1/campaigns?{forms}").json == by_integer, forms
    assert client.get("/api/v1/campaigns?quota_min=1000000000").json == []


def ecma(pattern: str) -> re.Pattern:
    """A documented pattern as ECMA-262 reads it: `$` is the end (Python's also takes a \\n)."""
    return re.compile(pattern.replace("$", r"\Z"))


def query_patterns(client, path: str) -> dict[str, re.Pattern]:
    parameters = client.get("/api/v1/openapi.json").json["paths"][path]["get"]["parameters"]
    return {
        p["name"]: ecma(p["schema"]["pattern"])
        for p in parameters
        if "pattern" in p.get("schema", {})
    }


def lists_of(names: list[str], longest: int = 3) -> list[str]:
    return [",".join(c) for n in range(1, longest + 1) for c in itertools.product(names, repeat=n)]


def test_documented_patterns_are_what_the_server_accepts(client):
    """A value that matches its parameter's pattern is accepted, and only such a value."""
    oddities = ["", "x", " id", "kind ", "ID", "--id", "idd", "id\n"]
    sorts = lists_of([*FACT_SORTS, *(f"-{name}" for name in FACT_SORTS), *oddities], 2)
    sorts += lists_of(["id", "-id", "date", "kind"])  # a name repeated further on
    dates = [
        f"{year}{rest}"
        for year in ("0000", "0001", "0004", "0100", "0400", "1900", "2000", "2023", "2024")
        for rest in ("", "-00", "-02", "-13", "-02-28", "-02-29", "-02-30", "-04-30", "-04-31")
    ] + ["9999-12-31", "2022-09-00", "2022-09-1", "2022-9", "20222", "٢٠٢٢"]
    cases = {
        "/api/v1/events": {"sort": sorts, "date_from": dates, "date_to": dates},
        "/api/v1/events/facets": {"facets": lists_of([*FACETS, *oddities[:3]], 2)},
        "/api/v1/timeline": {"type": lists_of(["decree", "event", "article", *oddities[:3]])},
        "/api/v1/search": {"type": lists_of(["decree", "article", "tweet", *oddities[:3]])},
    }
    for path, values in cases.items():
        patterns = query_patterns(client, path)
        for name, texts in values.items():
            for text in texts:
                # An unknown parameter makes each request a 422 that reads no record; the
                # value is accepted when its parameter is not among the errors.
                errors = client.get(path, query_string={name: text, "x": ""}).json["errors"]
                accepted = name not in errors["query"]
                assert accepted == bool(patterns[name].search(text)), (path, name, text)


def test_every_letter_and_digit_satisfies_the_q_pattern(client):
    """q's pattern cannot list Unicode's letters: it must at least admit every one of them."""
    pattern = query_patterns(client, "/api/v1/search")["q"]
    letters = [chr(c) for c in range(0x10000) if chr(c).isalnum()]
    assert not [c for c in letters if not pattern.search(c)]


def next_cursor(client, url: str) -> str:
    return links(client.get(url))["next"].split("cursor=")[1]


def with_cursor(url: str, cursor: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}cursor={quote(cursor)}"


def assert_cursor_refused(client, url: str, cursor: str) -> None:
    response = client.get(with_cursor(url, cursor))
    assert response.status_code == 422, (url, cursor, response.json)
    assert list(response.json["errors"]["query"]) == ["cursor"], response.json


def test_cursor_of_another_sort_is_refused(client):
    by_date = next_cursor(client, "/api/v1/events?sort=-date&page_size=2")
    assert_cursor_refused(client, "/api/v1/events?sort=id&page_size=2", by_date)
    by_id = next_cursor(client, "/api/v1/events?sort=id&page_size=2")
    assert_cursor_refused(client, "/api/v1/events?sort=-date&page_size=2", by_id)


ACTOR_FACTS = "/api/v1/actors/vladimir-putin/facts"
ARTICLE_FACTS = "/api/v1/articles/after-russia-kill-or-be-killed/facts"


def test_cursor_of_another_list_is_refused(client):
    """Two lists in the same order have cursors of the same shape: each takes only its own."""
    cursors = {
        "/api/v1/decrees": next_cursor(client, "/api/v1/decrees?page_size=1"),
        "/api/v1/events": next_cursor(client, "/api/v1/events?page_size=1"),
        "/api/v1/timeline": next_cursor(client, "/api/v1/timeline?page_size=1"),
        "/api/v1/events?sort=date": next_cursor(client, "/api/v1/events?sort=date&page_size=1"),
        "/api/v1/timeline/undated": next_cursor(client, "/api/v1/timeline/undated?page_size=1"),
        "/api/v1/search?q=putin": next_cursor(client, "/api/v1/search?q=putin&page_size=1"),
        ACTOR_FACTS: next_cursor(client, f"{ACTOR_FACTS}?page_size=1"),
        ARTICLE_FACTS: next_cursor(client, f"{ARTICLE_FACTS}?page_size=1"),
    }
    for url, own in cursors.items():
        response = client.get(with_cursor(url, own))
        assert response.status_code == 200 and response.json, url
        for other_url, other in cursors.items():
            if other_url != url:
                assert_cursor_refused(client, url, other)


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode("utf-8", "surrogatepass")).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        _b64("[" * 3000),  # deeper than the JSON decoder recurses
        _b64("[" * 1500 + "]" * 1500),
        _b64('{"l":"events","s":"id","k":["event-a\\u0000b"],"b":false}'),  # NUL
        _b64('{"l":"events","s":"id","k":["event-a\\u0007b"],"b":false}'),  # bell
        _b64('{"l":"events","s":"id","k":["event-a\\u009bb"],"b":false}'),  # C1 control
        _b64('{"l":"events","s":"id","k":["event-a\\ud800b"],"b":false}'),  # lone surrogate
        _b64('{"l":"events","s":"id","k":[1],"b":false}'),
        _b64('{"l":"events","s":"id","k":["event-a"],"b":0}'),
        _b64('{"s":"id","k":["event-a"],"b":false}'),  # no list: issued before lists were named
        _b64('["events","id",["event-a"],false]'),
        encode_cursor(["event-a"], False, "id", "events") + "=",  # padded
        encode_cursor(["event-a"], False, "id", "events") + "!",  # not base64url
        encode_cursor(["event-a", "x"], False, "id", "events"),  # one key too many
        encode_cursor(["event-a"], False, "id", "Events"),
        encode_offset(3),
    ],
)
def test_forged_cursors_are_refused(client, cursor):
    assert_cursor_refused(client, "/api/v1/events?sort=id", cursor)


def test_a_cursor_whose_key_is_not_of_its_sort_field_is_refused(client):
    cursor = encode_cursor(["not-a-date", "event-a"], False, "date", "events")
    assert_cursor_refused(client, "/api/v1/events?sort=date", cursor)


def test_csv_pages_when_asked(client):
    whole = client.get("/api/v1/events?format=csv").get_data(as_text=True).splitlines()
    page = client.get("/api/v1/events?format=csv&page_size=3")
    lines = page.get_data(as_text=True).splitlines()
    assert lines == whole[:4]  # header and the first three records
    assert "next" in links(page) and page.headers["X-Total-Count"] == str(len(SHIPPED["events"]))
    following = client.get(links(page)["next"]).get_data(as_text=True).splitlines()
    assert following[1:] == whole[4:7]

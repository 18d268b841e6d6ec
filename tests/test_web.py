"""Web conventions: CORS, Vary, weak ETags, security headers, safe links, OPTIONS."""

import base64
import hashlib
import re

import pytest

from api import create_app

from .conftest import load
from .helpers import edit, links, unreferenced_event

ORIGIN = "https://newsroom.example"


def test_reads_allow_any_origin_and_expose_the_paging_headers(client):
    response = client.get("/api/v1/events?page_size=2", headers={"Origin": ORIGIN})
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    exposed = {h.strip() for h in response.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"Link", "X-Total-Count", "ETag", "X-Request-Id"} <= exposed


def test_preflight_allows_the_methods_and_headers_of_writes(client):
    response = client.options(
        "/api/v1/events",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "Authorization, If-Match, Content-Type",
        },
    )
    assert response.status_code == 204
    assert "PATCH" in response.headers["Access-Control-Allow-Methods"]
    allowed = response.headers["Access-Control-Allow-Headers"].lower()
    assert {"authorization", "if-match", "content-type"} <= {h.strip() for h in allowed.split(",")}
    assert int(response.headers["Access-Control-Max-Age"]) > 0


def test_allowed_origins_are_configurable(tmp_path):
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite3",
            "CORS_ORIGINS": [ORIGIN],
        }
    )
    client = app.test_client()
    ok = client.get("/healthz", headers={"Origin": ORIGIN})
    other = client.get("/healthz", headers={"Origin": "https://elsewhere.example"})
    assert ok.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Access-Control-Allow-Origin" not in other.headers


def test_plain_options_is_a_204_with_allow_and_no_body(client):
    response = client.options("/api/v1/decrees")
    assert response.status_code == 204
    assert response.data == b""
    assert {"GET", "HEAD", "OPTIONS"} <= {m.strip() for m in response.headers["Allow"].split(",")}


@pytest.mark.parametrize(
    "url", ["/api/v1/events?page_size=2", "/api/v1/events/event-anti-war-protests", "/healthz"]
)
def test_responses_vary_by_accept_and_encoding(client, url):
    vary = {v.strip() for v in client.get(url).headers["Vary"].split(",")}
    assert {"Accept", "Accept-Encoding"} <= vary


def test_csv_names_its_charset_once(client):
    response = client.get("/api/v1/events?page_size=2&format=csv")
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"


@pytest.mark.parametrize("form", ['W/"{tag}"', '"{tag}:gzip"', 'W/"{tag}:gzip"', '"x", W/"{tag}"'])
def test_if_none_match_compares_weakly(client, form):
    url = "/api/v1/events?page_size=2"
    tag = client.get(url).headers["ETag"].strip('"')
    response = client.get(url, headers={"If-None-Match": form.format(tag=tag)})
    assert response.status_code == 304


def test_api_responses_carry_security_headers(client):
    response = client.get("/api/v1/events?page_size=1")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_the_docs_page_allows_its_own_assets_and_its_one_inline_script(client):
    response = client.get("/api/v1/docs")
    policy = response.headers["Content-Security-Policy"]
    inline = re.search(rb"<script>(.*?)</script>", response.data, re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(inline).digest()).decode()
    assert f"script-src 'self' 'sha256-{digest}'" in policy
    assert "unsafe-eval" not in policy and "http" not in policy


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000"])
def test_links_never_carry_the_clients_host(client, host):
    headers = {"Host": host, "X-Forwarded-Host": host, "X-Forwarded-Proto": "https"}
    response = client.get("/api/v1/events?page_size=2", headers=headers)
    assert "evil" not in response.headers["Link"]
    assert links(response)["next"].startswith("/api/v1/events?")


def test_links_use_the_public_base_url_when_configured(new_app):
    app, url = new_app("sqlite")
    assert load(app).exit_code == 0
    public = create_app(
        {"TESTING": True, "DATABASE_URL": url, "PUBLIC_BASE_URL": "https://facts.example/"}
    )
    response = public.test_client().get("/api/v1/events?page_size=2", headers={"Host": "evil"})
    assert links(response)["next"].startswith("https://facts.example/api/v1/events?")


def test_counts_are_not_shared_between_databases(new_app, data_copy):
    dropped = unreferenced_event(data_copy)
    edit(
        data_copy / "events.yaml",
        lambda events: events.remove(next(e for e in events if e["id"] == dropped)),
    )  # one event fewer
    full, _ = new_app("sqlite")
    fewer, _ = new_app("sqlite", data_copy)
    assert load(full).exit_code == 0 and load(fewer).exit_code == 0
    counts = [
        int(app.test_client().get("/api/v1/events?page_size=1").headers["X-Total-Count"])
        for app in (full, fewer, full, fewer)
    ]
    assert counts[0] == counts[2] == counts[1] + 1 == counts[3] + 1

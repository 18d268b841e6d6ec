"""Authenticated writes, through the HTTP API: tokens, citations found by quote, ids, the rules
of `data check`, ETags and If-Match, bodies the API refuses, and what the spec says of it all.

Every test gets a new database per backend, loaded with the shipped data/, and two tokens.
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from api.dataset import refers_to

from .conftest import load
from .helpers import create_token, stale_facets, stale_forms

API = "/api/v1"
JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
PROBLEM = "application/problem+json"
WRITE_METHODS = ("post", "put", "patch", "delete")

# Shipped articles, and passages of them that no shipped record cites exactly.
KALUZHNII = "kaluzhnii-reports-for-service"
DECREE_160000 = "putin-decree-160000-digital-notification"
VIDEOS = "news1-kremlin-recruitment-videos"
REPORTED = "On May 27, Kaluzhnii reported for military service"
SEMENSKY = "he may be assigned to the Semensky regiment"
ELITE = "expressed a desire to join the elite units of the Russian armed forces"
CASUALTIES = "placed Russian military casualties at over 768,000"
VIDEO_14TH = (
    "In the video posted on the 14th, a man who was out with his friends chooses to enlist."
)
# The only passage that decree-conscription-age-limit-law cites; no other record cites it.
AGE_LIMIT_DECREE = "decree-conscription-age-limit-law"
AGE_LIMIT_QUOTE = (
    "The latest conscription effort targets men aged 18 to 30, following last year’s "
    "controversial law that raised the upper limit from 27 to 30."
)


ARTICLE = {
    "title": "A test article",
    "language": "en",
    "published": {
        "text": None,
        "value": None,
        "precision": "unknown",
        "inferred": False,
        "inference": None,
    },
    "text": "Nothing cites this text.",
}


@dataclass
class Site:
    """A loaded app, its test client, and a curator's and an admin's token."""

    app: Any
    client: Any
    curator: str
    admin: str

    def write(
        self,
        method: str,
        url: str,
        body: Any = None,
        *,
        token: str | None = "curator",
        etag: str | None = None,
        content_type: str | None = None,
        data: bytes | str | None = None,
        **headers: str,
    ):
        """A write with a token ("curator", "admin", another token, or None for none)."""
        headers = {key.replace("_", "-"): value for key, value in headers.items()}
        if token is not None:
            token = {"curator": self.curator, "admin": self.admin}.get(token, token)
            headers["Authorization"] = f"Bearer {token}"
        if etag is not None:
            headers["If-Match"] = etag
        if body is not None:
            data = json.dumps(body)
        if data is not None and content_type is None:
            content_type = MERGE_PATCH if method == "patch" else JSON
        return getattr(self.client, method)(
            url, data=data, content_type=content_type, headers=headers
        )

    def post(self, collection: str, body, **kwargs):
        return self.write("post", f"{API}/{collection}", body, **kwargs)

    def created(self, collection: str, body, **kwargs) -> dict:
        """POST, which must succeed: the new record."""
        response = self.post(collection, body, **kwargs)
        assert response.status_code == 201, response.json
        return response.json

    def etag(self, url: str) -> str:
        response = self.client.get(url)
        assert response.status_code == 200, response.json
        return response.headers["ETag"]

    def text(self, article_id: str) -> str:
        return self.client.get(f"{API}/articles/{article_id}").json["text"]

    def revisions(self, url: str) -> list[dict]:
        response = self.client.get(f"{url}/revisions?page_size=500")
        assert response.status_code == 200, response.json
        return response.json

    def snapshot(self, *urls: str) -> list:
        """What a refused write must leave as it was: the dataset's change sequence, the events
        list's ETag (made from it) and content, and each record given with its history."""
        listing = self.client.get(f"{API}/events?page_size=500")
        assert listing.status_code == 200
        state = [
            self.client.get("/readyz").json["revision"],
            listing.headers["ETag"],
            listing.headers["X-Total-Count"],
            listing.json,
        ]
        for url in urls:
            state += [self.client.get(url).json, self.revisions(url)]
        return state


@pytest.fixture
def site(backend, new_app) -> Iterator[Site]:
    app, _ = new_app(backend)
    result = load(app)
    assert result.exit_code == 0, result.output
    yield Site(
        app,
        app.test_client(),
        create_token(app, "carol", "curator"),
        create_token(app, "ada", "admin"),
    )
    # Whatever the test wrote, stored forms and kept facet counts are what the records give.
    assert stale_forms(app) == []
    assert stale_facets(app) == {}


def event(*quotes: str, article_id: str = KALUZHNII, **fields) -> dict:
    """A new event's body, citing each quote of one article."""
    return {
        "kind": "report",
        "title": "A test event",
        "summary": "What the quoted passage reports.",
        "sources": [{"article_id": article_id, "quote": quote} for quote in quotes],
        **fields,
    }


def assert_problem(response, status: int) -> dict:
    """An RFC 9457 problem of that status: its body."""
    assert response.status_code == status, (response.status_code, response.data[:500])
    assert response.content_type == PROBLEM
    assert response.json["status"] == status
    return response.json


def body_errors(response, status: int = 422) -> dict[str, list[str]]:
    """A refused write's errors by body field path."""
    return assert_problem(response, status)["errors"]["body"]


def first_event_url(site: Site) -> str:
    return site.client.get(f"{API}/events?page_size=1").json[0]["url"]


# Who may write -----------------------------------------------------------------------------------


def test_a_write_without_a_token_is_refused_with_a_bearer_challenge(site):
    url = first_event_url(site)
    before = site.snapshot(url)
    for method, target, body in [
        ("post", f"{API}/events", event(REPORTED)),
        ("put", url, event(REPORTED)),
        ("patch", url, {"notes": "No token."}),
        ("delete", url, None),
    ]:
        for authorization in (None, "Basic Y2Fyb2w6c2VjcmV0", "Bearer ", "cft_no-scheme"):
            extra = {"Authorization": authorization} if authorization else {}
            response = site.write(method, target, body, token=None, etag="*", **extra)
            assert_problem(response, 401)
            challenge = response.headers["WWW-Authenticate"]
            assert challenge.startswith("Bearer "), challenge
            assert 'realm="' in challenge and "error=" not in challenge, challenge
    assert site.snapshot(url) == before


def test_the_bearer_scheme_is_case_insensitive(site):
    response = site.post(
        "events", event(REPORTED), token=None, Authorization=f"bearer {site.curator}"
    )
    assert response.status_code == 201, response.json


def test_an_unknown_token_is_refused_as_invalid(site):
    before = site.snapshot()
    for token in ("cft_not-a-token", site.curator + "x", site.curator.upper()):
        response = site.post("events", event(REPORTED), token=token)
        assert_problem(response, 401)
        challenge = response.headers["WWW-Authenticate"]
        assert challenge.startswith("Bearer ") and 'error="invalid_token"' in challenge
    assert site.snapshot() == before


def test_a_revoked_token_is_refused(site):
    token = create_token(site.app, "temp", "curator")
    site.created("events", event(SEMENSKY), token=token)
    result = site.app.test_cli_runner().invoke(args=["tokens", "revoke", "temp"])
    assert result.exit_code == 0, result.output
    listed = site.app.test_cli_runner().invoke(args=["tokens", "list"]).output
    assert any(line.startswith("temp\t") and "revoked" in line for line in listed.splitlines())

    before = site.snapshot()
    response = site.post("events", event(ELITE), token=token)
    assert "revoked" in assert_problem(response, 401)["detail"]
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert site.snapshot() == before
    site.created("events", event(ELITE))  # other tokens still work


def test_only_an_admin_may_delete_an_actor_or_an_article(site):
    actor = site.created("actors", {"name": "Test Organisation", "kind": "organisation"})
    article = site.created("articles", ARTICLE)
    for record in (actor, article):
        etag = site.etag(record["url"])
        response = site.write("delete", record["url"], etag=etag)
        assert "admin" in assert_problem(response, 403)["detail"]
        assert site.client.get(record["url"]).status_code == 200
        assert site.write("delete", record["url"], token="admin", etag=etag).status_code == 204
        assert_problem(site.client.get(record["url"]), 410)
    # Not even an admin may delete what records still cite or involve.
    for url in (f"{API}/articles/{KALUZHNII}", f"{API}/actors/vladimir-putin"):
        assert_problem(site.write("delete", url, token="admin", etag=site.etag(url)), 409)
    # A curator may delete a fact.
    created = site.created("events", event(REPORTED))
    response = site.write("delete", created["url"], etag=site.etag(created["url"]))
    assert response.status_code == 204


def test_reads_need_no_token(site):
    url = first_event_url(site)
    for read in (
        f"{API}/events",
        url,
        f"{url}/revisions",
        f"{url}/revisions/1",
        f"{API}/actors/vladimir-putin",
        f"{API}/articles/{KALUZHNII}",
        f"{API}/openapi.json",
    ):
        assert site.client.get(read).status_code == 200, read
        # A token is not needed, and a bad one does not matter to a read.
        bogus = {"Authorization": "Bearer cft_not-a-token"}
        assert site.client.get(read, headers=bogus).status_code == 200, read


# Creating a record -------------------------------------------------------------------------------


def test_a_created_event_is_served_as_posted_with_located_citations(site):
    text = site.text(KALUZHNII)
    assert text.count(REPORTED) == 1
    total = int(site.client.get(f"{API}/events").headers["X-Total-Count"])

    body = event(REPORTED, title="Kaluzhnii reports for service")
    response = site.post("events", body, Edit_Summary="Added from article 000.")
    assert response.status_code == 201, response.json
    created = response.json
    assert response.headers["Location"] == f"{API}/events/{created['id']}" == created["url"]
    assert response.headers["ETag"]

    shown = site.client.get(response.headers["Location"])  # anonymous
    assert shown.status_code == 200
    assert shown.json == created
    assert shown.headers["ETag"] == response.headers["ETag"]

    [source] = created["sources"]
    assert source["quote"] == REPORTED and source["article_id"] == KALUZHNII
    assert source["start"] == text.index(REPORTED)
    assert text[source["start"] : source["end"]] == REPORTED
    assert created["type"] == "event" and created["title"] == body["title"]
    assert created["date"] is None and created["notes"] is None
    assert created["actors"] == created["contradicts"] == created["figures"] == []
    assert int(site.client.get(f"{API}/events").headers["X-Total-Count"]) == total + 1

    [revision] = site.revisions(created["url"])
    assert revision["action"] == "created" and revision["version"] == 1
    assert revision["token"] == "carol"
    assert revision["summary"] == "Added from article 000."


def test_an_edit_summary_in_utf8_is_kept_and_a_bad_one_refused(site):
    summary = "Date: the text says “May 27”."
    # Header values travel as bytes; WSGI hands them over as Latin-1.
    raw = summary.encode("utf-8").decode("latin-1")
    created = site.created("events", event(REPORTED), Edit_Summary=raw)
    assert site.revisions(created["url"])[0]["summary"] == summary

    before = site.snapshot()
    assert_problem(site.post("events", event(SEMENSKY), Edit_Summary="x" * 501), 400)
    assert site.snapshot() == before


# Ids -----------------------------------------------------------------------------------------


def test_an_id_is_derived_from_the_title_when_left_out(site):
    title = "Kaluzhnii Reports, Once More!"
    created = site.created("events", event(REPORTED, title=title))
    assert created["id"] == "event-kaluzhnii-reports-once-more"
    assert site.created("events", event(SEMENSKY, title=title))["id"] == (
        "event-kaluzhnii-reports-once-more-2"
    )
    # Actors and articles have no prefix; accents fold to ASCII.
    actor = site.created("actors", {"name": "Général Testé", "kind": "person"})
    assert actor["id"] == "general-teste"


def test_a_given_id_is_used_and_an_id_in_use_is_a_conflict(site):
    created = site.created("events", event(REPORTED, id="event-kaluzhnii-test"))
    assert created["id"] == "event-kaluzhnii-test"
    assert site.client.get(f"{API}/events/event-kaluzhnii-test").status_code == 200

    before = site.snapshot()
    for taken in ("event-kaluzhnii-test", "decree-2025-spring-call-up"):  # any fact type's
        response = site.post("events", event(SEMENSKY, id=taken))
        assert "id" in body_errors(response, 409), taken
        assert taken in response.json["detail"]
    assert site.snapshot() == before


def test_the_id_of_a_deleted_record_is_never_reused(site):
    created = site.created("events", event(REPORTED, id="event-gone", title="Gone"))
    etag = site.etag(created["url"])
    response = site.write("delete", created["url"], etag=etag, Edit_Summary="Duplicate.")
    assert response.status_code == 204
    gone = assert_problem(site.client.get(created["url"]), 410)
    assert gone["reason"] == "Duplicate." and gone["deleted_by"] == "carol"
    assert [r["action"] for r in site.revisions(created["url"])] == ["deleted", "created"]
    for method in ("put", "patch", "delete"):
        assert_problem(site.write(method, created["url"], event(REPORTED), etag="*"), 410)

    assert "id" in body_errors(site.post("events", event(REPORTED, id="event-gone")), 409)
    # Nor when derived from the title: the next free one.
    assert site.created("events", event(REPORTED, title="Gone"))["id"] == "event-gone-2"


# Citations -----------------------------------------------------------------------------------


def test_a_quote_not_in_the_article_is_refused(site):
    before = site.snapshot()
    response = site.post("events", event("Kaluzhnii reported for naval service"))
    errors = body_errors(response)
    assert list(errors) == ["sources[0].quote"]
    assert KALUZHNII in errors["sources[0].quote"][0]
    assert "sources[0].quote" in response.json["detail"]
    # The quote must be verbatim: not even a different apostrophe.
    response = site.post("events", event("Kaluzhnii's decision to serve voluntarily"))
    assert list(body_errors(response)) == ["sources[0].quote"]
    assert site.snapshot() == before


def test_a_quote_found_more_than_once_needs_its_start(site):
    text = site.text(KALUZHNII)
    starts = [i for i in range(len(text)) if text.startswith("Kaluzhnii", i)]
    assert len(starts) > 1

    before = site.snapshot()
    errors = body_errors(site.post("events", event("Kaluzhnii")))
    [message] = errors["sources[0].quote"]
    assert "`start`" in message and f"{len(starts)} times" in message

    wrong = site.post("events", {**event(), "sources": [source("Kaluzhnii", starts[1] + 1)]})
    assert list(body_errors(wrong)) == ["sources[0].quote"]
    assert site.snapshot() == before

    created = site.created("events", {**event(), "sources": [source("Kaluzhnii", starts[1])]})
    [cited] = created["sources"]
    assert (cited["start"], cited["end"]) == (starts[1], starts[1] + len("Kaluzhnii"))


def source(quote: str, start: int | None = None, article_id: str = KALUZHNII) -> dict:
    cited = {"article_id": article_id, "quote": quote}
    return cited if start is None else {**cited, "start": start}


def test_an_unknown_article_is_refused(site):
    before = site.snapshot()
    response = site.post("events", event(REPORTED, article_id="no-such-article"))
    errors = body_errors(response)
    assert list(errors) == ["sources[0].article_id"]
    assert "no-such-article" in errors["sources[0].article_id"][0]
    second = {**event(REPORTED), "sources": [source(REPORTED), source(REPORTED, None, "nope")]}
    assert list(body_errors(site.post("events", second))) == ["sources[1].article_id"]
    assert site.snapshot() == before


# Dates and numbers come from the quotes --------------------------------------------------------


def date(text: str, value: str) -> dict:
    return {"text": text, "value": value, "precision": "day", "inferred": False, "inference": None}


def figure(text: str, value: float) -> dict:
    return {
        "measure": "casualties",
        "value": value,
        "unit": "people",
        "qualifier": "at_least",
        "text": text,
    }


def test_date_and_number_texts_must_be_in_the_records_quotes(site):
    before = site.snapshot()
    response = site.post("events", event(REPORTED, date=date("On June 1", "--06-01")))
    errors = body_errors(response)
    assert list(errors) == ["date.text"] and "On June 1" in errors["date.text"][0]

    body = event(CASUALTIES, article_id=DECREE_160000, figures=[figure("over 800,000", 800000)])
    assert list(body_errors(site.post("events", body))) == ["figures[0].text"]
    body = event(REPORTED, reported=date("On May 27", "--05-27"), figures=[figure("768,000", 1)])
    assert list(body_errors(site.post("events", body))) == ["figures[0].text"]
    assert site.snapshot() == before

    dated = site.created("events", event(REPORTED, date=date("On May 27", "--05-27")))
    assert dated["date"]["text"] == "On May 27"
    counted = event(CASUALTIES, article_id=DECREE_160000, figures=[figure("over 768,000", 768000)])
    assert site.created("events", counted)["figures"][0]["value"] == 768000


# References ----------------------------------------------------------------------------------


def test_references_to_unknown_records_are_refused(site):
    before = site.snapshot()
    actors = [{"id": "no-such-actor", "role": "subject"}]
    assert list(body_errors(site.post("events", event(REPORTED, actors=actors)))) == [
        "actors[0].id"
    ]
    unknown = site.post("events", event(REPORTED, contradicts=["event-no-such-record"]))
    assert "event-no-such-record" in body_errors(unknown)["contradicts[0]"][0]
    itself = site.post("events", event(REPORTED, id="event-self", contradicts=["event-self"]))
    assert "itself" in body_errors(itself)["contradicts[0]"][0]

    event_id = site.client.get(f"{API}/events?page_size=1").json[0]["id"]
    for not_a_decree in (event_id, "decree-that-does-not-exist"):
        campaign = {
            "kind": "recruitment_propaganda",
            "title": "A test campaign",
            "summary": "Videos promoting enlistment.",
            "decree": not_a_decree,
            "sources": [source(VIDEO_14TH, None, VIDEOS)],
        }
        errors = body_errors(site.post("campaigns", campaign))
        assert list(errors) == ["decree"] and not_a_decree in errors["decree"][0]
    assert site.snapshot() == before

    # What resolves is accepted, and shown with what it resolves to.
    actors = [{"id": "vladimir-putin", "role": "mentioned"}]
    assert site.created("events", event(REPORTED, actors=actors))["actors"] == [
        {**actors[0], "name": "Vladimir Putin", "url": f"{API}/actors/vladimir-putin"}
    ]
    ordered = site.created("campaigns", {**campaign, "decree": "decree-partial-mobilisation"})
    assert ordered["decree"] == "decree-partial-mobilisation"


def test_contradictions_are_kept_symmetric(site):
    other_url = first_event_url(site)
    other_etag = site.etag(other_url)
    created = site.created("events", event(REPORTED, contradicts=[other_url.split("/")[-1]]))
    assert created["disputed"] is True
    other = site.client.get(other_url)
    assert created["id"] in other.json["contradicts"] and other.json["disputed"] is True
    assert other.headers["ETag"] != other_etag
    assert site.revisions(other_url)[0]["action"] == "updated"
    # Deleting it removes the other side of the link too.
    assert site.write("delete", created["url"], etag=site.etag(created["url"])).status_code == 204
    assert created["id"] not in site.client.get(other_url).json["contradicts"]


# One passage, one fact -----------------------------------------------------------------------


def test_the_same_citations_as_another_record_are_a_conflict(site):
    decree = site.client.get(f"{API}/decrees/{AGE_LIMIT_DECREE}").json
    assert [s["quote"] for s in decree["sources"]] == [AGE_LIMIT_QUOTE]
    cited = [source(AGE_LIMIT_QUOTE, None, DECREE_160000)]

    before = site.snapshot(decree["url"])
    response = site.post("events", {**event(), "sources": cited})
    assert AGE_LIMIT_DECREE in " ".join(body_errors(response, 409)["sources"])
    assert AGE_LIMIT_DECREE in response.json["detail"]
    penalty = {
        "kind": "draft_evasion",
        "title": "A test penalty",
        "summary": "The law the passage mentions.",
        "punishment": "not stated",
        "sources": cited,
    }
    response = site.post("penalties", penalty)
    assert AGE_LIMIT_DECREE in " ".join(body_errors(response, 409)["sources"])
    assert site.snapshot(decree["url"]) == before

    # A penalty that the decree sets may rest on the decree's own sentence: two facts.
    created = site.created("penalties", {**penalty, "act": AGE_LIMIT_DECREE})
    assert refers_to(created, AGE_LIMIT_DECREE)
    assert created["act"] == AGE_LIMIT_DECREE
    assert [(s["start"], s["end"]) for s in created["sources"]] == [
        (s["start"], s["end"]) for s in decree["sources"]
    ]
    # But not a second penalty beside it, though that one names the decree too.
    response = site.post("penalties", {**penalty, "act": AGE_LIMIT_DECREE, "title": "Again"})
    assert created["id"] in " ".join(body_errors(response, 409)["sources"])


# If-Match --------------------------------------------------------------------------------------


def test_changing_writes_need_if_match(site):
    url = first_event_url(site)
    body = site.client.get(url).json
    before = site.snapshot(url)
    for method, sent in (("put", body), ("patch", {"notes": "x"}), ("delete", None)):
        response = site.write(method, url, sent)
        assert "If-Match" in assert_problem(response, 428)["detail"]
    assert site.snapshot(url) == before


def test_a_stale_etag_is_refused_and_changes_nothing(site):
    url = first_event_url(site)
    stale = site.etag(url)
    changed = site.write("patch", url, {"notes": "Checked again."}, etag=stale)
    assert changed.status_code == 200, changed.json
    assert changed.headers["ETag"] != stale
    assert changed.headers["ETag"] == site.etag(url)

    before = site.snapshot(url)
    body = site.client.get(url).json
    for method, sent in (("put", body), ("patch", {"notes": "Lost update."}), ("delete", None)):
        response = site.write(method, url, sent, etag=stale)
        assert_problem(response, 412)
        # Several tags, none current: still refused.
        response = site.write(method, url, sent, etag=f'{stale}, "0123abcd"')
        assert_problem(response, 412)
    assert site.snapshot(url) == before
    assert site.client.get(url).json["notes"] == "Checked again."


def test_if_match_star_and_a_compressed_bodys_etag_match(site):
    url = first_event_url(site)
    response = site.write("patch", url, {"notes": "Any version."}, etag="*")
    assert response.status_code == 200, response.json
    assert response.json["notes"] == "Any version."

    compressed = site.client.get(url, headers={"Accept-Encoding": "gzip"})
    assert compressed.status_code == 200
    assert compressed.headers["Content-Encoding"] == "gzip"
    etag = compressed.headers["ETag"]
    assert etag.strip('"').split(":")[0] == site.etag(url).strip('"')
    response = site.write("patch", url, {"notes": "From a gzip ETag."}, etag=etag)
    assert response.status_code == 200, response.json
    assert response.json["notes"] == "From a gzip ETag."
    # flask-compress marks a compressed body's tag "<tag>:gzip": that form matches too.
    etag = site.etag(url)[:-1] + ':gzip"'
    assert site.write("patch", url, {"notes": "Suffixed."}, etag=etag).status_code == 200
    # A weak tag never matches If-Match (RFC 9110 13.1.1: strong comparison).
    assert_problem(site.write("patch", url, {"notes": "Weak."}, etag="W/" + site.etag(url)), 412)

    # One of several tags matching is enough.
    etag = f'"0123abcd", {site.etag(url)}'
    assert site.write("patch", url, {"notes": "Second tag."}, etag=etag).status_code == 200
    created = site.created("events", event(REPORTED))
    assert site.write("delete", created["url"], etag="*").status_code == 204


# PATCH -----------------------------------------------------------------------------------------


def test_patch_needs_merge_patch_json(site):
    url = first_event_url(site)
    before = site.snapshot(url)
    for content_type in (JSON, "text/plain"):
        response = site.write(
            "patch", url, {"notes": "x"}, etag=site.etag(url), content_type=content_type
        )
        assert_problem(response, 415)
        assert response.headers["Accept-Patch"] == MERGE_PATCH
    assert site.snapshot(url) == before


def test_merge_patch_null_clears_a_nullable_field_and_keeps_the_rest(site):
    created = site.created("events", event(REPORTED, notes="A judgement call."))
    response = site.write("patch", created["url"], {"notes": None}, etag=site.etag(created["url"]))
    assert response.status_code == 200, response.json
    assert response.json["notes"] is None
    unchanged = {"notes", "updated_at"}
    assert {k: v for k, v in response.json.items() if k not in unchanged} == {
        k: v for k, v in created.items() if k not in unchanged
    }
    assert site.client.get(created["url"]).json == response.json
    latest, _ = site.revisions(created["url"])
    assert latest["action"] == "updated" and latest["version"] == 2
    assert {"op": "replace", "path": "/notes", "value": None} in latest["patch"]
    assert {op["path"] for op in latest["patch"]} <= {"/notes", "/updated_at"}


def test_patching_sources_relocates_their_offsets(site):
    text = site.text(KALUZHNII)
    created = site.created("events", event(REPORTED))
    patch = {"sources": [source(SEMENSKY), source(ELITE)]}
    response = site.write("patch", created["url"], patch, etag=site.etag(created["url"]))
    assert response.status_code == 200, response.json
    located = [(s["quote"], s["start"], s["end"]) for s in response.json["sources"]]
    assert located == [
        (quote, text.index(quote), text.index(quote) + len(quote)) for quote in (SEMENSKY, ELITE)
    ]
    for cited in response.json["sources"]:
        assert text[cited["start"] : cited["end"]] == cited["quote"]
    assert site.client.get(created["url"]).json["sources"] == response.json["sources"]


# PUT -----------------------------------------------------------------------------------------


def test_put_replaces_the_whole_record(site):
    full = event(
        REPORTED,
        id="event-full",
        notes="A note.",
        date=date("On May 27", "--05-27"),
        actors=[{"id": "vladimir-putin", "role": "mentioned"}],
        contradicts=[site.client.get(f"{API}/events?page_size=1").json[0]["id"]],
    )
    created = site.created("events", full)
    assert created["notes"] and created["date"] and created["actors"] and created["contradicts"]

    bare = event(SEMENSKY, title="Replaced", kind="deployment")
    response = site.write("put", created["url"], bare, etag=site.etag(created["url"]))
    assert response.status_code == 200, response.json
    replaced = response.json
    assert replaced["id"] == "event-full" and replaced["title"] == "Replaced"
    assert replaced["kind"] == "deployment"
    assert replaced["notes"] is None and replaced["date"] is None and replaced["reported"] is None
    assert replaced["actors"] == replaced["contradicts"] == replaced["figures"] == []
    assert [s["quote"] for s in replaced["sources"]] == [SEMENSKY]
    assert site.client.get(created["url"]).json == replaced
    # The link it dropped is dropped on the other side too.
    other = site.client.get(f"{API}/events/{full['contradicts'][0]}").json
    assert "event-full" not in other["contradicts"]


def test_put_of_what_get_shows_changes_nothing(site):
    url = first_event_url(site)
    shown = site.client.get(url)
    before = site.snapshot(url)
    response = site.write("put", url, shown.json, etag=shown.headers["ETag"])
    assert response.status_code == 200, response.json
    assert response.json == shown.json
    assert response.headers["ETag"] == shown.headers["ETag"]
    assert site.snapshot(url) == before


def test_put_with_another_id_in_the_body_is_refused(site):
    url = first_event_url(site)
    body = site.client.get(url).json
    before = site.snapshot(url)
    response = site.write("put", url, {**body, "id": "event-another"}, etag=site.etag(url))
    assert list(body_errors(response)) == ["id"]
    patch = site.write("patch", url, {"id": "event-another"}, etag=site.etag(url))
    assert list(body_errors(patch)) == ["id"]
    assert site.snapshot(url) == before


# Bodies the API refuses ------------------------------------------------------------------------


def test_bad_bodies_are_refused_as_problems_and_change_nothing(site):
    url = first_event_url(site)
    etag = site.etag(url)
    valid = event(REPORTED)
    huge = json.dumps({**valid, "summary": "x" * (1024 * 1024)})
    cases = [
        # (name, method, body or raw data, content type, status, field the errors name)
        ("malformed JSON", "post", b'{"kind": "report",', JSON, 400, None),
        ("plain text", "post", json.dumps(valid), "text/plain", 415, None),
        ("no content type", "post", json.dumps(valid), "", 415, None),
        ("over 1 MiB", "post", huge, JSON, 413, None),
        ("unknown field", "post", {**valid, "colour": "red"}, JSON, 422, "colour"),
        ("no citation", "post", {**valid, "sources": []}, JSON, 422, "sources"),
        ("null citations", "post", {**valid, "sources": None}, JSON, 422, "sources"),
        (
            "invalid nested field",
            "post",
            {**valid, "date": {**date("On May 27", "--05-27"), "precision": "weekly"}},
            JSON,
            422,
            "date.precision",
        ),
        ("NUL in a string", "post", {**valid, "title": "A\x00B"}, JSON, 422, "title"),
        ("NUL deep down", "post", event("Kaluzhnii\x00"), JSON, 422, "sources[0].quote"),
        ("an array", "post", [valid], JSON, 422, "(body)"),
        ("a string", "post", json.dumps("an event"), JSON, 422, "(body)"),
        ("PUT malformed", "put", b"[1, 2", JSON, 400, None),
        ("PUT over 1 MiB", "put", huge, JSON, 413, None),
        ("PUT unknown field", "put", {**valid, "colour": "red"}, JSON, 422, "colour"),
        ("PATCH malformed", "patch", b"{", MERGE_PATCH, 400, None),
        ("PATCH over 1 MiB", "patch", huge, MERGE_PATCH, 413, None),
        ("PATCH unknown field", "patch", {"colour": "red"}, MERGE_PATCH, 422, "colour"),
        ("PATCH NUL", "patch", {"notes": "\x00"}, MERGE_PATCH, 422, "notes"),
        (
            "PATCH bad nested",
            "patch",
            {"date": {"precision": "weekly"}},
            MERGE_PATCH,
            422,
            "date.precision",
        ),
    ]
    before = site.snapshot(url)
    for name, method, body, content_type, status, field in cases:
        target = f"{API}/events" if method == "post" else url
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        response = site.write(method, target, data=data, content_type=content_type, etag=etag)
        assert response.status_code == status, (name, response.status_code, response.data[:300])
        assert response.content_type == PROBLEM, name
        assert response.json["status"] == status and response.json["detail"], name
        if field:
            assert field in response.json["errors"]["body"], (name, response.json)
        if status == 415:
            assert response.headers["Accept-Post"] == JSON, name
        assert site.snapshot(url) == before, name
    # The ETag still works: nothing changed.
    assert site.write("patch", url, {"notes": "Now."}, etag=etag).status_code == 200


# The spec --------------------------------------------------------------------------------------


@pytest.fixture
def spec(backend, new_app) -> dict:
    app, _ = new_app(backend)
    response = app.test_client().get(f"{API}/openapi.json")
    assert response.status_code == 200
    return response.json


def operations(spec: dict):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in ("get", "head", *WRITE_METHODS):
                yield path, method, operation


def test_the_spec_documents_every_write(spec):
    assert spec["components"]["securitySchemes"]["bearerAuth"]["type"] == "http"
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    writes = [(p, m, op) for p, m, op in operations(spec) if m in WRITE_METHODS]
    # Six collections: POST on each list, PUT, PATCH and DELETE on each record.
    assert len(writes) == 24, [(p, m) for p, m, _ in writes]
    for path, method, operation in writes:
        where = f"{method.upper()} {path}"
        assert operation.get("security") == [{"bearerAuth": []}], where
        responses = set(operation["responses"])
        expected = {"401", "403"}
        expected |= {"422"} if method != "delete" else set()
        expected |= {"412", "428"} if method != "post" else set()
        assert expected <= responses, (where, expected - responses)
        if method == "delete":
            assert "422" not in responses and "requestBody" not in operation, where
        else:
            content = operation["requestBody"]["content"]
            [(media_type, body)] = content.items()
            assert media_type == (MERGE_PATCH if method == "patch" else JSON), where
            ref = body["schema"]["$ref"]
            assert ref.split("/")[-1] in spec["components"]["schemas"], where
            assert body["example"], where
        if method == "post":
            assert not {"412", "428"} & responses, where
        names = [p.get("name") for p in operation.get("parameters", [])]
        assert "Edit-Summary" in names, where


def test_the_spec_says_reads_need_no_token(spec):
    reads = [(p, m, op) for p, m, op in operations(spec) if m in ("get", "head")]
    assert len(reads) > 20
    for path, method, operation in reads:
        assert operation.get("security") == [], f"{method.upper()} {path}"


def test_the_spec_example_of_each_post_body_is_accepted_as_it_stands(site):
    spec = site.client.get(f"{API}/openapi.json").json
    refused = {}
    for collection in ("decrees", "campaigns", "penalties", "events", "actors", "articles"):
        content = spec["paths"][f"{API}/{collection}"]["post"]["requestBody"]["content"]
        response = site.post(collection, content[JSON]["example"])
        if response.status_code != 201:
            refused[collection] = (response.status_code, response.json["detail"])
        else:
            assert site.client.get(response.headers["Location"]).json == response.json
    assert not refused


# Bugs ------------------------------------------------------------------------------------------


def test_a_number_too_big_to_be_exact_is_refused(site):
    """1e20 would be stored, then be a whole number JSON writers cannot all write (orjson
    refuses integers past 64 bits): refused, naming the field, before anything is stored."""
    site.app.config["PROPAGATE_EXCEPTIONS"] = False  # a crash answers 500, as in production
    body = event(REPORTED, figures=[{**figure("27", 1e20), "qualifier": "exact"}])
    response = site.post("events", body)
    assert response.status_code == 422, response.status_code
    assert "figures[0].value" in body_errors(response)
    assert site.client.get(f"{API}/events?page_size=500").status_code == 200


def test_a_fact_without_sources_is_refused_naming_sources(site):
    """Left out, `sources` is not an empty list (which would reach the same-citations check
    with nothing to compare, once a 500): it is required, and the spec says so."""
    site.app.config["PROPAGATE_EXCEPTIONS"] = False  # a crash answers 500, as in production
    records = site.client.get(f"{API}/events?page_size=500").json
    plain = next(r for r in records if not (r["date"] or r["reported"] or r["figures"]))
    before = site.snapshot(plain["url"])
    without = {key: value for key, value in event(REPORTED).items() if key != "sources"}
    assert "sources" in body_errors(site.post("events", without))
    patch = site.write("patch", plain["url"], {"sources": None}, etag=site.etag(plain["url"]))
    assert "sources" in body_errors(patch)
    assert site.snapshot(plain["url"]) == before
    spec = site.client.get(f"{API}/openapi.json").json
    assert "sources" in spec["components"]["schemas"]["EventWrite"]["required"]

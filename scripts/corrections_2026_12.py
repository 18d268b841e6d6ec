"""The first corrections to the shipped data, made through the API as a curator would.

    python scripts/corrections_2026_12.py http://127.0.0.1:8000 "$TOKEN"

Each step is an ordinary HTTP write (GET for the ETag, then POST, PATCH or DELETE with
If-Match and an Edit-Summary), so the corrections are in the records' revision history.
They were applied once to a database seeded from data/ as of commit 41ea6ac, and the
result exported into data/ with `flask --app api data export data`. That database was
seeded with the duplicate check of that commit, which compared records of one type only:
today's check refuses the data as it was then (penalty-draft-evasion, corrected here).
Replayed on today's data/, the first PATCH changes nothing and the first POST answers 409
(the record exists): the script stops there, by design.
"""

import json
import sys
import urllib.error
import urllib.request

BASE, TOKEN = sys.argv[1].rstrip("/"), sys.argv[2]


def call(method: str, path: str, body=None, etag=None, summary=None, patch=False):
    headers = {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = "application/merge-patch+json" if patch else "application/json"
    if etag:
        headers["If-Match"] = etag
    if summary:
        headers["Edit-Summary"] = summary
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(BASE + path, data, headers, method=method)
    try:
        with urllib.request.urlopen(request) as response:
            payload = response.read()
            return response.headers.get("ETag"), json.loads(payload) if payload else None
    except urllib.error.HTTPError as error:
        sys.exit(f"{method} {path}: {error.code} {error.read().decode()}")


def patch(path: str, change: dict, summary: str):
    etag, _ = call("GET", path)
    call("PATCH", path, change, etag, summary, patch=True)
    print(f"PATCH {path}: {summary}")


def delete(path: str, summary: str):
    etag, _ = call("GET", path)
    call("DELETE", path, etag=etag, summary=summary)
    print(f"DELETE {path}: {summary}")


def create(path: str, record: dict, summary: str):
    _, created = call("POST", path, record, summary=summary)
    print(f"POST {path}: {created['id']}: {summary}")


CAMPAIGN = "/api/v1/campaigns/campaign-2025-spring-call-up"
EXPECTATION = (
    "The new conscripts are expected to strengthen Russia’s military efforts in Ukraine, "
    "particularly in the eastern regions and the Kursk area"
)
PEACE_TITLE = "U.S. seeks to broker peace talks; diplomatic efforts to end the war face setbacks"
KAZAKHSTAN = (
    "In the first two weeks after announcing the mobilisation, 200,000 Russians entered Kazakhstan."
)


def main() -> None:
    # 1. The campaign states as fact a forecast that an official assurance denies: the
    #    forecast becomes an estimate of its own, linked to the assurance it contradicts.
    _, campaign = call("GET", CAMPAIGN)
    patch(
        CAMPAIGN,
        {
            "actors": [
                {"id": a["id"], "role": a["role"]}
                for a in campaign["actors"]
                if a["id"] not in ("ukraine", "kursk-region")
            ],
            "sources": [
                {"article_id": s["article_id"], "quote": s["quote"], "start": s["start"]}
                for s in campaign["sources"]
                if s["quote"] != EXPECTATION
            ],
            "notes": (
                "Merged from 002 and 004. Start month from 002 ('between April and July', year "
                "from 004); 004 only says the window 'began this week'. 004's expectation that "
                "the conscripts will strengthen the war effort in Ukraine and the Kursk area is "
                "a forecast, not part of the campaign: it is the record "
                "event-2025-conscripts-expected-in-ukraine-and-kursk."
            ),
        },
        "Ukraine and Kursk were a forecast, not the campaign's places: moved to an estimate.",
    )
    create(
        "/api/v1/events",
        {
            "id": "event-2025-conscripts-expected-in-ukraine-and-kursk",
            "kind": "estimate",
            "title": "Spring 2025 conscripts expected to strengthen the war effort in Ukraine "
            "and the Kursk area",
            "summary": "004 writes that the new conscripts of the spring 2025 call-up are "
            "expected to strengthen Russia's military efforts in Ukraine, particularly in the "
            "eastern regions and the Kursk area. It names no one who expects this; officials "
            "assure that conscripts are not sent to fight in Ukraine.",
            "date": None,
            "figures": [],
            "reported": None,
            "actors": [
                {"id": "ukraine", "role": "place"},
                {"id": "kursk-region", "role": "place"},
            ],
            "contradicts": ["event-assurance-conscripts-not-sent-to-ukraine"],
            "sources": [
                {"article_id": "putin-latest-conscription-drive-160000", "quote": EXPECTATION}
            ],
            "notes": "An expectation stated without attribution, not a reported deployment. "
            "Undated: the article does not say when it is expected.",
        },
        "The forecast in 004, as what it is: an estimate, contradicted by the assurance.",
    )

    # 2. One sentence, one case: the criminal case against Kaluzhnii is an event; the
    #    penalty record that restated it as a rule goes.
    delete(
        "/api/v1/penalties/penalty-draft-evasion",
        "Restated one case (event-kaluzhnii-criminal-case) as a rule; the text gives no rule.",
    )

    # 3. Sources as their texts write them.
    patch(
        "/api/v1/articles/news1-kremlin-recruitment-videos",
        {"outlet": "News 1"},
        "The text signs '(Seoul = News 1)': the outlet as written.",
    )
    patch(
        "/api/v1/articles/after-russia-kill-or-be-killed",
        {
            "outlet": "After Russia",
            "byline": None,
            "note": 'Blog-style post; the header reads "After Russia / 3 min read / Mar 12, '
            '2023". "After Russia" names the publishing account, not a person, so it is the '
            "outlet (the actor after-russia is an organisation); no author is named.",
        },
        "After Russia is the publisher (an organisation), as its actor says, not a byline.",
    )
    patch(
        "/api/v1/actors/after-russia",
        {"description": "Publisher of article 003, named at the head of its text"},
        "Agrees with article 003: the outlet, not a byline.",
    )

    # 4. Titles, figures and descriptions that said more or less than their sources.
    patch(
        "/api/v1/events/event-us-peace-efforts",
        {"title": PEACE_TITLE},
        "No source says U.S.-brokered efforts faced setbacks: the two statements, side by side.",
    )
    emigration = "/api/v1/events/event-emigration-to-avoid-conscription"
    _, record = call("GET", emigration)
    patch(
        emigration,
        {
            "figures": [],
            "notes": record["notes"]
            + " The 200,000 who entered Kazakhstan in the first two weeks are the record "
            "event-200000-entered-kazakhstan-in-two-weeks, with their period.",
        },
        "The 200,000 figure lacked its period: moved to a record that states it.",
    )
    create(
        "/api/v1/events",
        {
            "id": "event-200000-entered-kazakhstan-in-two-weeks",
            "kind": "emigration",
            "title": "200,000 Russians entered Kazakhstan in the first two weeks of mobilisation",
            "summary": "In the first two weeks after the mobilisation was announced, 200,000 "
            "Russians entered Kazakhstan (003).",
            "date": {
                "text": "In the first two weeks after announcing the mobilisation",
                "value": "2022",
                "precision": "year",
                "inferred": True,
                "inference": "Two weeks from the mobilisation announced on September 21; the "
                "year, 2022, from the article (published 2023-03-12), which reports it as past. "
                "The two weeks run into October, so no single month is given.",
            },
            "figures": [
                {
                    "measure": "entered_kazakhstan",
                    "value": 200000,
                    "unit": "people",
                    "qualifier": "exact",
                    "text": "200,000",
                }
            ],
            "reported": None,
            "actors": [{"id": "kazakhstan", "role": "place"}, {"id": "russia", "role": "place"}],
            "contradicts": [],
            "sources": [{"article_id": "after-russia-kill-or-be-killed", "quote": KAZAKHSTAN}],
            "notes": None,
        },
        "The 200,000 with the period the text gives for them.",
    )
    patch(
        "/api/v1/actors/black-sea",
        {"description": "Sea where a pause in military activities would apply"},
        "Misread: the Black Sea is where the pause would apply, not where conditions were set.",
    )


if __name__ == "__main__":
    main()

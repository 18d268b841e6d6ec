"""Postings of frequent words (search.best_of_word): a one-word search ranked from them gives
exactly the hits, order, scores and totals of a ranking of every match, and writes keep them."""

from collections import Counter

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from api import search, store
from api.migrate import upgrade_database
from api.models import SearchDocument, SearchPosting, SearchWordCount

from .conftest import load
from .helpers import create_token, downgrade, walk


def engine(app):
    return app.extensions["db"].kw["bind"]


def documents_by_word(app) -> Counter:
    """How many search documents have each word."""
    with Session(engine(app)) as session:
        documents = Counter()
        for tokens in session.scalars(select(SearchDocument.tokens)):
            documents.update(set(tokens.split()))
    return documents


def posted_words(app) -> set[str]:
    with Session(engine(app)) as session:
        return set(session.scalars(select(SearchWordCount.word).distinct()))


def index_words(app, *args: str):
    result = app.test_cli_runner().invoke(args=["search", "index-words", *args])
    assert result.exit_code == 0, result.output
    store.ranked_searches.entries.clear()  # kept rankings would answer for the postings
    return result.output


def searches(client, words: list[str]) -> dict:
    """Each word's search walked in pages of 4 (kept windows of 5, 10, 20, then beyond them),
    of every type and of events alone, with each first page's total."""
    found = {}
    for word in words:
        for only in ("", "&type=event", "&type=article,decree"):
            url = f"/api/v1/search?q={word}{only}"
            total = client.get(f"{url}&page_size=4").headers["X-Total-Count"]
            found[word, only] = (total, walk(client, f"{url}&page_size=4"))
    return found


@pytest.fixture
def small_windows(monkeypatch):
    # Windows shorter than the groups: each group's postings are cut at the window's size.
    monkeypatch.setattr(store, "RANKED_WINDOW", 5)


def sample(words: list[str]) -> list[str]:
    """The 25 most frequent words and every 40th of the others (digits, rare words)."""
    return words[:25] + words[25::40]


def test_a_word_ranked_from_its_postings_is_ranked_as_every_match_would_be(
    backend, new_app, small_windows, monkeypatch
):
    app, _ = new_app(backend)
    assert load(app).exit_code == 0
    client = app.test_client()
    words = sample([word for word, _ in documents_by_word(app).most_common()])
    scored_every_match = searches(client, words)

    output = index_words(app, "--min-documents", "1")
    assert "Words with postings: " in output and f" {words[0]} (" in output
    posted = []
    real = search.best_of_word
    monkeypatch.setattr(
        search, "best_of_word", lambda _s, word, *a: posted.append(word) or real(_s, word, *a)
    )
    assert searches(client, words) == scored_every_match
    assert set(posted) == set(words)  # each went by its postings


def test_only_the_frequent_words_get_postings(backend, new_app):
    app, _ = new_app(backend)
    assert load(app).exit_code == 0
    frequent = {word for word, n in documents_by_word(app).items() if n >= 30}
    assert frequent
    output = index_words(app, "--min-documents", "30", "gosuslugi", "notaword")
    assert "gosuslugi (" in output and "notaword" not in output
    assert posted_words(app) == frequent | {"gosuslugi"}
    assert index_words(app).endswith("Words with postings: none.\n")  # the default: 20,000


def test_migration_0014_gives_the_frequent_words_of_a_database_their_postings(
    backend, new_app, monkeypatch
):
    app, _ = new_app(backend)
    assert load(app).exit_code == 0
    downgrade(app, "0013")
    monkeypatch.setattr(search, "MIN_POSTED_DOCUMENTS", 12)
    with app.app_context():
        upgrade_database()
    posted = posted_words(app)
    assert posted and posted == {word for word, n in documents_by_word(app).items() if n >= 12}
    assert stale_postings(app) == {}


def stale_postings(app) -> dict:
    """The postings and group counts that writes kept, where they differ from a rebuild."""
    with Session(engine(app)) as session:
        words = set(session.scalars(select(SearchWordCount.word).distinct()))
        kept = (
            sorted(session.execute(select(SearchPosting.__table__)).all()),
            {
                (w, t, o): n
                for w, t, o, n in session.execute(select(SearchWordCount.__table__))
                if n
            },
        )
        search.index_words(session, min_documents=10**9, words=words)
        rebuilt = (
            sorted(session.execute(select(SearchPosting.__table__)).all()),
            dict(
                ((w, t, o), n) for w, t, o, n in session.execute(select(SearchWordCount.__table__))
            ),
        )
        session.rollback()
    return {} if kept == rebuilt else {"kept": kept, "rebuilt": rebuilt}


def test_writes_keep_the_postings_and_their_counts(backend, new_app, small_windows):
    app, _ = new_app(backend)
    assert load(app).exit_code == 0
    client, auth = app.test_client(), {"Authorization": f"Bearer {create_token(app)}"}
    index_words(app, "--min-documents", "5")
    before = client.get("/api/v1/search?q=mobilisation&page_size=1").headers["X-Total-Count"]
    source = {
        "article_id": "kaluzhnii-reports-for-service",
        "quote": "a prominent actor known for his role in the television series",
    }
    event = {
        "kind": "report",
        "title": " ".join(["Mobilisation"] * 20),  # more often than in any shipped text
        "summary": "What the cited passage states.",
        "date": None,
        "sources": [source],
    }
    created = client.post("/api/v1/events", json=event, headers=auth)
    assert created.status_code == 201, created.json
    path = f"/api/v1/events/{created.json['id']}"
    hits = client.get("/api/v1/search?q=mobilisation&page_size=1")
    assert hits.json[0]["id"] == created.json["id"]  # twenty times in a short text: the best
    assert int(hits.headers["X-Total-Count"]) == int(before) + 1
    assert stale_postings(app) == {}

    changed = client.patch(
        path,
        data='{"title": "Mobilisation once"}',
        content_type="application/merge-patch+json",
        headers={**auth, "If-Match": created.headers["ETag"]},
    )
    assert changed.status_code == 200, changed.json
    assert stale_postings(app) == {}
    gone = client.delete(path, headers={**auth, "If-Match": changed.headers["ETag"]})
    assert gone.status_code == 204
    assert stale_postings(app) == {}
    after = client.get("/api/v1/search?q=mobilisation&page_size=1").headers["X-Total-Count"]
    assert after == before
    with Session(engine(app)) as session:  # the emptied group is kept, counting none
        group = text(
            "SELECT documents FROM search_word_counts "
            "WHERE word = 'mobilisation' AND doc_type = 'event' AND occurrences = 20"
        )
        assert session.scalar(group) == 0

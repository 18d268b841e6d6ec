"""`flask data check`: the dataset's own quality gate, run on the shipped data and on breakages."""

import shutil

import pytest

from .conftest import make_app
from .helpers import edit


def check(data_dir, tmp_path):
    app = make_app(f"sqlite:///{tmp_path / 'unused.sqlite3'}", data_dir)
    return app.test_cli_runner().invoke(args=["data", "check"])


def test_shipped_dataset_passes(data_copy, tmp_path):
    result = check(data_copy, tmp_path)
    assert result.exit_code == 0, result.output
    assert "Dataset OK: 5 articles" in result.output


def _first(records):
    return records[0]


def _with_contradiction(records):
    """A record contradicted by another record of the same file."""
    ids = {r["id"] for r in records}
    return next(r for r in records if set(r["contradicts"]) & ids)


BREAKAGES = {
    "quote not verbatim": (
        "events.yaml",
        lambda rs: _first(rs)["sources"][0].update(
            quote="x" * 5, end=_first(rs)["sources"][0]["start"] + 5
        ),
        "quote is not verbatim",
    ),
    "record without source": (
        "events.yaml",
        lambda rs: _first(rs).update(sources=[]),
        "field 'sources'",
    ),
    "unknown actor": (
        "events.yaml",
        lambda rs: _first(rs)["actors"].append({"id": "nobody-at-all", "role": "subject"}),
        "unknown actor 'nobody-at-all'",
    ),
    "dangling contradiction": (
        "events.yaml",
        lambda rs: _first(rs)["contradicts"].append("event-that-does-not-exist"),
        "contradicts unknown record 'event-that-does-not-exist'",
    ),
    "one-sided contradiction": (
        "events.yaml",
        lambda rs: _with_contradiction(rs).update(contradicts=[]),
        "which does not list it back",
    ),
    "duplicate fact": (
        "events.yaml",
        lambda rs: rs.append({**_first(rs), "id": "event-copy-of-another"}),
        "duplicate fact",
    ),
    "duplicate id": (
        "events.yaml",
        lambda rs: rs.append(dict(_first(rs))),
        "duplicate id",
    ),
    "invented date": (
        "events.yaml",
        lambda rs: _first(rs).update(
            date={
                "text": "On 1 January 1999",
                "value": "1999-01-01",
                "precision": "day",
                "inferred": False,
                "inference": None,
            }
        ),
        "text 'On 1 January 1999' appears in none of the record's quotes",
    ),
    "inference without reason": (
        "events.yaml",
        lambda rs: _first(rs).update(
            date={
                "text": None,
                "value": "2022",
                "precision": "year",
                "inferred": True,
                "inference": None,
            }
        ),
        "field 'date.inference'",
    ),
    "unknown field": (
        "events.yaml",
        lambda rs: _first(rs).update(colour="red"),
        "field 'colour': Unknown field.",
    ),
    "dangling decree": (
        "campaigns.yaml",
        lambda rs: _first(rs).update(decree="decree-that-does-not-exist"),
        "decree refers to 'decree-that-does-not-exist'",
    ),
}


@pytest.mark.parametrize("name", BREAKAGES)
def test_breakage_fails_the_check_with_a_clear_message(data_copy, tmp_path, name):
    file, change, expected = BREAKAGES[name]
    edit(data_copy / file, change)
    result = check(data_copy, tmp_path)
    assert result.exit_code == 1
    assert expected in result.output, result.output
    assert f"{file}: " in result.output


def test_uncited_article_fails_the_check(data_copy, tmp_path):
    shutil.copy(
        data_copy / "articles" / "000_6bfbdbca3c636e2b.txt", data_copy / "articles" / "extra.txt"
    )

    def add(articles):
        articles.append({**articles[0], "id": "an-uncited-article", "file": "articles/extra.txt"})

    edit(data_copy / "articles.yaml", add)
    result = check(data_copy, tmp_path)
    assert result.exit_code == 1
    assert "articles.yaml: an-uncited-article: no record cites this article" in result.output


def test_unused_actor_fails_the_check(data_copy, tmp_path):
    edit(
        data_copy / "actors.yaml",
        lambda actors: actors.append({**actors[0], "id": "an-unused-actor"}),
    )
    result = check(data_copy, tmp_path)
    assert result.exit_code == 1
    assert "actors.yaml: an-unused-actor: no record involves this actor" in result.output

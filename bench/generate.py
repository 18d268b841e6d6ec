"""Synthetic records for the benchmark: a database of N facts shaped like the real dataset.

    .venv/bin/python bench/generate.py \
        --database-url sqlite:///bench/results/db/sqlite-10k.sqlite3 --records 10000 \
        [--seed 1] [--replace]

Nothing here is ever loaded by default: the generator writes only the database it is given
(and a manifest beside it), never `data/` or the app's own database.

What it makes, deterministically from --seed:
- 60 synthetic articles of ~400 sentences (~45k characters, some non-ASCII characters so that
  offsets are code points), 300 synthetic actors with Zipf-like popularity;
- N facts over the four types (events 55 %, decrees/campaigns/penalties 15 % each), ids
  `event-synthetic-0000123`, with 1-3 citations each whose quote is a sentence of an article at
  its exact offsets, 0-3 actor links, ~2 % in contradiction pairs, dates of mixed precision
  (day, month, year, day without year, unknown, none) over 2010-2025 with date_min/date_max/
  date_sort computed like the loader does, and `details` shaped like each type's schema
  (decree and campaign quotas are the number their first quote states);
- one search_documents row per fact and per article, built like `api.search.fact_document`.

Search vocabulary: every fact carries two "place" words drawn uniformly from 20,000
(selective: ~N/10,000 documents each), ~30 % of facts say "mobilisation" (common), and the
rest of the text is drawn from a Zipf-distributed vocabulary of 30,000 words.

The schema is made by the app's own migrations (`api.migrate.upgrade_database`). Rows are inserted
in batches with SQLAlchemy Core executemany on SQLite (WAL, synchronous=OFF during the load),
and with COPY on PostgreSQL (secondary indexes and FK triggers suspended during the load, then
rebuilt with their exact definitions, then VACUUM ANALYZE as autovacuum would soon do).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import multiprocessing
import os
import random
import sys
import time
from collections import Counter
from itertools import accumulate
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_DIR = BENCH_DIR.parent
sys.path.insert(0, str(PROJECT_DIR))

import psycopg  # noqa: E402
from sqlalchemy import JSON, create_engine, event, make_url, select, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from api import create_app, records, search, store  # noqa: E402
from api.config import database_url, default_database_url  # noqa: E402
from api.migrate import upgrade_database  # noqa: E402
from api.models import (  # noqa: E402
    Actor,
    Article,
    Citation,
    Contradiction,
    DatasetState,
    Fact,
    FactActor,
    SearchDocument,
)
from api.records import content_hash, fact_columns  # noqa: E402
from schemas.common import ACTOR_ROLES, QUALIFIERS  # noqa: E402
from schemas.facts import (  # noqa: E402
    CAMPAIGN_KINDS,
    DECREE_KINDS,
    DECREE_STATUSES,
    EVENT_KINDS,
    PENALTY_CONDITIONS,
    PENALTY_KINDS,
)

GENERATOR_VERSION = 1
BATCH = 10_000
N_ARTICLES = 60
SENTENCES_PER_ARTICLE = 400
N_ACTORS = 300
N_ZIPF_WORDS = 30_000
N_PLACES = 20_000
COMMON_WORD = "mobilisation"  # in ~30 % of the facts: the "common" search term
STAMP = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)  # created_at / updated_at of every row

TYPE_WEIGHTS = {"event": 0.55, "decree": 0.15, "campaign": 0.15, "penalty": 0.15}
KINDS = {
    "decree": DECREE_KINDS,
    "campaign": CAMPAIGN_KINDS,
    "penalty": PENALTY_KINDS,
    "event": EVENT_KINDS,
}
# Words of the domain, frequent in every text (never COMMON_WORD: its frequency is controlled).
DOMAIN = (
    "conscription call up draft recruits military commissariat reservists region ministry "
    "defence soldiers contract service army officials notices summons enlistment front war "
    "men women age quota border exemption deferment court prison desertion refusal volunteers "
    "governor report statement protest detention video propaganda payment bonus training unit "
    "deployment casualties estimate ukraine russia kremlin duma law order policy campaign"
).split()
FILLER = "the a of in to and for on with by that as at from was were is are has had will".split()
MONTHS = (
    "January February March April May June July August September October November December"
).split()
UNITS = ("men", "people", "reservists", "recruits", "soldiers")
QUALIFIER_TEXT = {"exact": "", "at_least": "over ", "at_most": "up to ", "about": "about "}
SEASONS = ("spring", "autumn")
CHANNELS = ("post", "gosuslugi", "sms", "workplace", "in_person")


# Vocabulary ------------------------------------------------------------------------------------


def _words(rng: random.Random, n: int, taken: set[str], suffix: str = "") -> list[str]:
    consonants, vowels = "bcdfghklmnprstvz", "aeiou"
    words: list[str] = []
    while len(words) < n:
        syllables = rng.randint(2, 4)
        word = "".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(syllables))
        word += suffix
        if word not in taken:
            taken.add(word)
            words.append(word)
    return words


class Vocabulary:
    def __init__(self, rng: random.Random):
        taken = set(DOMAIN) | set(FILLER) | {COMMON_WORD}
        self.zipf = _words(rng, N_ZIPF_WORDS, taken)
        self.zipf_cum = list(accumulate(1 / (rank + 1) ** 1.07 for rank in range(N_ZIPF_WORDS)))
        self.places = _words(rng, N_PLACES, taken, suffix="sk")
        zipf_total = self.zipf_cum[-1]
        self.pool = [*FILLER, *DOMAIN, *self.zipf]
        self.pool_cum = list(
            accumulate(
                [0.35 / len(FILLER)] * len(FILLER)
                + [0.25 / len(DOMAIN)] * len(DOMAIN)
                + [0.4 / zipf_total / (rank + 1) ** 1.07 for rank in range(N_ZIPF_WORDS)]
            )
        )

    def zipf_words(self, rng: random.Random, k: int) -> list[str]:
        return rng.choices(self.zipf, cum_weights=self.zipf_cum, k=k)

    def words(self, rng: random.Random, k: int) -> list[str]:
        """A run of text: filler (35 %), domain (25 %) and Zipf-distributed (40 %) words."""
        return rng.choices(self.pool, cum_weights=self.pool_cum, k=k)


def sentence(words: list[str]) -> str:
    text = " ".join(words)
    return text[0].upper() + text[1:] + "."


# Articles and actors ----------------------------------------------------------------------------


def quantity(rng: random.Random, measure: str, value: int, unit: str) -> dict:
    qualifier = rng.choice(QUALIFIERS)
    return {
        "measure": measure,
        "value": value,
        "unit": unit,
        "qualifier": qualifier,
        "text": f"{QUALIFIER_TEXT[qualifier]}{value:,}",
    }


def make_articles(rng: random.Random, vocab: Vocabulary):
    """Articles, and per article its sentences as (start, end, text, quantity or None)."""
    articles, sentences = [], []
    for n in range(1, N_ARTICLES + 1):
        article_id = f"synthetic-article-{n:03d}"
        headline = sentence(vocab.words(rng, rng.randint(6, 12)))[:-1]
        text_parts = [headline, "\n\n"]
        offset = len(headline) + 2
        spans = []
        for i in range(SENTENCES_PER_ARTICLE):
            words = vocab.words(rng, rng.randint(10, 26))
            number = None
            if rng.random() < 0.2:  # a sentence stating a quota
                number = quantity(rng, "quota", rng.randint(1, 400) * 500, rng.choice(UNITS))
                at = rng.randint(1, len(words) - 1)
                words[at:at] = ["a", "quota", "of", number["text"], number["unit"]]
            if rng.random() < 0.1:
                words[rng.randrange(len(words))] = "Russia’s"  # a non-ASCII code point
            body = sentence(words)
            spans.append((offset, offset + len(body), body, number))
            separator = "\n\n" if i % 6 == 5 else " "
            text_parts += [body, separator]
            offset += len(body) + len(separator)
        body_text = "".join(text_parts).rstrip() + "\n"
        for start, end, quote, _ in spans:
            assert body_text[start:end] == quote
        year = rng.randint(2014, 2025)
        published = {
            "text": f"{MONTHS[rng.randrange(12)]} {year}",
            "value": f"{year}-{rng.randint(1, 12):02d}",
            "precision": "month",
            "inferred": False,
            "inference": None,
        }
        record = {
            "id": article_id,
            "file": f"articles/{article_id}.txt",
            "title": f"Synthetic article {n}: {headline}"[:300],
            "headline": headline[:300],
            "outlet": f"{vocab.zipf_words(rng, 1)[0].capitalize()} News",
            "byline": None,
            "language": "en",
            "published": published,
            "note": "Synthetic benchmark text.",
        }
        articles.append(
            {
                **record,
                "text": body_text,
                "sha256": hashlib.sha256(body_text.encode()).hexdigest(),
                "word_count": len(body_text.split()),
                "created_at": STAMP,
                "updated_at": STAMP,
                "content_hash": content_hash(record),
            }
        )
        sentences.append(spans)
    return articles, sentences


def make_actors(rng: random.Random, vocab: Vocabulary):
    kinds = ["person"] * 10 + ["organisation"] * 5 + ["place"] * 4 + ["system"]
    actors = []
    for n in range(1, N_ACTORS + 1):
        first, last = (w.capitalize() for w in vocab.zipf_words(rng, 2))
        record = {
            "id": f"synthetic-actor-{n:04d}",
            "name": f"{first} {last}",
            "kind": rng.choice(kinds),
            "variants": [last] if rng.random() < 0.5 else [],
            "description": sentence(vocab.words(rng, 8)),
        }
        actors.append(
            {
                **record,
                "created_at": STAMP,
                "updated_at": STAMP,
                "content_hash": content_hash(record),
            }
        )
    return actors


# Facts ----------------------------------------------------------------------------------------


def make_date(rng: random.Random) -> dict | None:
    r = rng.random()
    if r < 0.04:
        return None
    if r < 0.08:
        return {
            "text": None,
            "value": None,
            "precision": "unknown",
            "inferred": False,
            "inference": None,
        }
    # 2010-2025, a third of them around the 2022 mobilisation
    if rng.random() < 0.33:
        day = dt.date(2022, 1, 1) + dt.timedelta(days=rng.randrange(730))
    else:
        day = dt.date(2010, 1, 1) + dt.timedelta(days=rng.randrange(5844))
    month = MONTHS[day.month - 1]
    inferred = rng.random() < 0.1
    if r < 0.13:  # day and month, year unknown
        value, precision, said = f"--{day:%m-%d}", "day", f"On {month} {day.day}"
        inferred = False
    elif r < 0.25:
        value, precision, said = f"{day.year}", "year", f"in {day.year}"
    elif r < 0.45:
        value, precision, said = f"{day:%Y-%m}", "month", f"in {month} {day.year}"
    else:
        value, precision, said = day.isoformat(), "day", f"On {month} {day.day}"
        if not inferred:
            said += f", {day.year}"
    return {
        "text": said,
        "value": value,
        "precision": precision,
        "inferred": inferred,
        "inference": "Year not stated; taken from the article's publication date."
        if inferred
        else None,
    }


# Which type each record index has: a fixed pattern of 20 (11 events, 3 of each other type),
# so that any chunk can be generated alone and refer to earlier records of a given type.
TYPE_PATTERN = ["event"] * 11 + ["decree"] * 3 + ["campaign"] * 3 + ["penalty"] * 3
RESIDUES = {t: [i for i, p in enumerate(TYPE_PATTERN) if p == t] for t in TYPE_WEIGHTS}


def fact_id(index: int) -> str:
    return f"{TYPE_PATTERN[index % 20]}-synthetic-{index + 1:07d}"


class FactMaker:
    """The facts of one chunk of record indexes, from a random stream of that chunk's own."""

    def __init__(self, rng, vocab, articles, sentences):
        self.rng, self.vocab = rng, vocab
        self.article_ids = [a["id"] for a in articles]
        self.sentences = sentences
        self.numbered = [[s for s in spans if s[3]] for spans in sentences]
        self.actor_ids = [f"synthetic-actor-{n:04d}" for n in range(1, N_ACTORS + 1)]
        self.actor_cum = list(accumulate(1 / (rank + 1) ** 0.9 for rank in range(N_ACTORS)))
        self.kind_cum = {
            t: list(accumulate(1 / (i + 1) ** 0.7 for i in range(len(kinds))))
            for t, kinds in KINDS.items()
        }
        self.place_df = Counter()
        self.common_df = 0
        self.index = 0

    def _earlier(self, fact_type: str) -> str | None:
        """A record of that type before the current one, if any."""
        blocks = self.index // 20 + 1
        candidate = self.rng.randrange(blocks) * 20 + self.rng.choice(RESIDUES[fact_type])
        return fact_id(candidate) if candidate < self.index else None

    def make(self, index: int):
        """One fact: (record, fact row, citation rows, actor link rows, search document row)."""
        rng, vocab = self.rng, self.vocab
        self.index = index
        fact_type = TYPE_PATTERN[index % 20]
        kinds = KINDS[fact_type]
        kind = rng.choices(kinds, cum_weights=self.kind_cum[fact_type])[0]
        record_id = fact_id(index)

        # citations: 1-3 sentences of one or two articles; decrees/campaigns quote a number first
        sources = []
        first_article = rng.randrange(N_ARTICLES)
        wants_number = fact_type in ("decree", "campaign") and rng.random() < 0.8
        number = None
        for position in range(rng.choice((1, 1, 2, 2, 2, 3))):
            article = first_article
            if position and rng.random() < 0.3:
                article = rng.randrange(N_ARTICLES)
            pool = self.sentences[article]
            if position == 0 and wants_number:
                pool = self.numbered[article]
            start, end, quote, stated = rng.choice(pool)
            article_id = self.article_ids[article]
            if any(s["start"] == start and s["article_id"] == article_id for s in sources):
                continue
            if position == 0:
                number = stated
            sources.append({"article_id": article_id, "quote": quote, "start": start, "end": end})

        place, other_place = rng.choice(vocab.places), rng.choice(vocab.places)
        self.place_df[place] += 1
        if other_place != place:
            self.place_df[other_place] += 1
        label = kind.replace("_", " ").capitalize()
        title = f"{label} in {place.capitalize()}: {' '.join(vocab.words(rng, rng.randint(4, 9)))}"
        title = title[:300]
        summary_words = vocab.words(rng, rng.randint(18, 40))
        summary_words[rng.randrange(len(summary_words))] = place
        summary_words.insert(rng.randrange(len(summary_words)), other_place)
        if rng.random() < 0.3:
            summary_words.insert(rng.randrange(len(summary_words)), COMMON_WORD)
            self.common_df += 1
        summary = sentence(summary_words)
        if rng.random() < 0.5:
            summary += " " + sentence(vocab.words(rng, rng.randint(8, 20)))
        notes = sentence(vocab.words(rng, rng.randint(6, 16))) if rng.random() < 0.3 else None
        date = make_date(rng)

        details = getattr(self, f"_{fact_type}")(number)
        actors, seen = [], set()
        for _ in range(rng.choice((0, 1, 1, 2, 2, 3))):
            actor = rng.choices(self.actor_ids, cum_weights=self.actor_cum)[0]
            if actor not in seen:
                seen.add(actor)
                actors.append({"id": actor, "role": rng.choice(ACTOR_ROLES)})

        record = {
            "id": record_id,
            "type": fact_type,
            "kind": kind,
            "title": title,
            "summary": summary,
            "notes": notes,
            "date": date,
            **details,
            "actors": actors,
            "contradicts": [],
            "sources": sources,
        }
        # The loader's own column mapping (date_min/date_max/sort keys, details): see fact_columns.
        fact = {
            **fact_columns(record),
            "created_at": STAMP,
            "updated_at": STAMP,
            "content_hash": content_hash(record),
        }
        citations = [{"fact_id": record_id, "position": i, **s} for i, s in enumerate(sources)]
        links = [
            {"fact_id": record_id, "actor_id": a["id"], "role": a["role"], "position": i}
            for i, a in enumerate(actors)
        ]
        # As api.search.fact_document: title, summary, quotes, notes.
        parts = [title, summary, *(s["quote"] for s in sources), notes or ""]
        body = "\n".join(p for p in parts if p)
        document = {
            "doc_type": fact_type,
            "doc_id": record_id,
            "title": title,
            "text": body,
            "tokens": " ".join(search.tokenize(body)),
        }
        return fact, citations, links, document

    def _quota(self, number: dict | None, measure: str = "quota") -> dict | None:
        return {**number, "measure": measure} if number else None

    def _age(self, low: bool) -> dict | None:
        if self.rng.random() < 0.5:
            return None
        value = self.rng.randint(18, 21) if low else self.rng.randint(27, 50)
        return quantity(self.rng, "age", value, "years") | {
            "qualifier": "exact",
            "text": str(value),
        }

    def _decree(self, number):
        rng = self.rng
        return {
            "status": rng.choice((*DECREE_STATUSES, None)),
            "orders": sentence(self.vocab.words(rng, rng.randint(6, 14)))
            if rng.random() < 0.8
            else None,
            "quota": self._quota(number),
            "period_end": make_date(rng) if rng.random() < 0.4 else None,
            "age_min": self._age(True),
            "age_max": self._age(False),
        }

    def _campaign(self, number):
        rng = self.rng
        comparisons = []
        for _ in range(rng.choice((0, 0, 1, 2))):
            figure = (
                quantity(rng, "quota_increase", rng.randint(1, 40) * 500, "men")
                if rng.random() < 0.5
                else None
            )
            comparisons.append(
                {
                    "text": sentence(self.vocab.words(rng, 8))[:-1],
                    "figure": figure,
                    "against": f"the {rng.choice(SEASONS)} {rng.randint(2010, 2024)} call-up",
                }
            )
        return {
            "end": make_date(rng) if rng.random() < 0.6 else None,
            "quota": self._quota(number),
            "age_min": self._age(True),
            "age_max": self._age(False),
            "notification_channels": sorted(rng.sample(CHANNELS, rng.randint(0, 3))),
            "decree": self._earlier("decree") if rng.random() < 0.6 else None,
            "comparisons": comparisons,
        }

    def _penalty(self, number):
        rng = self.rng
        years = rng.randint(1, 20)
        return {
            "punishment": f"up to {years} years in prison",
            "max_prison_years": {
                "measure": "max_prison_years",
                "value": years,
                "unit": "years",
                "qualifier": "at_most",
                "text": f"up to {years} years",
            }
            if rng.random() < 0.8
            else None,
            "applies_during": sorted(rng.sample(PENALTY_CONDITIONS, rng.randint(1, 3))),
            "act": self._earlier("decree") if rng.random() < 0.5 else None,
            "cases": sorted(
                {e for e in (self._earlier("event") for _ in range(rng.randint(0, 2))) if e}
            ),
        }

    def _event(self, number):
        rng = self.rng
        figures = [
            quantity(
                rng,
                rng.choice(("detained", "casualties", "enlisted", "left")),
                rng.randint(1, 5000) * 10,
                "people",
            )
            for _ in range(rng.choice((0, 0, 1, 2)))
        ]
        return {"figures": figures, "reported": make_date(rng) if rng.random() < 0.2 else None}


# Rows -----------------------------------------------------------------------------------------

TABLES = {
    "articles": Article.__table__,
    "actors": Actor.__table__,
    "facts": Fact.__table__,
    "citations": Citation.__table__,
    "fact_actors": FactActor.__table__,
    "contradictions": Contradiction.__table__,
    "search_documents": SearchDocument.__table__,
    "dataset_state": DatasetState.__table__,
}
ID_BLOCK = 4  # integer ids of citations per record index: at most 3 are used
# Columns the records leave to their defaults: every synthetic record is at its first version;
# the feed's state is an origin's (no history before 0, mirroring nothing).
DEFAULTS = {"version": 1, "history_from": 0, "mirror_of": None}


def row_converter(dialect_name: str):
    """dict -> tuple in table column order, in what the driver takes.

    SQLite: exactly what SQLAlchemy would bind (its own bind processors: JSON text, dates as
    ISO text, UTC datetimes). PostgreSQL COPY: JSON as text, other values as they are.
    """
    if dialect_name == "sqlite":
        from sqlalchemy.dialects import sqlite

        dialect = sqlite.dialect()
        processors = {
            name: [(c.name, c.type._cached_bind_processor(dialect), c.type) for c in table.columns]
            for name, table in TABLES.items()
        }
    else:
        processors = {
            name: [
                (c.name, _dump_json if isinstance(c.type, JSON) else None, c.type)
                for c in table.columns
            ]
            for name, table in TABLES.items()
        }

    def convert(name: str, row: dict) -> tuple:
        out = []
        for column, process, column_type in processors[name]:
            value = row.get(column, DEFAULTS.get(column))
            if value is None and isinstance(column_type, JSON) and column_type.none_as_null:
                out.append(None)
            else:
                out.append(process(value) if process else value)
        return tuple(out)

    return convert


def _dump_json(value) -> str:
    return json.dumps(value)


# One chunk of records, made in a worker process ------------------------------------------------

_STATE: dict = {}


def _init_worker(seed: int, dialect_name: str) -> None:
    rng = random.Random(seed)
    vocab = Vocabulary(rng)
    articles, sentences = make_articles(rng, vocab)
    _STATE.update(
        seed=seed,
        vocab=vocab,
        articles=articles,
        sentences=sentences,
        convert=row_converter(dialect_name),
    )


def make_chunk(bounds: tuple[int, int]) -> dict:
    """Rows of records [start, end), ready for the driver, and their search statistics."""
    start, end = bounds
    rng = random.Random(_STATE["seed"] * 1_000_003 + start)
    maker = FactMaker(rng, _STATE["vocab"], _STATE["articles"], _STATE["sentences"])
    convert = _STATE["convert"]
    rows = {name: [] for name in ("facts", "citations", "fact_actors", "search_documents")}
    contradictions, last_of_type = [], {}
    for index in range(start, end):
        fact, citations, links, document = maker.make(index)
        rows["facts"].append(convert("facts", fact))
        for i, citation in enumerate(citations):
            citation["id"] = index * ID_BLOCK + i + 1
            rows["citations"].append(convert("citations", citation))
        rows["fact_actors"] += [convert("fact_actors", link) for link in links]
        document["id"] = index + 1
        rows["search_documents"].append(convert("search_documents", document))
        # ~2 % of the records: in a pair with the previous one of its type, contradicting each other
        previous = last_of_type.get(fact["type"])
        if previous and rng.random() < 0.01:
            contradictions += [(fact["id"], previous), (previous, fact["id"])]
            last_of_type.pop(fact["type"])
        else:
            last_of_type[fact["type"]] = fact["id"]
    rows["contradictions"] = [
        convert("contradictions", {"fact_id": a, "other_id": b}) for a, b in contradictions
    ]
    return {
        "rows": rows,
        "place_df": maker.place_df,
        "common_df": maker.common_df,
        "pairs": len(contradictions) // 2,
    }


# Stored representations ------------------------------------------------------------------------

FORMS_BATCH = 2000


def _init_renderer(url_text: str) -> None:
    _STATE["app"] = create_app({"DATABASE_URL": url_text})


def render_forms(ids: list[str]) -> list[tuple[str, str, str]]:
    """(json_form, csv_form, id) of these facts, rendered by the app's own schemas
    (records.store_forms) from the rows just written."""
    app = _STATE["app"]
    with app.app_context(), Session(app.extensions["db"].kw["bind"]) as session:
        stmt = select(Fact).where(Fact.id.in_(ids)).options(*store.FACT_LOADING)
        out = []
        for row in session.scalars(stmt).unique():
            records.store_forms(row.type, row)
            out.append((row.json_form, row.csv_form, row.id))
        session.rollback()  # the forms are written by the parent, in one writer
        return out


def store_forms(engine, url_text: str, workers: int) -> None:
    """What the app stores with every record when it changes: rendered in worker processes,
    written here."""
    with engine.connect() as connection:
        ids = list(connection.execute(text("SELECT id FROM facts ORDER BY id")).scalars())
    batches = [ids[i : i + FORMS_BATCH] for i in range(0, len(ids), FORMS_BATCH)]
    update = text("UPDATE facts SET json_form = :json, csv_form = :csv WHERE id = :id")
    context = multiprocessing.get_context("spawn")  # an app of its own: no inherited pools
    with (
        context.Pool(workers, initializer=_init_renderer, initargs=(url_text,)) as pool,
        engine.begin() as connection,
    ):
        for forms in pool.imap_unordered(render_forms, batches):
            connection.execute(update, [{"json": j, "csv": c, "id": i} for j, c, i in forms])
    app = create_app({"DATABASE_URL": url_text})  # articles and actors: few
    with app.app_context(), Session(app.extensions["db"].kw["bind"]) as session:
        records.store_missing_forms(session)
        session.commit()
    app.extensions["db"].kw["bind"].dispose()


# Writing --------------------------------------------------------------------------------------


class Writer:
    """Batched inserts: DB-API executemany on SQLite, COPY on PostgreSQL."""

    def __init__(self, engine):
        self.engine = engine
        self.dialect = engine.dialect.name
        self.counts = Counter()
        self.seconds = Counter()

    def write(self, name: str, rows: list[tuple]) -> None:
        if not rows:
            return
        started = time.perf_counter()
        self.counts[name] += len(rows)
        columns = [c.name for c in TABLES[name].columns]
        quoted = ", ".join(f'"{c}"' for c in columns)
        with self.engine.begin() as connection:
            cursor = connection.connection.dbapi_connection.cursor()
            if self.dialect == "sqlite":
                marks = ", ".join("?" for _ in columns)
                cursor.executemany(f"INSERT INTO {name} ({quoted}) VALUES ({marks})", rows)
            else:
                with cursor.copy(f"COPY {name} ({quoted}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            cursor.close()
        self.seconds[name] += time.perf_counter() - started


def _postgres_prepare(url, replace: bool) -> None:
    """Create the database (dropping it first with --replace)."""
    admin = url.set(drivername="postgresql", database="postgres").render_as_string(False)
    with psycopg.connect(admin, autocommit=True) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (url.database,)
        ).fetchone()
        if exists and replace:
            connection.execute(f'DROP DATABASE "{url.database}" WITH (FORCE)')
        if not exists or replace:
            connection.execute(f'CREATE DATABASE "{url.database}"')


def _secondary_objects(connection) -> list[tuple[str, str, str]]:
    """(INDEX or TRIGGER, name, CREATE statement) of what a bulk load had better make last:
    indexes that back no constraint, and on SQLite the triggers that feed search_fts."""
    if connection.dialect.name == "sqlite":
        rows = connection.execute(
            text(
                "SELECT upper(type), name, sql FROM sqlite_master "
                "WHERE type IN ('index', 'trigger') AND sql IS NOT NULL "
                "AND name NOT LIKE 'sqlite_%' ORDER BY type, name"
            )
        )
    else:
        rows = connection.execute(
            text(
                "SELECT 'INDEX', i.indexname, i.indexdef FROM pg_indexes i "
                "WHERE i.schemaname = current_schema() AND NOT EXISTS "
                "(SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)"
            )
        )
    return [tuple(row) for row in rows]


def generate(
    url_text: str,
    records: int,
    seed: int,
    replace: bool,
    manifest_path: Path | None,
    workers: int,
) -> dict:
    url_text = database_url(url_text)
    url = make_url(url_text)
    if url_text == database_url(default_database_url()):
        sys.exit("Refusing to write synthetic records into the app's own database.")
    timings: dict[str, float] = {}
    started = time.perf_counter()

    if url.get_backend_name() == "sqlite":
        path = Path(url.database)
        if path.exists():
            if not replace:
                sys.exit(f"{path} exists: pass --replace to rebuild it.")
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
    else:
        _postgres_prepare(url, replace)

    # The schema, by the app's own migrations.
    app = create_app({"DATABASE_URL": url_text})
    with app.app_context():
        upgrade_database()
    app.extensions["db"].kw["bind"].dispose()
    engine = create_engine(url_text)
    with engine.connect() as connection:
        if connection.execute(text("SELECT count(*) FROM facts")).scalar():
            sys.exit("The database already holds records: pass --replace to rebuild it.")
        # Migration 0005 makes the state row that every write locks; the load writes its own.
        connection.execute(text("DELETE FROM dataset_state"))
        connection.commit()
    timings["schema"] = time.perf_counter() - started

    # Bulk load: secondary indexes (and SQLite's full-text triggers) are dropped and made again
    # once at the end from their exact stored definitions; PostgreSQL's FK triggers are off.
    with engine.begin() as connection:
        dropped = _secondary_objects(connection)
        for kind, name, _ in dropped:
            connection.execute(text(f'DROP {kind} "{name}"'))
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _fast(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=OFF")
            cursor.execute("PRAGMA cache_size=-262144")  # 256 MB
            cursor.close()

    else:

        @event.listens_for(engine, "connect")
        def _replica(dbapi_connection, _record):
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SET session_replication_role = replica")

    engine.dispose()

    t = time.perf_counter()
    _init_worker(seed, engine.dialect.name)
    convert = _STATE["convert"]
    articles = _STATE["articles"]
    actors = make_actors(random.Random(seed + 1), _STATE["vocab"])
    writer = Writer(engine)
    writer.write("articles", [convert("articles", a) for a in articles])
    writer.write("actors", [convert("actors", a) for a in actors])
    place_df, common_df, pairs = Counter(), 0, 0
    chunks = [(s, min(records, s + BATCH)) for s in range(0, records, BATCH)]
    # Workers make the rows (forked: they share the vocabulary and articles), this process
    # writes them: generation and insertion overlap.
    context = multiprocessing.get_context("fork")
    with context.Pool(
        workers, initializer=_init_worker, initargs=(seed, engine.dialect.name)
    ) as pool:
        for done, chunk in enumerate(pool.imap(make_chunk, chunks), 1):
            for name in ("facts", "citations", "fact_actors", "contradictions", "search_documents"):
                writer.write(name, chunk["rows"][name])
            place_df.update(chunk["place_df"])
            common_df += chunk["common_df"]
            pairs += chunk["pairs"]
            if done % 10 == 0 or done == len(chunks):
                print(
                    f"  {chunks[done - 1][1]:,} records ({time.perf_counter() - t:.0f} s)",
                    file=sys.stderr,
                )
    documents = []
    for n, article in enumerate(articles, 1):
        body = "\n".join(p for p in (article["title"], article["headline"], article["text"]) if p)
        document = {
            "id": records + n,
            "doc_type": "article",
            "doc_id": article["id"],
            "title": article["title"],
            "text": body,
            "tokens": " ".join(search.tokenize(body)),
        }
        documents.append(convert("search_documents", document))
    writer.write("search_documents", documents)
    writer.write(
        "dataset_state", [convert("dataset_state", {"id": 1, "revision": 1, "changed_at": STAMP})]
    )
    timings["insert"] = time.perf_counter() - t

    t = time.perf_counter()
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            connection.exec_driver_sql("INSERT INTO search_fts(search_fts) VALUES ('rebuild')")
        for _kind, _name, definition in dropped:
            connection.exec_driver_sql(definition)
        if engine.dialect.name == "postgresql":
            for name, last in (
                ("citations", records * ID_BLOCK),
                ("search_documents", records + len(articles)),
            ):
                connection.execute(
                    text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), :n)"),
                    {"n": max(last, 1)},
                )
    timings["indexes"] = time.perf_counter() - t

    t = time.perf_counter()
    store_forms(engine, url_text, workers)
    timings["stored_forms"] = time.perf_counter() - t

    t = time.perf_counter()
    with Session(engine) as session:  # the whole collections' facets, as writes keep them
        store.count_facets_anew(session)
        session.commit()
    timings["facet_counts"] = time.perf_counter() - t

    t = time.perf_counter()
    with Session(engine) as session:  # the frequent words' postings, as migration 0014 makes
        search.index_words(session)
        session.commit()
    timings["search_postings"] = time.perf_counter() - t

    t = time.perf_counter()
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            # Left in WAL mode, as the app's migrations leave it, with an empty log.
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    else:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE")
    timings["vacuum"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - started
    engine.dispose()

    # What the benchmark asks for: sample ids, a selective and a common search term.
    median_df = sorted(place_df.values())[len(place_df) // 2]
    rank = {word: i for i, word in enumerate(_STATE["vocab"].places)}
    selective = min((w for w, n in place_df.items() if n == median_df), key=rank.get)
    manifest = {
        "generator_version": GENERATOR_VERSION,
        "code_fingerprint": code_fingerprint(),
        "records": records,
        "seed": seed,
        "backend": engine.dialect.name,
        "database": url.render_as_string(hide_password=True),
        "counts": dict(writer.counts),
        "facts_by_type": dict(Counter(TYPE_PATTERN[i % 20] for i in range(records))),
        "contradiction_pairs": pairs,
        "seconds": {k: round(v, 1) for k, v in timings.items()},
        "write_seconds": {k: round(v, 1) for k, v in writer.seconds.items()},
        "samples": {
            **{f"{t}_id": fact_id(RESIDUES[t][0]) for t in TYPE_WEIGHTS},
            "actor_popular": "synthetic-actor-0001",
            "actor_mid": "synthetic-actor-0030",
            "article": "synthetic-article-001",
            "search_selective": selective,
            "search_selective_documents": place_df[selective],
            "search_common": COMMON_WORD,
            "search_common_documents": common_df,
        },
    }
    if manifest_path is None:
        manifest_path = default_manifest_path(url_text)
    manifest_path.parent.mkdir(parents=True, exist_ok=True)
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def code_fingerprint() -> str:
    """A digest of what decides the rows: the schema, the loader's mapping, the tokenizer, this.

    The benchmark regenerates a cached database when it changes.
    """
    files = sorted((PROJECT_DIR / "api" / "migrations" / "versions").glob("*.py"))
    files += [
        PROJECT_DIR / "api" / name
        for name in ("models.py", "dataset.py", "search.py", "records.py", "formats.py")
    ]
    # What the stored forms show: every schema but the query parameters'.
    files += sorted(p for p in (PROJECT_DIR / "schemas").glob("*.py") if p.name != "queries.py")
    files += [Path(__file__).resolve()]
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def default_manifest_path(url_text: str) -> Path:
    url = make_url(database_url(url_text))
    if url.get_backend_name() == "sqlite":
        return Path(f"{url.database}.manifest.json")
    return BENCH_DIR / "results" / "db" / f"postgresql-{url.database}.manifest.json"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True, help="sqlite:///path or postgresql://…")
    parser.add_argument("--records", type=int, required=True, help="number of fact records")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--replace", action="store_true", help="rebuild an existing database")
    parser.add_argument("--manifest", type=Path, default=None, help="where to write the manifest")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 2, help="processes making rows"
    )
    args = parser.parse_args(argv)
    manifest = generate(
        args.database_url, args.records, args.seed, args.replace, args.manifest, args.workers
    )
    print(json.dumps(manifest, indent=2))


if __name__ == "__main__":
    main()

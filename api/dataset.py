"""The curated dataset in `data/`: reading it, checking it, and loading it into the database.

A load is all or nothing: the whole dataset is read and checked before anything is written,
and the writes happen in one transaction. A dataset with any problem is refused.
"""

import hashlib
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import marshmallow as ma
import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from schemas.actors import ActorSchema
from schemas.articles import ArticleSchema
from schemas.common import date_bounds
from schemas.facts import COLLECTIONS, FACT_SCHEMAS, FactSchema, detail_fields

from . import search, store
from .models import UNDATED, UNDATED_DESC, Actor, Article, Citation, Fact, FactActor, utcnow

ARTICLES_FILE = "articles.yaml"
ACTORS_FILE = "actors.yaml"
FACT_FILES = {fact_type: f"{collection}.yaml" for fact_type, collection in COLLECTIONS.items()}


@dataclass(frozen=True)
class Problem:
    file: str
    record: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.record}: {self.message}"


class DatasetError(Exception):
    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(problem) for problem in problems))


@dataclass
class Dataset:
    articles: dict[str, dict[str, Any]] = field(default_factory=dict)
    actors: dict[str, dict[str, Any]] = field(default_factory=dict)
    # fact id -> (type, record)
    facts: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


def _flatten(messages: Any, path: str = "") -> list[str]:
    """marshmallow's nested error dict as 'field.sub: message' lines."""
    if isinstance(messages, dict):
        return [
            line
            for key, value in messages.items()
            for line in _flatten(value, f"{path}.{key}" if path else str(key))
        ]
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return [f"field '{path}': {' '.join(messages)}"]
    return [f"field '{path}': {messages}"]


def _read_records(data_dir: Path, name: str, schema: ma.Schema, dataset: Dataset):
    """Yield (id, loaded record) for each valid record of a YAML list file."""
    path = data_dir / name
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        dataset.problems.append(Problem(name, "-", f"cannot read: {error}"))
        return
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        dataset.problems.append(Problem(name, "-", "must be a YAML list of records"))
        return
    seen: set[str] = set()
    for index, item in enumerate(raw):
        record_id = item.get("id") if isinstance(item, dict) else None
        label = str(record_id or f"record #{index + 1}")
        try:
            record = schema.load(item)
        except ma.ValidationError as error:
            dataset.problems.extend(Problem(name, label, line) for line in _flatten(error.messages))
            continue
        if record["id"] in seen:
            dataset.problems.append(Problem(name, label, "duplicate id"))
            continue
        seen.add(record["id"])
        yield record["id"], record


def read_dataset(data_dir: Path) -> Dataset:
    """Read and validate every file; problems are collected, not raised."""
    dataset = Dataset()
    for article_id, record in _read_records(data_dir, ARTICLES_FILE, ArticleSchema(), dataset):
        try:
            raw = (data_dir / record["file"]).read_bytes()
            text = raw.decode("utf-8")
        except (OSError, UnicodeDecodeError) as error:
            dataset.problems.append(
                Problem(ARTICLES_FILE, article_id, f"cannot read text: {error}")
            )
            continue
        record.update(
            text=text, sha256=hashlib.sha256(raw).hexdigest(), word_count=len(text.split())
        )
        dataset.articles[article_id] = record
    for actor_id, record in _read_records(data_dir, ACTORS_FILE, ActorSchema(), dataset):
        dataset.actors[actor_id] = record
    for fact_type, name in FACT_FILES.items():
        for fact_id, record in _read_records(data_dir, name, FACT_SCHEMAS[fact_type](), dataset):
            if fact_id in dataset.facts:
                dataset.problems.append(Problem(name, fact_id, "id already used by another record"))
                continue
            dataset.facts[fact_id] = (fact_type, record)
    return dataset


# The check ------------------------------------------------------------------------------------


def _stated_texts(record: dict[str, Any]):
    """(where, text) for every date and number text in a record, however deeply nested."""

    def walk(value: Any, where: str):
        if isinstance(value, dict):
            if "text" in value and ("precision" in value or "qualifier" in value):
                if value["text"]:
                    yield where, value["text"]
            for key, item in value.items():
                yield from walk(item, f"{where}.{key}" if where else key)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                yield from walk(item, f"{where}[{index}]")

    return walk({k: v for k, v in record.items() if k != "sources"}, "")


def check_dataset(dataset: Dataset) -> list[Problem]:
    """Every problem with the dataset: citations, references, duplicates, coverage."""
    problems = list(dataset.problems)
    facts = dataset.facts
    cited_articles: set[str] = set()
    involved_actors: set[str] = set()
    by_citations: dict[tuple, list[str]] = defaultdict(list)

    for fact_id, (fact_type, record) in facts.items():
        name = FACT_FILES[fact_type]

        def problem(message: str, name: str = name, fact_id: str = fact_id) -> None:
            problems.append(Problem(name, fact_id, message))

        for citation in record["sources"]:
            article = dataset.articles.get(citation["article_id"])
            quote = citation["quote"]
            if article is None:
                problem(f"cites unknown article {citation['article_id']!r} (quote {quote!r})")
                continue
            cited_articles.add(article["id"])
            found = article["text"][citation["start"] : citation["end"]]
            if found != quote:
                problem(
                    f"quote is not verbatim in article {article['id']!r} at "
                    f"[{citation['start']}, {citation['end']}): "
                    f"quote {quote!r}, text there {found!r}"
                )
        quotes = [citation["quote"] for citation in record["sources"]]
        for where, text in _stated_texts(record):
            if not any(text in quote for quote in quotes):
                problem(f"{where} text {text!r} appears in none of the record's quotes")

        for ref in record["actors"]:
            involved_actors.add(ref["id"])
            if ref["id"] not in dataset.actors:
                problem(f"unknown actor {ref['id']!r}")
        for other in record["contradicts"]:
            if other == fact_id:
                problem("contradicts itself")
            elif other not in facts:
                problem(f"contradicts unknown record {other!r}")
            elif fact_id not in facts[other][1]["contradicts"]:
                problem(f"contradicts {other!r}, which does not list it back")
        for key, target_type, targets in (
            ("decree", "decree", [record.get("decree")]),
            ("act", "decree", [record.get("act")]),
            ("cases", "event", record.get("cases", [])),
        ):
            for target in filter(None, targets):
                if facts.get(target, ("", None))[0] != target_type:
                    problem(f"{key} refers to {target!r}, which is not a known {target_type}")

        spans = tuple(sorted((c["article_id"], c["start"], c["end"]) for c in record["sources"]))
        by_citations[(fact_type, spans)].append(fact_id)

    for (fact_type, _), ids in by_citations.items():
        if len(ids) > 1:
            problems.append(
                Problem(
                    FACT_FILES[fact_type], ids[0], f"duplicate fact: same citations as {ids[1:]}"
                )
            )
    for article_id in dataset.articles.keys() - cited_articles:
        problems.append(Problem(ARTICLES_FILE, article_id, "no record cites this article"))
    for actor_id in dataset.actors.keys() - involved_actors:
        problems.append(Problem(ACTORS_FILE, actor_id, "no record involves this actor"))
    return problems


# Loading ----------------------------------------------------------------------------------------


def content_hash(record: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()


# Fields of every fact type that are columns of `facts` (the children are rows of their own).
_FACT_COLUMNS = [
    name
    for name, field in FactSchema._declared_fields.items()
    if not field.dump_only and name not in ("sources", "actors", "contradicts")
]


def _fact_columns(record: dict[str, Any]) -> dict[str, Any]:
    fact_type = record["type"]
    schema = FACT_SCHEMAS[fact_type]
    details = {key: record[key] for key in sorted(detail_fields(schema)) if key in record}
    date_value = record["date"]
    date_min, date_max = (
        date_bounds(date_value["value"], date_value["precision"]) if date_value else (None, None)
    )
    common = {key: record[key] for key in _FACT_COLUMNS if key in record}
    return {
        **common,
        "type": fact_type,
        "details": details,
        "date_min": date_min,
        "date_max": date_max,
        "date_sort": date_min or UNDATED,
        "date_sort_desc": date_min or UNDATED_DESC,
    }


def _fact_children(fact: Fact, record: dict[str, Any]) -> None:
    fact.sources = [Citation(position=i, **c) for i, c in enumerate(record["sources"])]
    fact.actors = [
        FactActor(position=i, actor_id=ref["id"], role=ref["role"])
        for i, ref in enumerate(record["actors"])
    ]
    fact.contradicts = list(record["contradicts"])


@dataclass
class LoadReport:
    counts: Counter = field(default_factory=Counter)

    def __str__(self) -> str:
        parts = [
            f"{entity}: {', '.join(f'{n} {what}' for what, n in sorted(changes.items()))}"
            for entity, changes in self.by_entity().items()
        ]
        return "; ".join(parts)

    def by_entity(self) -> dict[str, dict[str, int]]:
        grouped: dict[str, dict[str, int]] = defaultdict(dict)
        for (entity, what), n in sorted(self.counts.items()):
            grouped[entity][what] = n
        return dict(grouped)

    @property
    def changed(self) -> int:
        return sum(n for (_, what), n in self.counts.items() if what != "unchanged")


@dataclass
class _Changes:
    changed: list = field(default_factory=list)  # rows created or updated
    stale: list = field(default_factory=list)  # rows no longer in the dataset


def _sync(session: Session, model, wanted: dict[str, dict], columns, children, report) -> _Changes:
    """Create and update rows of `model` to match `wanted`; rows left over are returned, stale."""
    entity, changes = model.__tablename__, _Changes()
    existing = {row.id: row for row in session.scalars(select(model))}
    now = utcnow()
    for record_id, record in wanted.items():
        digest = content_hash(record)
        row = existing.get(record_id)
        if row is not None and row.content_hash == digest:
            report.counts[entity, "unchanged"] += 1
            continue
        if row is None:
            row = model(id=record_id, created_at=now)
            session.add(row)
            report.counts[entity, "created"] += 1
        else:
            report.counts[entity, "updated"] += 1
        for key, value in columns(record).items():
            setattr(row, key, value)
        row.content_hash, row.updated_at = digest, now
        if children:
            children(row, record)
        changes.changed.append(row)
    changes.stale = [row for record_id, row in existing.items() if record_id not in wanted]
    return changes


def load_dataset(session: Session, dataset: Dataset) -> LoadReport:
    """Make the database hold exactly the dataset. The caller owns the transaction."""
    problems = check_dataset(dataset)
    if problems:
        raise DatasetError(problems)
    report = LoadReport()
    articles = _sync(session, Article, dataset.articles, dict, None, report)
    actors = _sync(session, Actor, dataset.actors, dict, None, report)
    facts = _sync(
        session,
        Fact,
        {fact_id: {**record, "type": t} for fact_id, (t, record) in dataset.facts.items()},
        _fact_columns,
        _fact_children,
        report,
    )
    session.flush()
    # Facts go first: they are what cites articles and involves actors.
    for row in facts.stale + articles.stale + actors.stale:
        session.delete(row)
        report.counts[row.__tablename__, "deleted"] += 1
        session.flush()
    search.reindex(
        session,
        [search.fact_document(f) for f in facts.changed]
        + [search.article_document(a) for a in articles.changed],
        [(f.type, f.id) for f in facts.stale] + [("article", a.id) for a in articles.stale],
    )
    if report.changed:
        store.bump_revision(session)
    return report

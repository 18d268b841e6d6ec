"""The curated dataset in `data/`: reading it, checking it, and loading it into the database.

A load is all or nothing: the whole dataset is read and checked before anything is written,
and the writes happen in one transaction. A dataset with any problem is refused.
"""

import datetime as dt
import hashlib
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import marshmallow as ma
import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from schemas.actors import ActorSchema
from schemas.articles import ArticleSchema
from schemas.facts import COLLECTIONS, FACT_SCHEMAS
from schemas.writes import RECORD_COLLECTIONS

from . import records, store
from .models import Actor, Article, Fact, Revision

ARTICLES_FILE = "articles.yaml"
ACTORS_FILE = "actors.yaml"
FACT_FILES = {fact_type: f"{collection}.yaml" for fact_type, collection in COLLECTIONS.items()}
# When each record was first stored and last changed, by collection and id: kept beside the
# records so that a database loaded from an export shows the same times as the original.
TIMESTAMPS_FILE = "timestamps.yaml"
_OFFSETS = "Citation offsets are Python str (code point) offsets."
HEADERS = {
    ARTICLES_FILE: (
        "# The source articles. `file` is the text, byte-for-byte as received; everything else is\n"
        "# metadata, stated only as far as the text itself gives it. `title` is always ours "
        "(a label\n"
        "# for lists); `headline`, `outlet` and `byline` are null unless the text carries them."
    ),
    ACTORS_FILE: "# Actors (people, organisations, places, systems): see docs/dataset-review.md. "
    + _OFFSETS,
    FACT_FILES["decree"]: "# Decrees, laws, orders and policies: see docs/dataset-review.md. "
    + _OFFSETS,
    FACT_FILES["campaign"]: "# Call-ups, mobilisations and recruitment campaigns: see "
    "docs/dataset-review.md. " + _OFFSETS,
    FACT_FILES["penalty"]: "# Penalties for evading or refusing service: see "
    "docs/dataset-review.md. " + _OFFSETS,
    FACT_FILES["event"]: "# Events: statements, denials, protests, estimates, etc.: see "
    "docs/dataset-review.md. " + _OFFSETS,
    TIMESTAMPS_FILE: "# When each record was first stored and last changed (written by "
    "`flask data export`).",
}


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
    # collection -> id -> {"created_at": datetime, "updated_at": datetime}
    timestamps: dict[str, dict[str, dict]] = field(default_factory=dict)
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
    dataset.timestamps = _read_timestamps(data_dir, dataset)
    return dataset


def _read_timestamps(data_dir: Path, dataset: Dataset) -> dict[str, dict[str, dict]]:
    path = data_dir / TIMESTAMPS_FILE
    if not path.exists():
        return {}
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return {
            collection: {
                record_id: {key: dt.datetime.fromisoformat(value) for key, value in times.items()}
                for record_id, times in records_times.items()
            }
            for collection, records_times in raw.items()
        }
    except (OSError, yaml.YAMLError, AttributeError, TypeError, ValueError) as error:
        dataset.problems.append(Problem(TIMESTAMPS_FILE, "-", f"cannot read: {error}"))
        return {}


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


def record_problems(
    fact_id: str,
    record: dict[str, Any],
    *,
    article_text: Callable[[str], str | None],
    actor_exists: Callable[[str], bool],
    type_of: Callable[[str], str | None],
) -> list[tuple[str, str]]:
    """(field path, message) for every rule one fact record breaks, given lookups of what
    it refers to: the rules of `data check` and of every write through the API."""
    problems = []
    for i, citation in enumerate(record["sources"]):
        text = article_text(citation["article_id"])
        quote = citation["quote"]
        if text is None:
            problems.append(
                (
                    f"sources[{i}].article_id",
                    f"cites unknown article {citation['article_id']!r} (quote {quote!r})",
                )
            )
            continue
        found = text[citation["start"] : citation["end"]]
        if found != quote:
            problems.append(
                (
                    f"sources[{i}].quote",
                    f"quote is not verbatim in article {citation['article_id']!r} at "
                    f"[{citation['start']}, {citation['end']}): "
                    f"quote {quote!r}, text there {found!r}",
                )
            )
    spans = [(c["article_id"], c["start"], c["end"]) for c in record["sources"]]
    for i, span in enumerate(spans):
        if span in spans[:i]:
            problems.append((f"sources[{i}]", "cites the same passage twice"))
    quotes = [citation["quote"] for citation in record["sources"]]
    for where, text in _stated_texts(record):
        if not any(text in quote for quote in quotes):
            problems.append(
                (f"{where}.text", f"{where} text {text!r} appears in none of the record's quotes")
            )
    seen_refs = set()
    for i, ref in enumerate(record["actors"]):
        if not actor_exists(ref["id"]):
            problems.append((f"actors[{i}].id", f"unknown actor {ref['id']!r}"))
        if (ref["id"], ref["role"]) in seen_refs:
            problems.append(
                (f"actors[{i}]", f"actor {ref['id']!r} is listed twice as {ref['role']}")
            )
        seen_refs.add((ref["id"], ref["role"]))
    for i, other in enumerate(record["contradicts"]):
        if other == fact_id:
            problems.append((f"contradicts[{i}]", "contradicts itself"))
        elif type_of(other) is None:
            problems.append((f"contradicts[{i}]", f"contradicts unknown record {other!r}"))
        elif other in record["contradicts"][:i]:
            problems.append((f"contradicts[{i}]", f"{other!r} is listed twice"))
    for key, target_type, targets in (
        ("decree", "decree", [record.get("decree")]),
        ("act", "decree", [record.get("act")]),
        ("cases", "event", record.get("cases", [])),
    ):
        for i, target in enumerate(targets):
            if target is not None and type_of(target) != target_type:
                where = f"{key}[{i}]" if key == "cases" else key
                problems.append(
                    (where, f"{key} refers to {target!r}, which is not a known {target_type}")
                )
    return problems


def check_dataset(dataset: Dataset) -> list[Problem]:
    """Every problem with the dataset: citations, references, duplicates."""
    problems = list(dataset.problems)
    facts = dataset.facts
    by_citations: dict[tuple, list[str]] = defaultdict(list)

    def article_text(article_id: str) -> str | None:
        return dataset.articles.get(article_id, {}).get("text")

    def type_of(fact_id: str) -> str | None:
        return facts.get(fact_id, (None,))[0]

    for fact_id, (fact_type, record) in facts.items():
        found = record_problems(
            fact_id,
            record,
            article_text=article_text,
            actor_exists=dataset.actors.__contains__,
            type_of=type_of,
        )
        problems += [Problem(FACT_FILES[fact_type], fact_id, message) for _, message in found]
        for other in record["contradicts"]:
            if other in facts and fact_id not in facts[other][1]["contradicts"]:
                problems.append(
                    Problem(
                        FACT_FILES[fact_type],
                        fact_id,
                        f"contradicts {other!r}, which does not list it back",
                    )
                )
        by_citations[citation_spans(record["sources"])].append(fact_id)

    # One passage states one fact: two records citing the same passages, whatever their
    # types, are one fact recorded twice, unless one is the decree the other refers to.
    for ids in by_citations.values():
        for i, fact_id in enumerate(ids):
            twins = [
                other
                for other in ids[i + 1 :]
                if not refers_to(facts[fact_id][1], other)
                and not refers_to(facts[other][1], fact_id)
            ]
            if twins:
                problems.append(
                    Problem(
                        FACT_FILES[facts[fact_id][0]],
                        fact_id,
                        f"duplicate fact: same citations as {twins}",
                    )
                )
    return problems


def refers_to(record: dict[str, Any], other_id: str) -> bool:
    """Whether the record names the other as the decree that orders it or the act that sets
    it: a decree and a penalty it sets may rest on the same sentence and be two facts."""
    return other_id in (record.get("decree"), record.get("act"))


def citation_spans(sources: list[dict[str, Any]]) -> tuple:
    """What identifies a fact's evidence: the passages it cites, in any order."""
    return tuple(sorted({(c["article_id"], c["start"], c["end"]) for c in sources}))


def coverage_problems(dataset: Dataset) -> list[Problem]:
    """Articles that no record cites and actors that none involves.

    `data check` refuses them, as a review of data/; a load does not, since a database
    curated through the API may hold an article that nothing cites yet.
    """
    cited = {c["article_id"] for _, record in dataset.facts.values() for c in record["sources"]}
    involved = {ref["id"] for _, record in dataset.facts.values() for ref in record["actors"]}
    return [
        Problem(ARTICLES_FILE, article_id, "no record cites this article")
        for article_id in sorted(dataset.articles.keys() - cited)
    ] + [
        Problem(ACTORS_FILE, actor_id, "no record involves this actor")
        for actor_id in sorted(dataset.actors.keys() - involved)
    ]


# Loading ----------------------------------------------------------------------------------------

LOAD_SUMMARY = "Loaded from data/ by `flask data load`."


class LoadConflict(Exception):
    """The load would overwrite or delete records whose latest change was made through the API."""

    def __init__(self, records: list[str]):
        self.records = records
        super().__init__(", ".join(records))


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
class _Loader:
    session: Session
    changes: records.ChangeSet
    timestamps: dict[str, dict[str, dict]]
    over_api_edits: bool
    report: LoadReport = field(default_factory=LoadReport)
    conflicts: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.latest = records.last_versions(self.session)

    def edited_through_api(self, record_type: str, record_id: str) -> bool:
        latest = self.latest.get((record_type, record_id))
        return latest is not None and latest[1] is not None

    def sync(self, model, wanted: dict[str, dict], record_type, write) -> list:
        """Create and update rows of `model` to match `wanted`; rows left over are returned."""
        entity = model.__tablename__
        existing = {row.id: row for row in self.session.scalars(select(model))}
        for record_id, record in wanted.items():
            kind = record_type(record)
            row = existing.get(record_id)
            if row is not None and row.content_hash == records.content_hash(record):
                if (kind, record_id) not in self.latest:  # stored before history was kept
                    self.changes.adopting(kind, row)
                self.report.counts[entity, "unchanged"] += 1
                continue
            if row is None:
                last = self.latest.get((kind, record_id))  # a deleted record, loaded again
                if last is not None:
                    self._check_overwrite(kind, record_id)  # deleted through the API?
                row = model(id=record_id, **self._times(kind, record_id))
                write(row, record)
                self.changes.creating(kind, row, version=last[0] + 1 if last else 1)
                self.report.counts[entity, "created"] += 1
            else:
                self._check_overwrite(kind, record_id)
                self.changes.changing(kind, row)
                write(row, record)
                self.report.counts[entity, "updated"] += 1
        return [row for record_id, row in existing.items() if record_id not in wanted]

    def delete(self, record_type: str, row) -> None:
        self._check_overwrite(record_type, row.id)
        self.changes.deleting(record_type, row)
        self.report.counts[row.__tablename__, "deleted"] += 1

    def _check_overwrite(self, record_type: str, record_id: str) -> None:
        if self.edited_through_api(record_type, record_id) and not self.over_api_edits:
            self.conflicts.append(f"{record_type} {record_id}")

    def _times(self, record_type: str, record_id: str) -> dict:
        times = self.timestamps.get(RECORD_COLLECTIONS[record_type], {}).get(record_id, {})
        return {key: times[key] for key in ("created_at", "updated_at") if key in times}


def is_empty(session: Session) -> bool:
    """No record and no history: a database that a load seeds rather than syncs."""
    return all(
        session.scalar(select(model.id).limit(1)) is None
        for model in (Article, Actor, Fact, Revision)
    )


def load_dataset(session: Session, dataset: Dataset, over_api_edits: bool = False) -> LoadReport:
    """Make the database hold exactly the dataset, each change a revision ("imported").

    A record whose latest revision was made through the API is not overwritten or deleted
    unless `over_api_edits`: LoadConflict. The caller owns the transaction.
    """
    problems = check_dataset(dataset)
    if problems:
        raise DatasetError(problems)
    changes = records.ChangeSet(session, summary=LOAD_SUMMARY, imported=True)
    if changes.state.mirror_of:
        raise DatasetError(
            [
                Problem(
                    "-",
                    "-",
                    f"this database mirrors {changes.state.mirror_of}: it changes only by "
                    "`flask mirror pull`",
                )
            ]
        )
    loader = _Loader(session, changes, dataset.timestamps, over_api_edits)
    stale_articles = loader.sync(Article, dataset.articles, lambda _: "article", records.set_plain)
    stale_actors = loader.sync(Actor, dataset.actors, lambda _: "actor", records.set_plain)
    session.flush()
    actors = {actor.id: actor for actor in session.scalars(select(Actor))}
    stale_facts = loader.sync(
        Fact,
        {fact_id: {**record, "type": t} for fact_id, (t, record) in dataset.facts.items()},
        lambda record: record["type"],
        lambda row, record: records.set_fact(row, record, actors),
    )
    session.flush()
    # Facts go first: they are what cites articles and involves actors.
    for row in stale_facts:
        loader.delete(row.type, row)
    for row in stale_articles:
        loader.delete("article", row)
    for row in stale_actors:
        loader.delete("actor", row)
    if loader.conflicts:
        raise LoadConflict(loader.conflicts)
    changes.commit()
    return loader.report


# Exporting --------------------------------------------------------------------------------------

# The order of a fact's fields in data/: what it is, then what its type adds, then its evidence.
_FACT_HEAD = ("id", "kind", "title", "summary", "date")
_FACT_TAIL = ("actors", "contradicts", "sources", "notes")


def _in_file_order(record: dict[str, Any]) -> dict[str, Any]:
    head = {key: record[key] for key in _FACT_HEAD}
    tail = {key: record[key] for key in _FACT_TAIL}
    return {**head, **{k: v for k, v in record.items() if k not in head and k not in tail}, **tail}


def _write_yaml(path: Path, header: str, content) -> None:
    body = yaml.safe_dump(content, sort_keys=False, allow_unicode=True, width=100)
    path.write_text(f"{header}\n{body}", encoding="utf-8")


def export_dataset(session: Session, out_dir: Path) -> Counter:
    """Write the database into `out_dir` in data/'s layout; `data load` reads it back."""
    counts: Counter = Counter()
    timestamps: dict[str, dict[str, dict]] = defaultdict(dict)

    def stamp(collection: str, row) -> None:
        timestamps[collection][row.id] = {
            "created_at": row.created_at.isoformat(),
            "updated_at": row.updated_at.isoformat(),
        }

    articles = []
    for article in session.scalars(select(Article).order_by(Article.id)):
        text_path = out_dir / article.file
        text_path.parent.mkdir(parents=True, exist_ok=True)
        text_path.write_bytes(article.text.encode("utf-8"))
        articles.append(records.file_form("article", article))
        stamp("articles", article)
    _write_yaml(out_dir / ARTICLES_FILE, HEADERS[ARTICLES_FILE], articles)
    counts["articles"] = len(articles)

    actors = []
    for actor in session.scalars(select(Actor).order_by(Actor.id)):
        actors.append(records.file_form("actor", actor))
        stamp("actors", actor)
    _write_yaml(out_dir / ACTORS_FILE, HEADERS[ACTORS_FILE], actors)
    counts["actors"] = len(actors)

    for fact_type, name in FACT_FILES.items():
        collection = COLLECTIONS[fact_type]
        facts = []
        for fact in store.each_fact(session, fact_type):
            facts.append(_in_file_order(records.file_form(fact_type, fact)))
            stamp(collection, fact)
        _write_yaml(out_dir / name, HEADERS[name], facts)
        counts[collection] = len(facts)
    _write_yaml(out_dir / TIMESTAMPS_FILE, HEADERS[TIMESTAMPS_FILE], dict(timestamps))
    return counts

"""Writing records: rows from the records as data/ holds them, their public representation, and
the revision that every change leaves.

Both ways in, `flask data load` and the API's writes, go through a ChangeSet, so that every
change is numbered, versioned and kept in the history the same way.
"""

import datetime as dt
import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from schemas.actors import ActorDetailSchema, ActorSchema
from schemas.articles import ArticleDetailSchema, ArticleSchema
from schemas.base import read_only_removed
from schemas.common import date_bounds
from schemas.facts import FACT_SCHEMAS, FactSchema, detail_fields

from . import formats, search, store
from .models import (
    FACT_TYPES,
    UNDATED,
    UNDATED_DESC,
    Actor,
    Article,
    Citation,
    DatasetState,
    Fact,
    FactActor,
    Revision,
    utcnow,
)

MODELS = {**dict.fromkeys(FACT_TYPES, Fact), "actor": Actor, "article": Article}
# What a record is shown as by its detail endpoint, in history and (later) in the feed.
DETAIL_SCHEMAS = {
    **{fact_type: schema() for fact_type, schema in FACT_SCHEMAS.items()},
    "actor": ActorDetailSchema(),
    "article": ArticleDetailSchema(),
}


# What a record is shown as in lists (a fact: as on its own; an article: without its text).
LIST_SCHEMAS = {
    **{fact_type: schema() for fact_type, schema in FACT_SCHEMAS.items()},
    "actor": ActorSchema(),
    "article": ArticleSchema(),
}


def render(record_type: str, row) -> dict[str, Any]:
    """The record as its detail endpoint shows it."""
    return DETAIL_SCHEMAS[record_type].dump(row)


def store_forms(record_type: str, row, shown: dict[str, Any] | None = None) -> None:
    """Render the record as lists show it, JSON and CSV, into the row: reads serve these.

    `shown`: the record as its detail endpoint shows it, if already rendered (for a fact
    that is its list form too).
    """
    schema = LIST_SCHEMAS[record_type]
    listed = shown if shown is not None and record_type in FACT_TYPES else schema.dump(row)
    row.json_form = orjson.dumps(listed).decode()
    row.csv_form = formats.csv_line(schema, listed)


def store_missing_forms(session: Session, batch: int = 1000) -> int:
    """Render the records stored without their forms (by a schema older than them); how many."""
    done = 0
    for record_type, model in (("article", Article), ("actor", Actor), ("fact", Fact)):
        loading = store.FACT_LOADING if model is Fact else ()
        while True:
            stmt = select(model).where(model.json_form.is_(None)).order_by(model.id).limit(batch)
            rows = session.scalars(stmt.options(*loading)).unique().all()
            for row in rows:
                store_forms(row.type if model is Fact else record_type, row)
            session.flush()
            done += len(rows)
            if len(rows) < batch:
                break
    return done


def file_form(record_type: str, row) -> dict[str, Any]:
    """The record as data/ holds it: its representation without what the server derives
    (an article's text included: data/ keeps it in a file of its own)."""
    return read_only_removed(DETAIL_SCHEMAS[record_type], render(record_type, row))


def content_hash(record: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()


# Rows from records ------------------------------------------------------------------------------

# Fields of every fact type that are columns of `facts` (the children are rows of their own).
_FACT_COLUMNS = [
    name
    for name, schema_field in FactSchema._declared_fields.items()
    if not schema_field.dump_only and name not in ("sources", "actors", "contradicts")
]


def fact_columns(record: dict[str, Any]) -> dict[str, Any]:
    """The `facts` columns of a record (`record["type"]` says its type)."""
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


def set_fact_children(fact: Fact, record: dict[str, Any], actors: dict[str, Actor]) -> None:
    """Citations, actor links and contradictions; `actors` holds at least the ones involved."""
    fact.sources = [
        Citation(position=i, **{k: c[k] for k in ("article_id", "quote", "start", "end")})
        for i, c in enumerate(record["sources"])
    ]
    fact.actors = [
        FactActor(position=i, actor_id=ref["id"], actor=actors[ref["id"]], role=ref["role"])
        for i, ref in enumerate(record["actors"])
    ]
    fact.contradicts = list(record["contradicts"])


def set_fact(fact: Fact, record: dict[str, Any], actors: dict[str, Actor]) -> None:
    for key, value in fact_columns(record).items():
        setattr(fact, key, value)
    set_fact_children(fact, record, actors)
    fact.content_hash = content_hash(record)


def set_plain(row, record: dict[str, Any]) -> None:
    """An actor's or article's columns (an article's record includes text, sha256, words)."""
    for key, value in record.items():
        setattr(row, key, value)
    row.content_hash = content_hash(record)


def article_record(metadata: dict[str, Any], text: str) -> dict[str, Any]:
    """An article's record: its metadata, its text, and what the server computes from it."""
    return {
        **metadata,
        "text": text,
        "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        "word_count": len(text.split()),
    }


# Change sets ------------------------------------------------------------------------------------


@dataclass
class _Touched:
    record_type: str
    row: Any
    before: dict[str, Any] | None  # None: created by this change set
    # A fact's facet counts before the change, subtracted (facet_changes); none if created.
    facets: Counter = field(default_factory=Counter)

    @classmethod
    def as_it_is(cls, record_type: str, row) -> "_Touched":
        """The row before this change set changes it."""
        return cls(record_type, row, render(record_type, row), facet_changes(record_type, row, -1))


@dataclass
class ChangeSet:
    """The changes of one write transaction, each recorded as a revision when it commits.

    Opening one locks the single DatasetState row, which every writer locks first: writers
    take turns, and sequence numbers are handed out, gap-free, in commit order.
    """

    session: Session
    token_name: str | None = None
    summary: str | None = None
    imported: bool = False  # a `data load`: creations and updates are "imported"
    now: dt.datetime = field(default_factory=utcnow)
    touched: dict[tuple[str, str], _Touched] = field(default_factory=dict)
    removed: list[_Touched] = field(default_factory=list)
    revisions: list[Revision] = field(default_factory=list)

    def __post_init__(self):
        stmt = select(DatasetState).where(DatasetState.id == 1).with_for_update()
        self.state = self.session.scalars(stmt).first()
        if self.state is None:  # made by migration 0005; a database older than it lacks one
            self.state = DatasetState(id=1, revision=0, changed_at=self.now)
            self.session.add(self.state)
        self.seq = self.state.revision

    def changing(self, record_type: str, row) -> None:
        """Say so before changing `row`: its state now is what the revision's patch starts from."""
        key = (record_type, row.id)
        if key not in self.touched:
            self.touched[key] = _Touched.as_it_is(record_type, row)

    def creating(self, record_type: str, row, version: int = 1) -> None:
        row.created_at = row.created_at or self.now
        row.updated_at = row.updated_at or row.created_at
        row.version = version
        self.session.add(row)
        self.touched[(record_type, row.id)] = _Touched(record_type, row, None)

    def adopting(self, record_type: str, row) -> None:
        """A row stored before history was kept: its first revision records it as it is."""
        facets = facet_changes(record_type, row, -1)  # counted already: no change
        self.touched[(record_type, row.id)] = _Touched(record_type, row, None, facets)

    def deleting(self, record_type: str, row) -> None:
        touched = self.touched.pop((record_type, row.id), None)
        self.removed.append(touched or _Touched.as_it_is(record_type, row))
        self.session.delete(row)

    def commit(self) -> list[Revision]:
        """Record a revision for every record that changed; the caller commits."""
        self.session.flush()
        counts = Counter()  # changes to the facet counts
        for touched in self.touched.values():
            row, record_type, before = touched.row, touched.record_type, touched.before
            after = render(record_type, row)
            if before is not None:
                if after == before:
                    continue
                row.updated_at, row.version = self.now, row.version + 1
                after = render(record_type, row)
            store_forms(record_type, row, after)
            counts.update(touched.facets)
            counts.update(facet_changes(record_type, row))
            action = "imported" if self.imported else ("updated" if before else "created")
            self._record(record_type, row.id, row.version, action, after, diff(before, after))
        for touched in self.removed:
            row = touched.row
            counts.update(touched.facets)
            self._record(
                touched.record_type,
                row.id,
                row.version + 1,
                "deleted",
                None,
                diff(touched.before, None),
            )
        self._reindex()
        store.count_facet_changes(self.session, counts)
        if self.revisions:
            self.state.revision, self.state.changed_at = self.seq, self.now
        self.session.flush()
        return self.revisions

    def _record(self, record_type, record_id, version, action, record, patch) -> None:
        self.seq += 1
        revision = Revision(
            seq=self.seq,
            record_type=record_type,
            record_id=record_id,
            version=version,
            action=action,
            at=self.now,
            token_name=self.token_name,
            summary=self.summary,
            record=record,
            patch=patch,
        )
        self.session.add(revision)
        self.revisions.append(revision)

    def _reindex(self) -> None:
        changed = {(r.record_type, r.record_id) for r in self.revisions if r.record is not None}
        documents = [
            search.article_document(t.row)
            if t.record_type == "article"
            else search.fact_document(t.row)
            for key, t in self.touched.items()
            if key in changed and t.record_type != "actor"
        ]
        removed = [
            ("article" if t.record_type == "article" else t.row.type, t.row.id)
            for t in self.removed
            if t.record_type != "actor"
        ]
        if documents or removed:
            search.reindex(self.session, documents, removed)


def facet_changes(record_type: str, row, sign: int = 1) -> Counter:
    """What a fact counts for in its type's facets (store.facet_values), each `sign` times:
    a change adds its record's new state and subtracts its old one."""
    if row is None or record_type not in FACT_TYPES:
        return Counter()
    return Counter({(row.type, *pair): sign for pair in store.facet_values(row)})


def diff(before, after) -> list[dict[str, Any]]:
    """The JSON Patch (RFC 6902) from one state to the next; from or to nothing (null) at
    the root.

    Written here rather than by python-json-patch, whose operations come in an order that
    varies with Python's hash seed: a revision's patch is stored and served, so the same
    change must give the same bytes in every process.
    """
    if before is None:
        return [{"op": "add", "path": "", "value": after}]
    if after is None:  # "remove" of the root is not applicable by common JSON Patch libraries
        return [{"op": "replace", "path": "", "value": None}]
    return _changes(before, after, "")


def _changes(before, after, path: str) -> list[dict[str, Any]]:
    """Objects key by key (in their own order); lists around what they share at either end;
    any other difference replaces the value."""
    if isinstance(before, dict) and isinstance(after, dict):
        ops = [{"op": "remove", "path": _at(path, key)} for key in before if key not in after]
        for key, value in after.items():
            if key not in before:
                ops.append({"op": "add", "path": _at(path, key), "value": value})
            else:
                ops += _changes(before[key], value, _at(path, key))
        return ops
    if isinstance(before, list) and isinstance(after, list):
        return _list_changes(before, after, path)
    if _same(before, after):
        return []
    return [{"op": "replace", "path": path, "value": after}]


def _list_changes(before: list, after: list, path: str) -> list[dict[str, Any]]:
    """[b, c] -> [a, b, c] is one add at /0: items the lists share at their start and end
    stay; between them, items are changed in place, then the surplus removed or added."""
    start = 0
    while start < min(len(before), len(after)) and _same(before[start], after[start]):
        start += 1
    end = 0
    while end < min(len(before), len(after)) - start and _same(before[-1 - end], after[-1 - end]):
        end += 1
    old, new = before[start : len(before) - end], after[start : len(after) - end]
    ops = []
    for i, (old_item, new_item) in enumerate(zip(old, new, strict=False)):
        ops += _changes(old_item, new_item, _at(path, start + i))
    shared = min(len(old), len(new))
    for i in reversed(range(shared, len(old))):  # from the back: earlier indexes stay valid
        ops.append({"op": "remove", "path": _at(path, start + i)})
    for i in range(shared, len(new)):
        ops.append({"op": "add", "path": _at(path, start + i), "value": new[i]})
    return ops


def _same(a, b) -> bool:
    return a == b and type(a) is type(b)


def _at(path: str, key) -> str:
    """A JSON Pointer (RFC 6901) one step further: `~` and `/` in keys escaped."""
    return f"{path}/{str(key).replace('~', '~0').replace('/', '~1')}"


# History ----------------------------------------------------------------------------------------


def last_revision(session: Session, record_types, record_id: str) -> Revision | None:
    """The latest revision of the record (of any of `record_types`), a tombstone if deleted."""
    if isinstance(record_types, str):
        record_types = [record_types]
    stmt = (
        select(Revision)
        .where(Revision.record_type.in_(record_types), Revision.record_id == record_id)
        .order_by(Revision.version.desc())
        .limit(1)
    )
    return session.scalars(stmt).first()


def last_versions(session: Session) -> dict[tuple[str, str], tuple[int, str | None, str]]:
    """(type, id) -> (version, token name, action) of every record's latest revision."""
    latest = (
        select(Revision.record_type, Revision.record_id, func.max(Revision.version).label("v"))
        .group_by(Revision.record_type, Revision.record_id)
        .subquery()
    )
    stmt = select(
        Revision.record_type,
        Revision.record_id,
        Revision.version,
        Revision.token_name,
        Revision.action,
    ).join(
        latest,
        (Revision.record_type == latest.c.record_type)
        & (Revision.record_id == latest.c.record_id)
        & (Revision.version == latest.c.v),
    )
    return {(t, i): (v, token, action) for t, i, v, token, action in session.execute(stmt)}


# The change feed --------------------------------------------------------------------------------


def feed_action(revision: Revision) -> str:
    """created, updated or deleted: what a mirror does with the change (an import is one of
    the first two)."""
    if revision.action != "imported":
        return revision.action
    created = revision.patch[:1] == [{"op": "add", "path": "", "value": revision.record}]
    return "created" if created else "updated"


def change_entry(revision: Revision, with_patch: bool = True) -> dict[str, Any]:
    """A revision as the change feed and snapshots give it: the record as its detail
    endpoint showed it then, or, for a deletion, the tombstone."""
    entry = {
        "seq": revision.seq,
        "at": revision.at.isoformat(),
        "type": revision.record_type,
        "id": revision.record_id,
        "action": feed_action(revision),
        "version": revision.version,
        "token": revision.token_name,
        "summary": revision.summary,
    }
    if revision.record is None:
        entry["tombstone"] = {
            "deleted_at": entry["at"],
            "deleted_by": revision.token_name,
            "reason": revision.summary,
        }
    else:
        entry["record"] = revision.record
    if with_patch:
        entry["patch"] = revision.patch
    return entry

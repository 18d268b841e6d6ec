"""Every query the API runs is built here; views only adapt HTTP to these functions."""

import datetime as dt
import itertools
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from cachetools import LRUCache
from sqlalchemy import (
    Integer,
    Select,
    and_,
    bindparam,
    delete,
    distinct,
    extract,
    false,
    func,
    or_,
    select,
    tuple_,
)
from sqlalchemy.orm import InstrumentedAttribute, Session, selectinload

from schemas.common import LONGEST_DATE_SPAN

from . import search as search_index
from .models import (
    FACT_TYPES,
    LAST_DATED_DAY,
    UNDATED,
    Actor,
    Article,
    Citation,
    DatasetState,
    FacetCount,
    Fact,
    FactActor,
    Revision,
)

# Sorting and keyset pagination ------------------------------------------------------------------


class InvalidCursor(ValueError):
    """A cursor that does not fit the query it is used with."""


@dataclass(frozen=True)
class SortField:
    ascending: InstrumentedAttribute
    parse: Callable[[str], Any] = str  # a cursor's text back to a column value
    descending: InstrumentedAttribute | None = None  # when descending order needs its own key

    def column(self, descending: bool) -> InstrumentedAttribute:
        return (self.descending if descending else None) or self.ascending

    @staticmethod
    def key(value: Any) -> str:
        """A sort key's value as a cursor holds it (parse reads it back)."""
        return value.isoformat() if isinstance(value, dt.date) else str(value)


FACT_SORTS = {
    "id": SortField(Fact.id),
    "date": SortField(Fact.date_sort, dt.date.fromisoformat, Fact.date_sort_desc),
    "kind": SortField(Fact.kind),
    "title": SortField(Fact.title),
    "type": SortField(Fact.type),
    "updated_at": SortField(Fact.updated_at, dt.datetime.fromisoformat),
}
ARTICLE_SORTS = {"id": SortField(Article.id), "title": SortField(Article.title)}
REVISION_SORTS = {"id": SortField(Revision.seq, int)}
ACTOR_SORTS = {
    "id": SortField(Actor.id),
    "name": SortField(Actor.name),
    "kind": SortField(Actor.kind),
}

Order = list[tuple[str, bool]]  # (sort field, descending), ending with the unique "id"


@dataclass(frozen=True)
class Position:
    """Where a page starts: strictly after (or, going back, before) the row with these keys."""

    keys: list[str]
    backward: bool = False


@dataclass
class Page:
    items: list[Any]
    total: int
    next: Position | None  # where the following page starts, if there is one
    prev: Position | None  # where the page before ends, if there is one


def with_tiebreak(order: Order) -> Order:
    """A total order: the requested fields, then id (unique) if not already there."""
    return order if "id" in {name for name, _ in order} else [*order, ("id", False)]


def paginate(
    session: Session,
    stmt: Select,
    sorts: dict[str, SortField],
    order: Order,
    page_size: int,
    position: Position | None = None,
    form: str | tuple[str, ...] | None = None,
    entity: type | None = None,
    total: int | None = None,
) -> Page:
    """One page of `stmt` in `order` (keyset pagination: cost does not grow with depth).

    The page is chosen on its sort keys alone, which an index can often answer without
    reading a row, and only the page's rows are then read: a filter that matches thousands
    of rows costs their index entries, not the rows themselves. `entity`: the records shown,
    when `stmt` selects rows that link to them (their ids in the `id` sort field) rather
    than the records themselves. `total`: how many rows `stmt` selects, when that is known
    without counting them.
    """
    order = with_tiebreak(order)
    fields = [(sorts[name], descending) for name, descending in order]
    total = count(session, stmt) if total is None else total
    backward = bool(position and position.backward)
    values = None
    if position is not None:
        if len(position.keys) != len(fields):
            raise InvalidCursor("The cursor belongs to another sort order.")
        try:
            values = [
                field.parse(key) for (field, _), key in zip(fields, position.keys, strict=True)
            ]
        except (TypeError, ValueError) as error:
            raise InvalidCursor("Not a cursor issued by this API.") from error
    entity = entity or _entity(stmt)
    id_at = [name for name, _ in order].index("id")  # the unique sort key's place in a row
    after = values is not None
    shape = (tuple(order), id(sorts), after, backward, entity, form)
    page, params = _page_statement(
        stmt,
        shape,
        lambda: _build_page(stmt, fields, id_at, after, backward, entity, form),
        keep=sorts,
    )
    params.update({f"cursor_{i}": value for i, value in enumerate(values or ())})
    params["page_limit"] = page_size + 1
    rows = session.connection().execute(page, params).all()  # plain rows: no ORM to run
    more = len(rows) > page_size
    rows = rows[:page_size]
    if backward:
        rows.reverse()
    width = len(fields)  # the sort keys come first in a row, then any stored forms
    if form is None:
        items = _by_id(session, entity, [row[id_at] for row in rows])
    else:
        items = [row[width] if isinstance(form, str) else tuple(row[width:]) for row in rows]

    def at(row, backward: bool = False) -> Position:
        return Position([SortField.key(value) for value in row[:width]], backward)

    has_next = more if not backward else bool(rows)
    has_prev = (position is not None and bool(rows)) if not backward else more
    return Page(
        items=items,
        total=total,
        next=at(rows[-1]) if has_next else None,
        prev=at(rows[0], backward=True) if has_prev else None,
    )


_page_statements: LRUCache = LRUCache(maxsize=512)  # built page statements, by shape
_page_statements_lock = threading.Lock()


def _page_statement(
    stmt: Select, shape: tuple, build: Callable[[], Select], keep: Any
) -> tuple[Select, dict[str, Any]]:
    """The statement of a page of `stmt` (`build`s), and the values of `stmt`'s own
    parameters in it; its cursor_<i> and page_limit are the caller's to give.

    Built once per shape: the structure of `stmt` (SQLAlchemy's cache key, which leaves the
    values out) and the page's `shape` (its order, direction and forms). Building it, and
    walking it for its cache key, were a fifth of a list request's time: the same statement
    object is walked once, and each request binds its own values to it.
    """
    stmt_key = stmt._generate_cache_key()
    if stmt_key is None:  # a construct SQLAlchemy cannot cache: its values are in it
        return build(), {}
    shape = (stmt_key.key, *shape)
    with _page_statements_lock:
        built = _page_statements.get(shape)
    if built is None:
        # `keep` holds what the shape names by id(), so that no other object takes its id
        # while the entry lives.
        built = build(), stmt_key.bindparams, keep
        with _page_statements_lock:
            _page_statements[shape] = built
    page, bound, _ = built
    # The same structure binds its values in the same order: from this request's `stmt`.
    params = {
        mine.key: theirs.effective_value
        for mine, theirs in zip(bound, stmt_key.bindparams, strict=True)
    }
    return page, params


def _build_page(
    stmt: Select, fields: list, id_at: int, after: bool, backward: bool, entity: type, form
) -> Select:
    if after:
        cursor = [
            bindparam(f"cursor_{i}", type_=field.column(descending).type)
            for i, (field, descending) in enumerate(fields)
        ]
        stmt = stmt.where(_beyond(fields, cursor, backward))
    # Going backward, read in reverse order and turn the page around.
    reverse = [descending != backward for _, descending in fields]
    columns = [field.column(descending) for field, descending in fields]
    page_keys = stmt.with_only_columns(*columns).order_by(*_ordering(columns, reverse))
    page_keys = page_keys.limit(bindparam("page_limit", type_=Integer))
    if form is None:
        return page_keys
    return _with_forms(page_keys, reverse, entity, id_at, form)


def _ordering(columns: list, descending: list[bool]) -> list:
    return [c.desc() if d else c.asc() for c, d in zip(columns, descending, strict=True)]


def _with_forms(
    page_keys: Select, descending: list[bool], entity: type, id_at: int, form: str | tuple[str, ...]
) -> Select:
    """The page's keys, then each record's stored form (records.store_forms) by its id.

    The keys are chosen by a LIMIT subquery, which the database runs on its own, and only
    then are the page's rows read, by primary key: the same two steps as `_by_id`, in one
    statement, so that a sort the database has to do never carries the stored forms.
    """
    keys = page_keys.subquery()
    table = entity.__table__
    forms = [table.c[name] for name in ((form,) if isinstance(form, str) else form)]
    key_columns = list(keys.c)
    return (
        select(*key_columns, *forms)
        .join_from(keys, table, table.c.id == key_columns[id_at])
        .order_by(*_ordering(key_columns, descending))
    )


def _by_id(session: Session, entity: type, ids: list[str]) -> list:
    """The records with these ids, in this order, with what they are shown with.

    Selected by id alone: repeating the list's filters here could make the database plan
    this query like the list's and read every match again.
    """
    if not ids:
        return []
    stmt = select(entity).where(entity.id.in_(ids)).options(*_LOADING.get(entity, ()))
    found = {row.id: row for row in session.scalars(stmt).unique()}
    # A record deleted between the two queries is left out, not shown half-read.
    return [found[i] for i in ids if i in found]


def _entity(stmt: Select) -> type:
    return stmt.column_descriptions[0]["entity"]


def _beyond(fields: list[tuple[SortField, bool]], values: list[Any], backward: bool):
    """Rows strictly after `values` in the order (or strictly before, going backward)."""
    directions = {descending != backward for _, descending in fields}
    if len(directions) == 1:  # one direction: a row-value comparison, which indexes serve well
        columns = tuple_(*(field.column(descending) for field, descending in fields))
        return columns < tuple_(*values) if directions.pop() else columns > tuple_(*values)
    clauses = []
    for i, (field, descending) in enumerate(fields):
        column = field.column(descending)
        later = column < values[i] if descending != backward else column > values[i]
        ties = [f.column(d) == values[j] for j, (f, d) in enumerate(fields[:i])]
        clauses.append(and_(*ties, later))
    return or_(*clauses)


def stream(
    session: Session,
    stmt: Select,
    sorts: dict[str, SortField],
    order: Order,
    form: str | None = None,
) -> Iterator:
    """Every row of `stmt` in order, fetched in batches (exports never hold all rows);
    `form`: each row's stored form in that column instead."""
    ordering = [
        sorts[name].column(descending).desc() if descending else sorts[name].column(False).asc()
        for name, descending in with_tiebreak(order)
    ]
    entity = _entity(stmt)
    if form is not None:
        stmt = stmt.with_only_columns(getattr(entity, form))
    else:
        stmt = stmt.options(*_LOADING.get(entity, ()))
    try:
        batches = stmt.order_by(*ordering).execution_options(yield_per=500 if form else 100)
        yield from session.scalars(batches)
    finally:
        # The request's teardown closed the session before the stream began: reading rows
        # reopened it, and only the stream's end can give the connection back.
        session.close()


# Facts ---------------------------------------------------------------------------------------

FACT_LOADING = (
    selectinload(Fact.sources),
    selectinload(Fact.actors),
    selectinload(Fact.contradiction_links),
)
# What lists and exports read with each kind of record (one IN query per relationship).
_LOADING = {Fact: FACT_LOADING}
_NUMBERS = {"quota": ("quota", "value"), "prison_years": ("max_prison_years", "value")}


def fact_query(
    fact_types: str | list[str] | None,
    *,
    kind: str | None = None,
    article: str | None = None,
    actor: str | None = None,
    disputed: bool | None = None,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    dated: bool | None = None,
    q: str | None = None,
    dialect: str = "sqlite",
    **ranges: float | None,
) -> Select:
    """Facts of one or more types matching every filter given.

    Only the facts are selected: paginate and stream add what they are shown with (_LOADING).

    Dates: a record matches a range when the span of days its date may denote overlaps it
    (a record known only to 2022-09 matches date_from=2022-09-15); a record whose date or
    year is unknown matches no date range. `ranges` are `<number>_min` / `<number>_max`
    bounds on the numbers in _NUMBERS (`quota_min=100000`).
    """
    stmt = select(Fact)
    if isinstance(fact_types, str):
        stmt = stmt.where(Fact.type == fact_types)
    elif fact_types:
        stmt = stmt.where(Fact.type.in_(fact_types))
    if kind is not None:
        stmt = stmt.where(Fact.kind == kind)
    if article is not None:
        stmt = stmt.where(Fact.sources.any(Citation.article_id == article))
    if actor is not None:
        stmt = stmt.where(Fact.actors.any(FactActor.actor_id == actor))
    if disputed is not None:
        has_contradiction = Fact.contradiction_links.any()
        stmt = stmt.where(has_contradiction if disputed else ~has_contradiction)
    if date_from is not None or date_to is not None:
        stmt = stmt.where(*_overlapping(date_from, date_to))
    if dated is not None:
        stmt = stmt.where(Fact.date_sort <= LAST_DATED_DAY if dated else Fact.date_sort == UNDATED)
    if q is not None:
        stmt = stmt.where(Fact.id.in_(search_index.matching_ids(dialect, q, _types(fact_types))))
    for name, bound in ranges.items():
        if bound is None:
            continue
        number, side = name.rsplit("_", 1)
        value = Fact.details[_NUMBERS[number][0]][_NUMBERS[number][1]].as_float()
        stmt = stmt.where(value >= bound if side == "min" else value <= bound)
    return stmt


def _overlapping(date_from: dt.date | None, date_to: dt.date | None) -> list:
    """Dated records whose span of days overlaps [date_from, date_to] (either end may be open).

    Written on date_sort, which is date_min for every dated record, so that the indexes that
    order pages by date also bound the scan: a record's span starts at most LONGEST_DATE_SPAN
    before it ends, so only starts from date_from - LONGEST_DATE_SPAN on can overlap.
    """
    if date_from is not None and date_to is not None and date_from > date_to:
        return [false()]  # an empty range: no span of days overlaps it
    clauses = [Fact.date_sort <= min(date_to or LAST_DATED_DAY, LAST_DATED_DAY)]
    if date_from is not None:
        earliest_start = dt.date.fromordinal(max(1, date_from.toordinal() - LONGEST_DATE_SPAN.days))
        clauses += [Fact.date_max >= date_from, Fact.date_sort >= earliest_start]
    return clauses


def _types(fact_types: str | list[str] | None) -> list[str]:
    if isinstance(fact_types, str):
        return [fact_types]
    return list(fact_types or FACT_TYPES)


def get_fact(session: Session, fact_type: str, fact_id: str) -> Fact | None:
    return session.scalars(
        select(Fact).where(Fact.type == fact_type, Fact.id == fact_id).options(*FACT_LOADING)
    ).first()


def stored_fact(session: Session, fact_type: str, fact_id: str):
    """A fact's version and stored JSON (its detail form too), without reading anything else."""
    stmt = select(Fact.version, Fact.json_form).where(Fact.type == fact_type, Fact.id == fact_id)
    return session.execute(stmt).first()


# What links a fact to an actor or an article: the link table's columns of that record's id and
# of the fact's. A page of one record's facts is read from the links alone, on their (actor_id
# or article_id, fact_id) index: the page's entries, at any depth, and none of the facts but
# the page's. (fact_query's `actor` and `article` filters start from the facts instead.)
_LINKS = {
    "actor": (FactActor.actor_id, FactActor.fact_id),
    "article": (Citation.article_id, Citation.fact_id),
}
_LINKED_SORTS = {linked: {"id": SortField(fact_id)} for linked, (_, fact_id) in _LINKS.items()}


def linked_facts(
    session: Session,
    linked_type: str,
    linked_id: str,
    order: Order,
    page_size: int,
    position: Position | None = None,
) -> Page:
    """One page of the facts that involve the actor or cite the article (`linked_type`), each
    once, in `order` (of `id` alone): its items are (type, stored JSON) pairs."""
    linked_column, fact_id = _LINKS[linked_type]
    # Distinct: a fact may cite an article more than once, or involve an actor in two roles.
    stmt = select(fact_id).where(linked_column == linked_id).distinct()
    sorts = _LINKED_SORTS[linked_type]
    form = ("type", "json_form")
    # Each fact counts once in its type's facet of this actor or article: the kept counts
    # add up to the total, which counting the links of a big actor took 70 ms at 1M.
    kept = select(func.coalesce(func.sum(FacetCount.tally), 0)).where(
        FacetCount.record_type.in_(FACT_TYPES),
        FacetCount.facet == linked_type,
        FacetCount.value == _facet_value(linked_id),
    )
    total = session.scalar(kept)
    return paginate(
        session, stmt, sorts, order, page_size, position, form, entity=Fact, total=total
    )


def facts_by_type(items: list[tuple[str, Any]]) -> dict[str, list]:
    """(type, fact) pairs grouped by type, every type present, each group in the pairs' order."""
    groups: dict[str, list] = {fact_type: [] for fact_type in FACT_TYPES}
    for fact_type, fact in items:
        groups[fact_type].append(fact)
    return groups


def each_fact(session: Session, fact_type: str) -> Iterator[Fact]:
    """Every fact of the type in id order, read in batches, with what it is shown with."""
    stmt = fact_query(fact_type).options(*FACT_LOADING).order_by(Fact.id)
    return session.scalars(stmt.execution_options(yield_per=500))


# Facets --------------------------------------------------------------------------------------


FACETS = ("type", "kind", "year", "article", "actor")


def facets(
    session: Session, stmt: Select, names: list[str], whole: str | None = None
) -> dict[str, list[dict]]:
    """Counts of the records that `stmt` selects, by each facet: [{value, count}], most first
    (ties by value, the unknown year last).

    `year` counts records by the year their date begins in (null: year unknown); `article`
    and `actor` count each record once per article it cites or actor it involves. `whole`:
    `stmt` selects every record of this type, whose counts writes keep (facet_counts).
    """
    if whole is not None:
        return _kept_facets(session, whole, names)
    key = ("facets", tuple(names), statement_key(session, stmt))
    return aggregates.get(session, key, lambda: _facets(session, stmt, names))


def _in_facet_order(counts: list[dict]) -> list[dict]:
    return sorted(counts, key=lambda c: (-c["count"], c["value"] is None, c["value"]))


def _kept_facets(session: Session, fact_type: str, names: list[str]) -> dict[str, list[dict]]:
    stmt = select(FacetCount).where(
        FacetCount.record_type == fact_type, FacetCount.facet.in_(names)
    )
    found: dict[str, list[dict]] = {name: [] for name in names}
    for row in session.scalars(stmt):
        found[row.facet].append({"value": orjson.loads(row.value), "count": row.tally})
    return {name: _in_facet_order(counts) for name, counts in found.items()}


def facet_values(fact: Fact) -> set[tuple[str, Any]]:
    """The (facet, value) pairs a fact counts once for in its type's facets."""
    values = {
        ("type", fact.type),
        ("kind", fact.kind),
        ("year", fact.date_min.year if fact.date_min else None),
    }
    values |= {("article", citation.article_id) for citation in fact.sources}
    values |= {("actor", link.actor_id) for link in fact.actors}
    return values


def _facet_value(value: Any) -> str:
    """A facet value as facet_counts keeps it: JSON, so that null, numbers and text differ."""
    return orjson.dumps(value).decode()


def count_facet_changes(session: Session, changes: Counter) -> None:
    """Apply {(fact type, facet, value): +n or -n} to facet_counts, in one read and a flush.

    Writers take turns (records.ChangeSet), so no other write changes these rows meanwhile.
    """
    changes = {
        (fact_type, facet, _facet_value(value)): n
        for (fact_type, facet, value), n in changes.items()
        if n
    }
    if not changes:
        return
    key = tuple_(FacetCount.record_type, FacetCount.facet, FacetCount.value)
    kept = {
        (row.record_type, row.facet, row.value): row
        for row in session.scalars(select(FacetCount).where(key.in_(list(changes))))
    }
    for (fact_type, facet, value), n in changes.items():
        row = kept.get((fact_type, facet, value))
        if row is None:
            session.add(FacetCount(record_type=fact_type, facet=facet, value=value, tally=n))
        elif row.tally + n:
            row.tally += n
        else:
            session.delete(row)
    session.flush()


def count_facets_anew(session: Session) -> None:
    """Count every type's facets from the records (a migration, a generated database)."""
    session.execute(delete(FacetCount))
    for fact_type in FACT_TYPES:
        for facet, counts in _facets(session, fact_query(fact_type), FACETS).items():
            session.add_all(
                FacetCount(
                    record_type=fact_type,
                    facet=facet,
                    value=_facet_value(c["value"]),
                    tally=c["count"],
                )
                for c in counts
            )
    session.flush()


def _facets(session: Session, stmt: Select, names: list[str]) -> dict[str, list[dict]]:
    matches = (
        stmt.with_only_columns(Fact.id, Fact.type, Fact.kind, Fact.date_min)
        .order_by(None)
        .subquery()
    )
    # facet: (value, what to count, the table joined to the matches, or None)
    facet_columns = {
        "type": (matches.c.type, func.count(), None),
        "kind": (matches.c.kind, func.count(), None),
        "year": (extract("year", matches.c.date_min), func.count(), None),
        "article": (Citation.article_id, func.count(distinct(Citation.fact_id)), Citation),
        "actor": (FactActor.actor_id, func.count(distinct(FactActor.fact_id)), FactActor),
    }
    result = {}
    for name in names:
        value, tally, table = facet_columns[name]
        query = select(value.label("value"), tally.label("count"))
        if table is None:
            query = query.select_from(matches)
        else:
            query = query.select_from(table).join(matches, matches.c.id == table.fact_id)
        rows = session.execute(query.group_by(value))
        result[name] = _in_facet_order(
            [
                {"value": int(v) if name == "year" and v is not None else v, "count": n}
                for v, n in rows
            ]
        )
    return result


# Articles and actors ---------------------------------------------------------------------------


def article_query() -> Select:
    return select(Article)


def get_article(session: Session, article_id: str) -> Article | None:
    return session.get(Article, article_id)


def actor_query(*, kind: str | None = None) -> Select:
    stmt = select(Actor)
    if kind is not None:
        stmt = stmt.where(Actor.kind == kind)
    return stmt


def get_actor(session: Session, actor_id: str) -> Actor | None:
    return session.get(Actor, actor_id)


# History -----------------------------------------------------------------------------------


def revision_query(record_type: str, record_id: str) -> Select:
    return select(Revision).where(
        Revision.record_type == record_type, Revision.record_id == record_id
    )


def get_revision(session: Session, record_type: str, record_id: str, version: int):
    return session.scalars(
        revision_query(record_type, record_id).where(Revision.version == version)
    ).first()


# The change feed and snapshots ----------------------------------------------------------------

SNAPSHOT_ORDER = ("article", "actor", *FACT_TYPES)  # what cites and involves comes first


def state(session: Session) -> DatasetState | None:
    return session.get(DatasetState, 1)


def changes(session: Session, since: int, record_type: str | None, limit: int) -> list:
    """The revisions after `since`, in sequence order (the primary key: any depth is cheap)."""
    stmt = select(Revision).where(Revision.seq > since)
    if record_type is not None:
        stmt = stmt.where(Revision.record_type == record_type)
    return list(session.scalars(stmt.order_by(Revision.seq).limit(limit)))


def revision_as_of(session: Session, record_type: str, record_id: str, seq: int):
    """The record's latest revision at sequence number `seq`, if it had one by then."""
    stmt = (
        revision_query(record_type, record_id)
        .where(Revision.seq <= seq)
        .order_by(Revision.seq.desc())
        .limit(1)
    )
    return session.scalars(stmt).first()


def snapshot(session: Session, as_of: int | None = None) -> Iterator[Revision]:
    """The latest revision of every record that exists (at `as_of`, if given): articles,
    actors, then facts by type, each by id. Read in batches; the session closes at the end.
    """
    try:
        for record_type in SNAPSHOT_ORDER:
            stmt = _snapshot_query(record_type, as_of).execution_options(yield_per=500)
            yield from session.scalars(stmt)
    finally:
        session.close()  # see stream(): only the stream's end can give the connection back


def _snapshot_query(record_type: str, as_of: int | None) -> Select:
    if as_of is None:  # the records as they are: each row's own version
        model = {"article": Article, "actor": Actor}.get(record_type, Fact)
        joined = (
            (Revision.record_type == record_type)
            & (Revision.record_id == model.id)
            & (Revision.version == model.version)
        )
        stmt = select(Revision).join(model, joined)
        if model is Fact:
            stmt = stmt.where(Fact.type == record_type)
        return stmt.order_by(model.id)
    latest = (
        select(func.max(Revision.seq).label("seq"))
        .where(Revision.record_type == record_type, Revision.seq <= as_of)
        .group_by(Revision.record_id)
        .subquery()
    )
    return (
        select(Revision)
        .join(latest, Revision.seq == latest.c.seq)
        .where(Revision.action != "deleted")
        .order_by(Revision.record_id)
    )


# The dataset revision --------------------------------------------------------------------------


# A Core statement on the table: the one query of a 304 needs no ORM machinery.
_REVISION = select(DatasetState.__table__.c.revision).where(DatasetState.__table__.c.id == 1)


def revision(session: Session) -> int:
    """The data's revision: any change bumps it, so it identifies what every GET returns.

    Read once per transaction (a request's reads are one): its ETag and its cached counts
    then agree, for one query.
    """
    cached, transaction = session.info.get("revision"), session.get_transaction()
    if cached is not None and transaction is not None and cached[0] is transaction:
        return cached[1]
    value = session.connection().execute(_REVISION).scalar() or 0  # Core: no ORM to run
    session.info["revision"] = (session.get_transaction(), value)
    return value


class AggregateCache:
    """Results of expensive aggregates (counts, facets), per database and data revision.

    The data changes only with the revision, so a cached count is as exact as a fresh one.
    Each worker holds its own, least recently used entries going first; entries of older
    revisions are never asked for again and age out.
    """

    def __init__(self, size: int = 1024):
        self.entries: LRUCache = LRUCache(maxsize=size)
        self.lock = threading.Lock()  # cachetools' caches are not thread-safe

    def get(self, session: Session, key: tuple, compute: Callable[[], Any]) -> Any:
        # The engine, not its URL: hashing a URL renders it, 15 µs a lookup.
        key = (session.get_bind(), revision(session), *key)
        with self.lock:
            if key in self.entries:
                return self.entries[key]
        value = compute()
        with self.lock:
            self.entries[key] = value
        return value


aggregates = AggregateCache()


def statement_key(session: Session, stmt: Select) -> tuple:
    """What identifies a query's result: its structure and its parameters' values.

    SQLAlchemy's own cache key (what its compiled-SQL cache looks up), which costs a walk of
    the statement rather than compiling it.
    """
    cache_key = stmt._generate_cache_key()
    return cache_key.key, tuple(repr(bind.effective_value) for bind in cache_key.bindparams)


RANKED_WINDOW = 1000  # a search's best hits kept ranked: its first 20 pages of 50
WIDER_WINDOWS = 2  # deeper pages keep a ranking twice, four times as wide (80 pages of 50)
HIT_BATCH = 500  # hits whose documents a streamed search reads at once
ranked_searches = AggregateCache(size=32)  # 150 kB per 1,000 hits


def _window_size(end: int) -> int | None:
    """How many best hits to keep ranked for a page that ends at hit `end`: RANKED_WINDOW,
    or twice, four times as many for deeper pages (each ranked once, when first asked for);
    None past the widest, whose pages are ranked each time."""
    size = RANKED_WINDOW
    for _ in range(WIDER_WINDOWS + 1):
        if end <= size:
            return size
        size *= 2
    return None


def search(
    session: Session, query: str, types: list[str] | None, limit: int, offset: int
) -> tuple[list[search_index.Hit], int]:
    """One page of a search's hits, best first, and the total number of hits.

    Ranking a common word reads every match (300k at 1M records: 250 ms), however few hits
    are kept: the query's first RANKED_WINDOW hits (more for deeper pages: _window_size) are
    ranked once per data revision and kept, so that its next pages, and the same search
    again, cost only their own documents.
    """
    terms = search_index.parse_query(query)
    window: list[search_index.Ranked] = []
    total: int | None = None  # of the window's search, when it was asked for
    size = _window_size(offset + limit)
    if size is not None:
        key = ("search", tuple(terms), tuple(sorted(types or ())), size)
        window, total = ranked_searches.get(
            session, key, lambda: search_index.best(session, terms, types, size)
        )
    if offset + limit <= len(window) or len(window) == total:
        ranked = window[offset : offset + limit]
    else:  # deeper, or past a window cut short by tied scores (search_index.best)
        ranked, total = search_index.rank(session, terms, types, limit, offset)
    return search_index.hits(session, terms, ranked), total


def search_all(session: Session, query: str, types: list[str] | None) -> Iterator:
    """Every hit of a search, best first, ranked and read a batch at a time while they are
    sent (a streamed search: a common word has 300k hits, more than one statement may bind
    and more than a worker should hold)."""
    terms = search_index.parse_query(query)
    try:
        ranked = search_index.rank_all(session, terms, types, HIT_BATCH)
        for batch in itertools.batched(ranked, HIT_BATCH):
            yield from search_index.hits(session, terms, list(batch))
    finally:
        session.close()  # as in `stream`: reading reopened it after the request's teardown


def count(session: Session, stmt: Select) -> int:
    """The exact number of rows `stmt` selects."""

    def compute() -> int:
        total = select(func.count()).select_from(stmt.order_by(None).subquery())
        return session.scalar(total) or 0

    return aggregates.get(session, ("count", statement_key(session, stmt)), compute)

"""A mirror: a database that follows another server's snapshot and change feed.

`flask --app api mirror pull SOURCE_URL` seeds an empty database from SOURCE_URL's
/api/v1/export, then applies its /api/v1/changes from the last sequence number applied,
a page per transaction. Each change keeps the origin's sequence number, version, time,
token name and summary, so that the mirror serves what the origin served: the same
records, the same snapshot, the same feed from its first sequence number on. Interrupted
anywhere, a pull leaves the last page it committed; the next one resumes after it.
"""

import datetime as dt
import hashlib
import json
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from schemas.base import read_only_removed
from schemas.facts import FACT_SCHEMAS
from schemas.writes import RECORD_COLLECTIONS

from . import records, search, store
from .models import FACT_TYPES, Actor, DatasetState, Revision, utcnow

API = "/api/v1"
TIMEOUT = 60  # seconds without a byte from the origin


class MirrorError(Exception):
    pass


@dataclass
class PullReport:
    snapshot: int | None = None  # the sequence number a first pull was seeded at
    applied: Counter = field(default_factory=Counter)  # by action
    seq: int = 0

    def __str__(self) -> str:
        seeded = f"seeded from the snapshot at {self.snapshot}; " if self.snapshot else ""
        changes = ", ".join(f"{n} {action}" for action, n in sorted(self.applied.items()))
        return f"{seeded}{changes or 'no new changes'}; at sequence number {self.seq}."


def _get(url: str):
    request = urllib.request.Request(url, headers={"Accept": "application/x-ndjson"})
    try:
        return urllib.request.urlopen(request, timeout=TIMEOUT)
    except urllib.error.HTTPError as error:
        detail = error.read()[:300].decode(errors="replace")
        raise MirrorError(f"{url}: {error.code} {detail}") from None
    except OSError as error:
        raise MirrorError(f"{url}: {error}") from error


def pull(session_factory, source: str, page_size: int = 500) -> PullReport:
    """Bring the mirror up to date with `source` (its base URL); each step its own transaction."""
    source = source.rstrip("/")
    report = PullReport()
    with session_factory() as session, session.begin():
        state = _state(session)
        if state.mirror_of not in (None, source):
            raise MirrorError(f"This database mirrors {state.mirror_of}, not {source}.")
        if state.mirror_of is None:
            if store.revision(session) or session.scalar(select(Revision.seq).limit(1)):
                raise MirrorError("This database is not a mirror and holds data: not mirrored.")
            report.snapshot = _seed(session, state, source)
    target = None  # the origin's latest change when the pull began: it stops there
    while True:
        with session_factory() as session, session.begin():
            state = _state(session)
            query = urllib.parse.urlencode(
                {"since": state.revision, "page_size": page_size, "format": "ndjson"}
            )
            url = f"{source}{API}/changes?{query}"
            with _get(url) as response:
                latest = int(response.headers.get("Dataset-Seq") or 0)
                page = [_parsed(line, url) for line in response]
            target = latest if target is None else target
            if latest < state.revision:
                raise MirrorError(
                    f"The origin's latest change is {latest}, before this mirror's "
                    f"{state.revision}: it was restored from an older state. Mirror it afresh, "
                    "into a new database."
                )
            for entry in page:
                if entry["seq"] <= state.revision:  # applied already (never, unless resent)
                    continue
                if entry["seq"] != state.revision + 1:
                    raise MirrorError(f"The feed skipped from {state.revision} to {entry['seq']}.")
                apply(session, entry)
                state.revision, state.changed_at = entry["seq"], utcnow()
                report.applied[entry["action"]] += 1
            report.seq = state.revision
        # Caught up with where the origin was; a busy origin is followed by the next pull.
        if len(page) < page_size or state.revision >= target:
            return report


def _parsed(line: bytes, url: str) -> dict:
    """A line of the origin's NDJSON; anything else (an HTML page, a cut line) is its fault."""
    try:
        parsed = json.loads(line)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        raise MirrorError(f"{url}: not NDJSON: {line[:80]!r}")
    return parsed


def _state(session: Session) -> DatasetState:
    stmt = select(DatasetState).where(DatasetState.id == 1).with_for_update()
    state = session.scalars(stmt).first()
    if state is None:
        state = DatasetState(id=1, revision=0, changed_at=utcnow(), history_from=0)
        session.add(state)
    return state


def _seed(session: Session, state: DatasetState, source: str) -> int:
    """Load the origin's snapshot as it streams; a snapshot that does not match its
    manifest (checksum, counts) raises, and the transaction leaves nothing behind."""
    digest, counts, manifest = hashlib.sha256(), Counter(), None
    deferred: list[tuple[Any, list[str]]] = []  # contradictions may point further on
    url = f"{source}{API}/export"
    with _get(url) as response:
        for line in response:
            parsed = _parsed(line, url)
            if "manifest" in parsed:
                manifest = parsed["manifest"]
                break
            digest.update(line)
            counts[RECORD_COLLECTIONS[parsed["type"]]] += 1
            apply(session, parsed, deferred)
    if manifest is None or manifest["sha256"] != digest.hexdigest():
        raise MirrorError("The snapshot is incomplete or does not match its manifest.")
    if any(counts[name] != n for name, n in manifest["counts"].items()):
        raise MirrorError("The snapshot's records do not match its manifest's counts.")
    for row, contradicts in deferred:
        row.contradicts = contradicts
    state.revision = state.history_from = manifest["seq"]
    state.mirror_of = source
    return manifest["seq"]


def apply(session: Session, entry: dict[str, Any], deferred: list | None = None) -> None:
    """One change of the origin's feed (or one record of its snapshot), as the origin made it.

    `deferred`: a snapshot's records come by type, and a record may contradict one further on;
    its contradictions are then set once all are there (appended here as (row, ids)).
    """
    record_type, record_id = entry["type"], entry["id"]
    model = records.MODELS[record_type]
    row = session.get(model, record_id)
    facets = records.facet_changes(record_type, row, -1)  # what it counted for, if it was
    if entry["action"] == "deleted":
        if row is not None:
            session.delete(row)
            removed = "article" if record_type == "article" else record_type
            if record_type != "actor":
                search.reindex(session, [], [(removed, record_id)])
    else:
        record = entry["record"]
        new = row is None
        if new:
            row = model(id=record_id)
        with session.no_autoflush:  # a new row is complete only once set
            _set(session, record_type, row, record, deferred)
        if new:
            session.add(row)
        row.version = entry["version"]
        records.store_forms(record_type, row, record)  # a fact's: as the origin showed it
        session.flush()
        facets.update(records.facet_changes(record_type, row))
        if record_type != "actor":
            document = (
                search.article_document(row)
                if record_type == "article"
                else search.fact_document(row)
            )
            search.reindex(session, [document], [])
    store.count_facet_changes(session, facets)
    at = dt.datetime.fromisoformat(entry["at"])
    session.add(
        Revision(
            seq=entry["seq"],
            record_type=record_type,
            record_id=record_id,
            version=entry["version"],
            action=entry["action"],
            at=at,
            token_name=entry["token"],
            summary=entry["summary"],
            record=entry.get("record"),
            patch=entry.get("patch") or records.diff(None, entry.get("record")),
        )
    )
    session.flush()


def _set(session: Session, record_type: str, row, record: dict, deferred: list | None) -> None:
    """The row's columns from the record as the origin's detail endpoint showed it."""
    form = read_only_removed(records.DETAIL_SCHEMAS[record_type], record)
    if record_type in FACT_TYPES:
        loaded = {**FACT_SCHEMAS[record_type]().load(form), "type": record_type}
        actors = {ref["id"]: session.get(Actor, ref["id"]) for ref in loaded["actors"]}
        records.set_fact(row, loaded, actors)
        if deferred is not None and loaded["contradicts"]:
            row.contradicts = []
            deferred.append((row, loaded["contradicts"]))
    elif record_type == "article":
        records.set_plain(row, records.article_record(form, record["text"]))
    else:
        records.set_plain(row, form)
    row.created_at = dt.datetime.fromisoformat(record["created_at"])
    row.updated_at = dt.datetime.fromisoformat(record["updated_at"])

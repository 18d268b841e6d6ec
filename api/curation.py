"""The rules of every write through the API: what `flask data check` asks of data/, asked of
each record as it is written, against what the database holds.

Functions here run inside a write transaction (a records.ChangeSet) and raise Refused for a
write that breaks a rule; the transaction then rolls back and nothing changes.
"""

import re
import unicodedata
from http import HTTPStatus
from typing import Any

import marshmallow as ma
from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from schemas.contract import API_PREFIX
from schemas.facts import FACT_SCHEMAS
from schemas.writes import RECORD_COLLECTIONS, WRITE_SCHEMAS

from . import records, store
from .dataset import citation_spans, record_problems, refers_to
from .models import FACT_TYPES, Actor, Article, Citation, Fact, FactActor, Revision

MAX_NAMED = 20  # records named in a 409, at most


class Refused(Exception):
    """A write that breaks a rule: its status, what is wrong, and where (field path: messages)."""

    def __init__(
        self,
        status: int,
        detail: str,
        errors: dict[str, list[str]] | None = None,
        headers: dict[str, str] | None = None,
        location: str = "body",  # where the fields of `errors` are: the body, the query
    ):
        super().__init__(detail)
        self.status, self.detail, self.errors, self.headers = status, detail, errors, headers
        self.location = location


def invalid(errors: dict[str, list[str]]) -> Refused:
    path, messages = next(iter(errors.items()))
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    detail = f"Invalid body field {path}: {messages[0]}{more}"
    return Refused(HTTPStatus.UNPROCESSABLE_ENTITY, detail, errors)


def field_paths(messages: Any, path: str = "") -> dict[str, list[str]]:
    """marshmallow's nested errors as {"sources[0].quote": [...]}."""
    if isinstance(messages, dict):
        found: dict[str, list[str]] = {}
        for key, value in messages.items():
            if isinstance(key, int):
                inner = f"{path}[{key}]"
            elif key == "_schema":
                inner = path or "(body)"
            else:
                inner = f"{path}.{key}" if path else str(key)
            found.update(field_paths(value, inner))
        return found
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return {path or "(body)": messages}
    return {path or "(body)": [str(messages)]}


def _named(ids: list[str]) -> str:
    shown = ", ".join(sorted(ids)[:MAX_NAMED])
    return shown + (f" and {len(ids) - MAX_NAMED} more" if len(ids) > MAX_NAMED else "")


# Finding records ---------------------------------------------------------------------------------


def current(session: Session, record_type: str, record_id: str):
    """The stored record, for a write to change: 404 if it never existed, 410 if deleted."""
    if record_type in FACT_TYPES:
        row = store.get_fact(session, record_type, record_id)
    elif record_type == "actor":
        row = store.get_actor(session, record_id)
    else:
        row = store.get_article(session, record_id)
    if row is not None:
        return row
    tombstone = records.last_revision(session, record_type, record_id)
    if tombstone is not None and tombstone.action == "deleted":
        raise Gone(tombstone)
    raise Refused(HTTPStatus.NOT_FOUND, f"No {record_type} with id {record_id!r}.")


class Gone(Exception):
    """The record was deleted: its tombstone says when, by whom and why.

    What the answer says is taken from the tombstone here, while its session is open: a
    write's transaction ends (and its rows detach) before the error is answered.
    """

    def __init__(self, tombstone: Revision):
        super().__init__(tombstone.record_id)
        who = f" by {tombstone.token_name}" if tombstone.token_name else ""
        why = f": {tombstone.summary}" if tombstone.summary else "."
        collection = RECORD_COLLECTIONS[tombstone.record_type]
        self.detail = (
            f"The {tombstone.record_type} {tombstone.record_id!r} was deleted on "
            f"{tombstone.at.isoformat()}{who}{why}"
        )
        self.fields = {
            "deleted_at": tombstone.at.isoformat(),
            "deleted_by": tombstone.token_name,
            "reason": tombstone.summary,
            "revisions_url": f"{API_PREFIX}/{collection}/{tombstone.record_id}/revisions",
        }


def id_ever_used(session: Session, record_type: str, record_id: str) -> bool:
    """Ids are never reused: not while a record has it, nor after it was deleted."""
    types = FACT_TYPES if record_type in FACT_TYPES else (record_type,)
    model = records.MODELS[record_type]
    return bool(
        session.scalar(select(exists().where(model.id == record_id)))
        or session.scalar(
            select(exists().where(Revision.record_type.in_(types), Revision.record_id == record_id))
        )
    )


def _slug(text: str) -> str:
    text = re.sub("['’]", "", text)  # "decree's" -> "decrees", not "decree-s"
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def new_id(session: Session, record_type: str, given: str | None, label: str) -> str:
    """The id of a new record: the one given (409 if ever used), or one made from its label."""
    if given is not None:
        if id_ever_used(session, record_type, given):
            raise Refused(
                HTTPStatus.CONFLICT,
                f"The id {given!r} is in use or was used before; ids are never reused.",
                {"id": ["In use, or used before."]},
            )
        return given
    prefix = f"{record_type}-" if record_type in FACT_TYPES else ""
    base = (prefix + _slug(label))[:90].strip("-") or record_type
    candidate, n = base, 1
    while id_ever_used(session, record_type, candidate):
        n += 1
        candidate = f"{base}-{n}"
    return candidate


# Validating bodies -------------------------------------------------------------------------------


def load_body(record_type: str, body: Any, record_id: str | None = None) -> dict[str, Any]:
    """The body checked against the record type's write schema: 422 naming each bad field."""
    try:
        data = WRITE_SCHEMAS[record_type]().load(body)
    except ma.ValidationError as error:
        raise invalid(field_paths(error.messages)) from error
    if record_id is not None:
        if data["id"] not in (None, record_id):
            raise invalid({"id": [f"Must be {record_id!r}, the id in the URL, or left out."]})
        data["id"] = record_id
    return data


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON Merge Patch: objects merge key by key, null removes, the rest replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# Facts ----------------------------------------------------------------------------------------


def _locate(session: Session, sources: list[dict]) -> list[dict]:
    """Each citation with its offsets, found in the article's text (or checked, if given)."""
    errors: dict[str, list[str]] = {}
    located = []
    for i, citation in enumerate(sources):
        article = session.get(Article, citation["article_id"])
        if article is None:
            errors[f"sources[{i}].article_id"] = [f"No article with id {citation['article_id']!r}."]
            continue
        quote, start = citation["quote"], citation["start"]
        if start is None:
            starts = [m.start() for m in re.finditer(f"(?={re.escape(quote)})", article.text)]
            if not starts:
                errors[f"sources[{i}].quote"] = [
                    f"Not found verbatim in the text of article {article.id!r}."
                ]
                continue
            if len(starts) > 1:
                errors[f"sources[{i}].quote"] = [
                    f"Found {len(starts)} times in article {article.id!r} (at "
                    f"{', '.join(map(str, starts[:10]))}): give `start` to say which."
                ]
                continue
            start = starts[0]
        elif citation["end"] not in (None, start + len(quote)):
            errors[f"sources[{i}].end"] = ["Must be start plus the length of the quote."]
            continue
        elif article.text[start : start + len(quote)] != quote:
            found = article.text[start : start + len(quote)]
            errors[f"sources[{i}].quote"] = [
                f"Not the text of article {article.id!r} at {start}: the text there is {found!r}."
            ]
            continue
        located.append(
            {
                "article_id": article.id,
                "quote": quote,
                "start": start,
                "end": start + len(quote),
            }
        )
    if errors:
        raise invalid(errors)
    return located


def _fact_type_of(session: Session, fact_id: str) -> str | None:
    return session.scalar(select(Fact.type).where(Fact.id == fact_id))


def _check_fact(session: Session, fact_id: str, record: dict[str, Any]) -> None:
    texts = {c["article_id"]: session.get(Article, c["article_id"]).text for c in record["sources"]}
    problems = record_problems(
        fact_id,
        record,
        article_text=texts.get,
        actor_exists=lambda actor_id: session.get(Actor, actor_id) is not None,
        type_of=lambda other: _fact_type_of(session, other),
    )
    if problems:
        errors: dict[str, list[str]] = {}
        for path, message in problems:
            errors.setdefault(path, []).append(message[0].upper() + message[1:] + ".")
        raise invalid(errors)
    duplicates = _same_citations(session, fact_id, record)
    if duplicates:
        raise Refused(
            HTTPStatus.CONFLICT,
            f"Another record cites exactly the same passages: {_named(duplicates)}. One "
            "passage states one fact: change that record instead.",
            {"sources": [f"The same citations as {_named(duplicates)}."]},
        )


def _same_citations(session: Session, fact_id: str, record: dict[str, Any]) -> list[str]:
    """Other records, of any type, whose citations are exactly this record's."""
    spans = citation_spans(record["sources"])
    article_id, start, end = spans[0]
    candidates = session.scalars(
        select(Citation.fact_id).where(
            Citation.article_id == article_id,
            Citation.start == start,
            Citation.end == end,
            Citation.fact_id != fact_id,
        )
    ).all()
    duplicates = []
    for other_id in sorted(set(candidates)):
        other = session.scalars(
            select(Fact).where(Fact.id == other_id).options(*store.FACT_LOADING)
        ).one()
        cited = [
            {"article_id": c.article_id, "start": c.start, "end": c.end} for c in other.sources
        ]
        if citation_spans(cited) != spans:
            continue
        if refers_to(record, other_id) or refers_to(other.details, fact_id):
            continue  # a decree and what it orders or sets: two facts
        duplicates.append(other_id)
    return duplicates


def save_fact(
    changes: records.ChangeSet, fact_type: str, data: dict[str, Any], row: Fact | None
) -> Fact:
    """Create (row None) or replace a fact from a validated body."""
    session = changes.session
    record = dict(data)
    record["sources"] = _locate(session, data["sources"])
    if row is None:
        record["id"] = new_id(session, fact_type, data["id"], data["title"])
    _check_fact(session, record["id"], record)
    record["type"] = fact_type
    actors = {ref["id"]: session.get(Actor, ref["id"]) for ref in record["actors"]}
    old_contradicts = set(row.contradicts) if row is not None else set()
    if row is None:
        row = Fact(id=record["id"])
        records.set_fact(row, record, actors)
        changes.creating(fact_type, row)
    else:
        changes.changing(fact_type, row)
        records.set_fact(row, record, actors)
    _link_contradictions(changes, row.id, set(record["contradicts"]), old_contradicts)
    return row


def _link_contradictions(changes: records.ChangeSet, fact_id: str, new: set, old: set) -> None:
    """Keep 'contradicts' symmetric: the other side of every added or removed link changes too."""
    session = changes.session
    for other_id in sorted(new ^ old):
        other = session.scalars(
            select(Fact).where(Fact.id == other_id).options(*store.FACT_LOADING)
        ).one()
        changes.changing(other.type, other)
        links = set(other.contradicts)
        links = links | {fact_id} if other_id in new else links - {fact_id}
        # Saved as data/ would hold it, so that its content hash is the one a load computes.
        form = {**records.file_form(other.type, other), "contradicts": sorted(links)}
        record = {**FACT_SCHEMAS[other.type]().load(form), "type": other.type}
        records.set_fact(other, record, {link.actor_id: link.actor for link in other.actors})


def delete_fact(changes: records.ChangeSet, row: Fact) -> None:
    session = changes.session
    referring = _facts_referring_to(session, row)
    if referring:
        raise Refused(
            HTTPStatus.CONFLICT,
            f"{_named(referring)} refer to {row.id!r} (decree, act or cases): change them first.",
        )
    _link_contradictions(changes, row.id, set(), set(row.contradicts))
    changes.deleting(row.type, row)


def _facts_referring_to(session: Session, row: Fact) -> list[str]:
    """Records whose `decree`, `act` or `cases` name this one."""
    keys = {"decree": ("decree", "act"), "event": ("cases",)}.get(row.type, ())
    if not keys:
        return []
    referring = []
    for other in session.scalars(select(Fact).where(Fact.type.in_(("campaign", "penalty")))):
        for key in keys:
            value = other.details.get(key)
            if value == row.id or (isinstance(value, list) and row.id in value):
                referring.append(other.id)
    return referring


# Actors and articles --------------------------------------------------------------------------


def save_actor(changes: records.ChangeSet, data: dict[str, Any], row: Actor | None) -> Actor:
    session = changes.session
    record = dict(data)
    if row is None:
        record["id"] = new_id(session, "actor", data["id"], data["name"])
        row = Actor(id=record["id"])
        records.set_plain(row, record)
        changes.creating("actor", row)
        return row
    if record["name"] != row.name:
        # The records that involve the actor show its name: each changes, with a revision.
        linked = session.scalars(
            select(Fact)
            .where(Fact.actors.any(FactActor.actor_id == row.id))
            .options(*store.FACT_LOADING)
        )
        for fact in linked:
            changes.changing(fact.type, fact)
    changes.changing("actor", row)
    records.set_plain(row, record)
    return row


def delete_actor(changes: records.ChangeSet, row: Actor) -> None:
    involving = changes.session.scalars(
        select(FactActor.fact_id).where(FactActor.actor_id == row.id).distinct()
    ).all()
    if involving:
        raise Refused(
            HTTPStatus.CONFLICT,
            f"Records still involve actor {row.id!r}: {_named(list(involving))}. "
            "Change them first.",
        )
    changes.deleting("actor", row)


def _citing(session: Session, article_id: str) -> list[str]:
    return list(
        session.scalars(
            select(Citation.fact_id).where(Citation.article_id == article_id).distinct()
        )
    )


def save_article(changes: records.ChangeSet, data: dict[str, Any], row: Article | None) -> Article:
    session = changes.session
    metadata = {key: value for key, value in data.items() if key != "text"}
    if row is None:
        metadata["id"] = new_id(session, "article", data["id"], data["title"])
    else:
        if data["text"] != row.text and (citing := _citing(session, row.id)):
            raise Refused(
                HTTPStatus.CONFLICT,
                f"The text of article {row.id!r} cannot change: {_named(citing)} cite it. "
                "A corrected text is a new article.",
                {"text": ["Cited by records: it cannot change."]},
            )
    metadata["file"] = metadata["file"] or (row.file if row else f"articles/{metadata['id']}.txt")
    taken = session.scalar(
        select(Article.id).where(Article.file == metadata["file"], Article.id != metadata["id"])
    )
    if taken:
        raise invalid({"file": [f"Article {taken!r} has its text in that file already."]})
    record = records.article_record(metadata, data["text"])
    if row is None:
        row = Article(id=record["id"])
        records.set_plain(row, record)
        changes.creating("article", row)
    else:
        changes.changing("article", row)
        records.set_plain(row, record)
    return row


def delete_article(changes: records.ChangeSet, row: Article) -> None:
    citing = _citing(changes.session, row.id)
    if citing:
        raise Refused(
            HTTPStatus.CONFLICT,
            f"Records still cite article {row.id!r}: {_named(citing)}. Change them first.",
        )
    changes.deleting("article", row)


# One entry point per write, whatever the record type -------------------------------------------


def save(changes: records.ChangeSet, record_type: str, data: dict[str, Any], row=None):
    if record_type in FACT_TYPES:
        return save_fact(changes, record_type, data, row)
    if record_type == "actor":
        return save_actor(changes, data, row)
    return save_article(changes, data, row)


def delete(changes: records.ChangeSet, record_type: str, row) -> None:
    if record_type in FACT_TYPES:
        delete_fact(changes, row)
    elif record_type == "actor":
        delete_actor(changes, row)
    else:
        delete_article(changes, row)

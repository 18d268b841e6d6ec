"""Writes over HTTP, the same for every collection: bodies in, a record and its ETag out.

Views stay one line each: they name the record type and call create, replace, patch or
delete here. Every write is one transaction, which locks the dataset's sequence first, so
that two writers take turns and the second sees the first's commit (and its new ETag).
"""

from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import orjson
from flask import Response, after_this_request, current_app, g, request
from flask.views import MethodView
from flask_smorest.utils import deepupdate

from schemas.contract import API_PREFIX, SEQ_HEADER
from schemas.queries import DetailQuerySchema, RevisionQuerySchema
from schemas.writes import PATCH_SCHEMAS, RECORD_COLLECTIONS, WRITE_SCHEMAS, RevisionSchema

from .. import curation, records, store
from ..auth import requires
from ..db import db
from ..models import FACT_TYPES
from ..smorest import CACHE_CONTROL, Blueprint, if_none_match_tags
from . import listing

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
SUMMARY_HEADER = "Edit-Summary"
MAX_VERSION = 2**31 - 1  # what an INTEGER column holds
MAX_SUMMARY = 500


def read_body(media_type: str) -> Any:
    """The request's JSON body: 415 for another type, 400 if it is not JSON, 413 if too big."""
    if request.mimetype != media_type:
        header = "Accept-Patch" if media_type == MERGE_PATCH else "Accept-Post"
        given = request.mimetype or "none"
        raise curation.Refused(
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
            f"The body must be {media_type}, not {given}.",
            headers={header: media_type},
        )
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    raw = request.get_data(cache=False)  # a Content-Length over the limit: 413
    if request.content_length is None and len(raw) >= limit:
        # A chunked body is cut at the limit, not refused: one that reaches it is too big.
        raise curation.Refused(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"The request body is larger than {limit} bytes."
        )
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise curation.Refused(
            HTTPStatus.BAD_REQUEST, f"The body is not valid JSON: {error}."
        ) from None
    if nul := _first_nul(body):
        raise curation.invalid({nul: ["Must not contain NUL characters (\\u0000)."]})
    return body


MAX_DEPTH = 32  # a record nests a few levels; anything deeper is not one


def _first_nul(body: Any) -> str | None:
    """The path of the first string (or key) holding a NUL, which no database text can hold.

    Walked with a stack, not recursion, and refused past MAX_DEPTH: orjson parses nesting
    deeper than Python code that recurses could follow.
    """
    stack = [("", body, 0)]
    while stack:
        path, value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise curation.invalid({path: [f"Nested deeper than {MAX_DEPTH} levels."]})
        if isinstance(value, str):
            if "\x00" in value:
                return path or "(body)"
        elif isinstance(value, dict):
            for key, item in reversed(value.items()):
                inner = f"{path}.{key}" if path else key
                if "\x00" in key:
                    return inner
                stack.append((inner, item, depth + 1))
        elif isinstance(value, list):
            items = reversed(list(enumerate(value)))
            stack.extend((f"{path}[{i}]", item, depth + 1) for i, item in items)
    return None


def edit_summary() -> str | None:
    """The optional Edit-Summary header (UTF-8), stored with the change's revisions."""
    raw = request.headers.get(SUMMARY_HEADER)
    if raw is None:
        return None
    try:
        summary = raw.encode("latin-1").decode("utf-8").strip()
    except UnicodeError:
        raise curation.Refused(
            HTTPStatus.BAD_REQUEST, f"The {SUMMARY_HEADER} header is not UTF-8."
        ) from None
    if len(summary) > MAX_SUMMARY or any(ord(c) < 32 or ord(c) == 127 for c in summary):
        raise curation.Refused(
            HTTPStatus.BAD_REQUEST,
            f"The {SUMMARY_HEADER} header must be one line of at most {MAX_SUMMARY} characters.",
        )
    return summary or None


def etag_data(record_type: str, row) -> dict:
    """What a record's ETag is made from: it changes exactly when the record does."""
    return {"type": record_type, "id": row.id, "version": row.version}


def location(record_type: str, record_id: str) -> str:
    return f"{API_PREFIX}/{RECORD_COLLECTIONS[record_type]}/{record_id}"


def shown(blp: Blueprint, record_type: str, record_id: str, as_of: int | None = None):
    """GET of one record (as it was at sequence number `as_of`, if given): the row and its
    ETag, a bare 304 if the client has it, 404 or 410."""
    session = db.session()
    if as_of is not None:
        return _shown_as_of(blp, record_type, record_id, as_of)
    if record_type in FACT_TYPES:  # a fact's stored form is what its detail shows
        found = store.stored_fact(session, record_type, record_id)
        if found is not None and found.json_form is not None:
            headers = _record_headers(blp, record_type, record_id, found.version)
            if _client_has(headers):
                return Response(status=HTTPStatus.NOT_MODIFIED, headers=headers)
            return Response(found.json_form, mimetype=JSON, headers=headers)
    row = curation.current(session, record_type, record_id)  # or 404, 410
    headers = _record_headers(blp, record_type, row.id, row.version)
    if _client_has(headers):
        return Response(status=HTTPStatus.NOT_MODIFIED, headers=headers)
    return row, headers


def _shown_as_of(blp: Blueprint, record_type: str, record_id: str, as_of: int):
    session = db.session()
    check_as_of(as_of, session)
    revision = store.revision_as_of(session, record_type, record_id, as_of)
    if revision is None:
        raise curation.Refused(
            HTTPStatus.NOT_FOUND,
            f"No {record_type} with id {record_id!r} at sequence number {as_of}.",
        )
    if revision.record is None:
        raise curation.Gone(revision)
    headers = _record_headers(blp, record_type, record_id, revision.version)
    headers[SEQ_HEADER] = str(as_of)
    if _client_has(headers):
        return Response(status=HTTPStatus.NOT_MODIFIED, headers=headers)
    # The stored representation: what the detail endpoint showed at that version.
    return Response(orjson.dumps(revision.record), mimetype=JSON, headers=headers)


def _record_headers(blp: Blueprint, record_type: str, record_id: str, version: int) -> dict:
    tag = blp._generate_etag({"type": record_type, "id": record_id, "version": version})
    return {"ETag": f'"{tag}"', "Cache-Control": CACHE_CONTROL}


def _client_has(headers: dict) -> bool:
    return headers["ETag"].strip('"') in if_none_match_tags() or request.if_none_match.star_tag


def check_as_of(as_of: int, session) -> int:
    """An as_of within the history this database holds: not after the latest change (the
    future is not known yet: 422), not before where its history starts (a mirror's starts at
    its snapshot: 410, as /changes answers)."""
    state = store.state(session)
    latest, history_from = (state.revision, state.history_from) if state else (0, 0)
    if as_of > latest:
        raise curation.Refused(
            HTTPStatus.UNPROCESSABLE_ENTITY,
            f"Invalid query parameter as_of: {as_of} is after the latest change, {latest}.",
            {"as_of": [f"Must be at most {latest}, the latest change's sequence number."]},
            location="query",
        )
    if as_of < history_from:
        raise curation.Refused(
            HTTPStatus.GONE,
            f"This database's history starts at sequence number {history_from} (a mirror's "
            "starts at its snapshot): ask the origin for an earlier state.",
        )
    return as_of


def _write(blp: Blueprint, record_type: str, change, media_type: str | None = None) -> Any:
    """Run `change(changes, body)` in one write transaction, then answer with the record it
    returns (and its new ETag), or with the Response it returns.

    The body and headers are read first: the transaction holds the lock every writer
    takes, and a slow client must not hold it while its body trickles in.
    """
    summary = edit_summary()
    body = read_body(media_type) if media_type else None
    with db.transaction() as session:
        changes = records.ChangeSet(session, token_name=g.get("token_name"), summary=summary)
        result = change(changes, body)
        changes.commit()
    seq = str(changes.state.revision)

    @after_this_request
    def report_seq(response: Response) -> Response:
        # The sequence number the write committed at: a client sends it back as
        # Min-Dataset-Seq to read its own write from a replica (db.py).
        response.headers[SEQ_HEADER] = seq
        return response

    if isinstance(result, Response):
        return result
    row, *rest = result
    blp.set_etag(etag_data(record_type, row))
    return (row, *rest) if rest else row


def create(blp: Blueprint, record_type: str):
    def change(changes, body):
        row = curation.save(changes, record_type, curation.load_body(record_type, body))
        return row, HTTPStatus.CREATED, {"Location": location(record_type, row.id)}

    return _write(blp, record_type, change, JSON)


def replace(blp: Blueprint, record_type: str, record_id: str, merge: bool = False):
    """PUT (the whole record) or, with `merge`, PATCH (a JSON Merge Patch of what GET shows)."""

    def change(changes, body):
        row = curation.current(changes.session, record_type, record_id)
        blp.check_etag(etag_data(record_type, row))
        if merge:
            body = curation.merge_patch(records.render(record_type, row), body)
        data = curation.load_body(record_type, body, record_id)
        return (curation.save(changes, record_type, data, row),)

    return _write(blp, record_type, change, MERGE_PATCH if merge else JSON)


def delete(blp: Blueprint, record_type: str, record_id: str):
    def change(changes, _body):
        row = curation.current(changes.session, record_type, record_id)
        blp.check_etag(etag_data(record_type, row))
        curation.delete(changes, record_type, row)
        return Response(status=HTTPStatus.NO_CONTENT)

    return _write(blp, record_type, change)


# Documentation ----------------------------------------------------------------------------------

CITATION_RULES = (
    "Each source is an `article_id` and a `quote`: the server finds the quote in the "
    "article's text and stores its offsets (give `start` when it occurs more than once). "
    "Every rule of `flask data check` holds: verbatim quotes, date and number texts found "
    "in the record's own quotes, references that resolve, no other record citing exactly "
    "the same passages; `contradicts` is kept symmetric (the other record changes too)."
)
WRITTEN_HEADERS = {
    SEQ_HEADER: {
        "description": "The sequence number the write committed at: send it back as "
        "Min-Dataset-Seq to read this write from a read replica.",
        "schema": {"type": "integer"},
    }
}
CREATED_HEADERS = {
    "Location": {"description": "URL of the new record.", "schema": {"type": "string"}},
    **WRITTEN_HEADERS,
}
SUMMARY_PARAMETER = {
    "in": "header",
    "name": SUMMARY_HEADER,
    "required": False,
    "description": (
        "Why the change is made, in one line (UTF-8, at most 500 characters); stored with "
        "the revision and shown in the record's history."
    ),
    "schema": {"type": "string", "maxLength": MAX_SUMMARY},
    "example": "Date: the article says 'between April and July'.",
}
# A body for each record type that the shipped data accepts as it stands, for Swagger UI's
# "Try it out" (tests/test_writes.py sends each one).


def _example(kind: str, title: str, article_id: str, quote: str, **fields) -> dict:
    return {
        "kind": kind,
        "title": title,
        "summary": "What the cited passage states, in the curator's words.",
        "date": None,
        **fields,
        "sources": [{"article_id": article_id, "quote": quote}],
    }


BODY_EXAMPLES = {
    "decree": _example(
        "decree",
        "Example: the mobilisation decree's official text",
        "after-russia-kill-or-be-killed",
        "the official text of the mobilisation decree",
    ),
    "campaign": _example(
        "recruitment_propaganda",
        "Example: a recruitment video",
        "news1-kremlin-recruitment-videos",
        "Another video shows a man signing a military contract",
    ),
    "penalty": _example(
        "desertion",
        "Example: a penalty for deserters",
        "after-russia-kill-or-be-killed",
        "deserters can be punished with up to 15 years in prison",
        punishment="up to 15 years in prison",
    ),
    "event": _example(
        "enlistment",
        "Example: a man chooses to enlist",
        "news1-kremlin-recruitment-videos",
        "a man who was out with his friends chooses to enlist",
    ),
    "actor": {
        "name": "Example Organisation",
        "kind": "organisation",
        "variants": [],
        "description": None,
    },
    "article": {
        "title": "Example article",
        "headline": None,
        "outlet": None,
        "byline": None,
        "language": "en",
        "published": {
            "text": None,
            "value": None,
            "precision": "unknown",
            "inferred": False,
            "inference": None,
        },
        "note": None,
        "text": "The full text of the article, as received.",
    },
}
PATCH_EXAMPLES = {
    "actor": {"description": "Corrected description."},
    "article": {"note": "What the curators could establish about the source."},
}


def documented_write(record_type: str, method: str):
    """The documentation every write shares: body, security, summary header, errors."""
    responses = {
        401: "UNAUTHORIZED",
        403: "FORBIDDEN",
        422: "UNPROCESSABLE_ENTITY",
    }
    operation: dict[str, Any] = {"security": [{"bearerAuth": []}]}
    if method != "POST":
        responses.update({404: "NOT_FOUND", 410: "GONE"})
    if method == "DELETE":
        responses[409] = "CONFLICT"
        responses.pop(422)
    else:
        media_type = MERGE_PATCH if method == "PATCH" else JSON
        schemas = PATCH_SCHEMAS if method == "PATCH" else WRITE_SCHEMAS
        responses.update(
            {
                400: "BAD_REQUEST",
                409: "CONFLICT",
                413: "REQUEST_ENTITY_TOO_LARGE",
                415: "UNSUPPORTED_MEDIA_TYPE",
            }
        )
        example = (
            PATCH_EXAMPLES.get(record_type, {"summary": "A corrected summary."})
            if method == "PATCH"
            else BODY_EXAMPLES[record_type]
        )
        operation["requestBody"] = {
            "required": True,
            "content": {media_type: {"schema": schemas[record_type], "example": example}},
        }

    def decorator(view):
        view._apidoc = deepupdate(
            getattr(view, "_apidoc", {}),
            {
                "manual_doc": {**operation, "responses": responses},
                # Added to the parameters flask-smorest documents (If-Match among them),
                # which a manual "parameters" would replace.
                "extra_parameters": [SUMMARY_PARAMETER],
            },
        )
        return view

    return decorator


# The write operations of a collection -----------------------------------------------------------


@dataclass(frozen=True)
class WriteDocs:
    """What a collection's write operations say beyond what every write says."""

    singular: str  # in operation ids: createEvent, updateEvent, ...
    create: str  # POST's description
    change: str  # added to PUT's and PATCH's
    delete: str  # DELETE's
    delete_needs: str = "write"  # the action (auth.ROLES) that DELETE needs


def _a(noun: str) -> str:
    return f"an {noun}" if noun[0] in "aeiou" else f"a {noun}"


def list_writes(blp: Blueprint, record_type: str, schema, docs: WriteDocs) -> type:
    """A base for a collection's list view: POST."""

    class ListWrites:
        @requires("write")
        @blp.if_match
        @blp.response(201, schema, headers=CREATED_HEADERS)
        @documented_write(record_type, "POST")
        @blp.doc(
            operationId=f"create{docs.singular}",
            summary=f"Create {_a(record_type)}",
            description=docs.create,
        )
        def post(self):
            return create(blp, record_type)

    return ListWrites


def detail_writes(blp: Blueprint, record_type: str, schema, id_name: str, docs: WriteDocs):
    """A base for a record's view: PUT, PATCH and DELETE, each with If-Match."""

    class DetailWrites:
        @requires("write")
        @blp.if_match
        @blp.response(200, schema, headers=WRITTEN_HEADERS)
        @documented_write(record_type, "PUT")
        @blp.doc(
            operationId=f"replace{docs.singular}",
            summary=f"Replace {_a(record_type)}",
            description=f"Replace the whole {record_type} (fields left out become null or "
            f"empty). {docs.change}",
        )
        def put(self, **path):
            return replace(blp, record_type, path[id_name])

        @requires("write")
        @blp.if_match
        @blp.response(200, schema, headers=WRITTEN_HEADERS)
        @documented_write(record_type, "PATCH")
        @blp.doc(
            operationId=f"update{docs.singular}",
            summary=f"Update {_a(record_type)}",
            description=f"Change some fields of the {record_type}: a JSON Merge Patch "
            f"(RFC 7396) of the {record_type} as GET shows it. {docs.change}",
        )
        def patch(self, **path):
            return replace(blp, record_type, path[id_name], merge=True)

        @requires(docs.delete_needs)
        @blp.if_match
        @blp.response(204, headers=WRITTEN_HEADERS)
        @documented_write(record_type, "DELETE")
        @blp.doc(
            operationId=f"delete{docs.singular}",
            summary=f"Delete {_a(record_type)}",
            description=f"{docs.delete} Its id then answers 410 Gone and is never reused; "
            "its history stays readable.",
        )
        def delete(self, **path):
            return delete(blp, record_type, path[id_name])

    return DetailWrites


# History ----------------------------------------------------------------------------------------


def revision_routes(blp: Blueprint, record_type: str, id_parameter: dict, label: str, schema):
    """GET {record}/revisions (newest first) and {record}/revisions/{version}."""
    name = id_parameter["name"]
    version_parameter = {
        "in": "path",
        "name": "version",
        "description": "Revision number (1 is the first).",
        "example": 1,
    }

    @blp.route(f"/<slug:{name}>/revisions", parameters=[id_parameter])
    class Revisions(MethodView):
        @blp.arguments(RevisionQuerySchema, location="query", as_kwargs=True)
        @blp.etag
        @blp.list_response(RevisionSchema)
        @blp.alt_response(404, "NOT_FOUND")
        @blp.doc(
            operationId=f"list{label}Revisions",
            summary=f"List a {record_type}'s revisions",
            description=(
                f"Every change to the {record_type}, newest first: when, by which token, "
                "what action, the edit summary, and the change as a JSON Patch (RFC 6902) "
                "from the revision before. A deleted record's history stays readable."
            ),
        )
        def get(self, page_size=None, cursor=None, format=None, **path):
            record_id = path[name]
            stmt = store.revision_query(record_type, record_id)
            if records.last_revision(db.session(), record_type, record_id) is None:
                curation.current(db.session(), record_type, record_id)  # 404 or the record
            return listing.respond(
                stmt,
                store.REVISION_SORTS,
                RevisionQuerySchema.order,
                page_size,
                cursor,
                RevisionSchema(),
                "revisions",
            )

    @blp.route(
        f"/<slug:{name}>/revisions/<int(min=1, max={MAX_VERSION}):version>",
        parameters=[id_parameter, version_parameter],
    )
    class RevisionDetail(MethodView):
        @blp.arguments(DetailQuerySchema, location="query", as_kwargs=True)
        @blp.etag
        @blp.response(200, schema)
        @blp.alt_response(404, "NOT_FOUND")
        @blp.alt_response(410, "GONE")
        @blp.doc(
            operationId=f"get{label}Revision",
            summary=f"Get a {record_type} as it was",
            description=(
                f"The {record_type} exactly as its detail endpoint showed it at that "
                "revision. The revision that deleted it answers 410 Gone."
            ),
        )
        def get(self, version: int, **path):
            revision = store.get_revision(db.session(), record_type, path[name], version)
            if revision is None:
                raise curation.Refused(
                    HTTPStatus.NOT_FOUND,
                    f"The {record_type} {path[name]!r} has no revision {version}.",
                )
            if revision.record is None:
                raise curation.Gone(revision)
            return Response(orjson.dumps(revision.record), mimetype=JSON)

"""The one place where flask-smorest is customised; the rest of the code imports from here."""

from functools import wraps
from http import HTTPStatus
from urllib.parse import urlencode

import flask_smorest
import marshmallow as ma
import orjson
from flask import Response, current_app, request
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import HTTPException
from werkzeug.routing import BaseConverter

from schemas.base import Schema, doc
from schemas.contract import MIN_SEQ_HEADER
from schemas.queries import encode_cursor, sort_text

from . import conditional, observability, store
from .db import db
from .store import Page

PROBLEM_JSON = "application/problem+json"


class ErrorSchema(Schema):
    """An RFC 9457 problem: what every error answers, as application/problem+json."""

    type = ma.fields.String(
        **doc("A URI naming the kind of problem; about:blank: the status says it.", "about:blank")
    )
    title = ma.fields.String(**doc("The HTTP status, for a person.", "Not Found"))
    status = ma.fields.Integer(**doc("The HTTP status code.", 404))
    detail = ma.fields.String(
        **doc("What went wrong here, for a person.", "No decree with id 'x'.")
    )
    errors = ma.fields.Dict(
        **doc(
            "Per-parameter problems, by location then field name (422).",
            {
                "query": {
                    "page_size": [
                        "Must be greater than or equal to 1 and less than or equal to 500."
                    ]
                }
            },
        )
    )
    request_id = ma.fields.String(
        **doc("The request's X-Request-Id, to quote when reporting it.", "3f2b9c1e0a7d4e8f")
    )
    deleted_at = ma.fields.AwareDateTime(
        **doc("410: when the record was deleted.", "2026-12-02T09:30:00+00:00")
    )
    deleted_by = ma.fields.String(
        allow_none=True, **doc("410: the name of the token that deleted it.", "alice")
    )
    reason = ma.fields.String(
        allow_none=True, **doc("410: the edit summary given with the deletion.", "Duplicate.")
    )
    revisions_url = ma.fields.String(
        **doc("410: the record's history.", "/api/v1/events/event-x/revisions")
    )


def _first_problem(errors: dict) -> str:
    """'Invalid query parameter page_size: Must be ...' (and how many more)."""
    found = [
        (location, name, messages)
        for location, fields in errors.items()
        if isinstance(fields, dict)
        for name, messages in fields.items()
    ]
    if not found:
        return "The request's parameters are invalid."
    location, name, messages = found[0]
    message = messages[0] if isinstance(messages, list) and messages else str(messages)
    more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
    return f"Invalid {location} parameter {name}: {message}{more}"


def problem(status: int, detail: str | None = None, headers=None, **extra) -> Response:
    """An application/problem+json response (RFC 9457)."""
    phrase = HTTPStatus(status).phrase
    body = {"type": "about:blank", "title": phrase, "status": status, "detail": detail or phrase}
    body.update(extra, request_id=observability.request_id())
    return Response(orjson.dumps(body), status, headers, mimetype=PROBLEM_JSON)


def unavailable(detail: str) -> Response:
    """503: the service cannot answer now, but may soon (the database is down or not ready)."""
    return problem(HTTPStatus.SERVICE_UNAVAILABLE, detail, {"Retry-After": "5"})


class Api(flask_smorest.Api):
    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error: HTTPException):
        """Every error, 500 included, answers one shape: an RFC 9457 problem."""
        payload, code, headers = super().handle_http_exception(error)
        if code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE:
            limit = current_app.config["MAX_CONTENT_LENGTH"]
            return problem(code, f"The request body is larger than {limit} bytes.", headers)
        if getattr(error, "valid_methods", None):  # 405: say what is allowed
            headers = {**headers, "Allow": ", ".join(error.valid_methods)}
        if "errors" in payload:  # 422: the detail names the first parameter and its problem
            detail = payload.get("message") or _first_problem(payload["errors"])
            return problem(code, detail, headers, errors=payload["errors"])
        return problem(code, payload.get("message") or error.description, headers)

    def _register_responses(self):
        """Document error responses as application/problem+json, the type they are sent as."""
        default = self.DEFAULT_RESPONSE_CONTENT_TYPE
        self.DEFAULT_RESPONSE_CONTENT_TYPE = PROBLEM_JSON
        try:
            super()._register_responses()
        finally:
            self.DEFAULT_RESPONSE_CONTENT_TYPE = default

    def _register_pagination_header(self):
        """Our lists page by cursor with Link headers; flask-smorest's X-Pagination is unused."""


MIN_SEQ_PARAMETER = {
    "in": "header",
    "name": MIN_SEQ_HEADER,
    "required": False,
    "description": "Read your own write: the Dataset-Seq a write answered. With read "
    "replicas, the request is served by one that has replayed it, or by the primary; the "
    "response's Dataset-Seq says what it reflects. Not a sequence number: 400.",
    "schema": {"type": "integer", "minimum": 0},
    "example": 42,
}


class SlugConverter(BaseConverter):
    """Record ids in URLs are slugs: anything else (a NUL byte, a space) is a 404 at routing,
    before it reaches the database."""

    regex = r"[a-z0-9]+(?:-[a-z0-9]+)*"
    openapi = {"type": "string", "pattern": f"^{regex}$", "maxLength": 100}


PAGE_HEADERS = {
    "Link": {
        "description": "RFC 8288 links to the `first`, `prev` and `next` pages.",
        "schema": {"type": "string"},
    },
    "X-Total-Count": {
        "description": "How many records match the query, over all pages.",
        "schema": {"type": "integer"},
    },
}


class QueryParser(FlaskParser):
    """Query strings are parsed strictly: unknown or repeated parameters are a 422, not ignored."""

    DEFAULT_UNKNOWN_BY_LOCATION = {
        **FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION,
        "query": None,  # None: the schema's own setting (RAISE) decides
        "querystring": None,
    }

    def pre_load(self, location_data, *, schema, req, location):
        if location in ("query", "querystring"):
            repeated = {
                name: ["Given more than once; give it once."]
                for name in req.args
                if len(req.args.getlist(name)) > 1
                and not isinstance(schema.fields.get(name), ma.fields.List)
            }
            if repeated:
                raise ma.ValidationError(repeated)
        return location_data


CACHE_CONTROL = "public, max-age=60"
FORMAT_MIMETYPES = {
    "json": "application/json",
    "csv": "text/csv",
    "ndjson": "application/x-ndjson",
}


def response_format(requested: str | None = None) -> str:
    """The `format` argument if given, else the best match for the Accept header (JSON)."""
    requested = requested or request.args.get("format")
    if requested in FORMAT_MIMETYPES:
        return requested
    best = request.accept_mimetypes.best_match(list(FORMAT_MIMETYPES.values()), "application/json")
    return next(name for name, mimetype in FORMAT_MIMETYPES.items() if mimetype == best)


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = QueryParser()

    def __init__(self, *args, reads_database: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.reads_database = reads_database
        self._prepare_doc_cbks.append(self._prepare_common_doc)

    def arguments(self, schema, **kwargs):
        """A schema class is instantiated once here, not by webargs on every request."""
        return super().arguments(schema() if isinstance(schema, type) else schema, **kwargs)

    def _prepare_common_doc(self, doc: dict, doc_info: dict, *, method: str, **_kwargs) -> dict:
        """What operations share: reads need no credentials; the database may be down (503)."""
        reads = method in ("get", "head")
        if reads:
            doc.setdefault("security", [])
        doc.setdefault("parameters", []).extend(doc_info.get("extra_parameters", []))
        if self.reads_database:
            doc.setdefault("responses", {}).setdefault(503, "SERVICE_UNAVAILABLE")
            if reads:
                doc["parameters"].append(MIN_SEQ_PARAMETER)
                doc["responses"].setdefault(400, "BAD_REQUEST")
        return doc

    def etag(self, view):
        """A strong ETag from the data revision and the request, checked before the view runs.

        Place it under @arguments, so that a request with bad arguments is refused, never 304.

        Every change to the data (a write, a load) advances the revision: a matching
        If-None-Match is answered 304 after one indexed read, without touching the records.
        """

        @wraps(view)
        def wrapper(*args, **kwargs):
            fingerprint = {
                "path": request.path,
                "args": sorted(request.args.items(multi=True)),
                "format": response_format(),
            }
            # Valid arguments: conditional.py may answer this request's 304s from now on.
            request.environ[conditional.FINGERPRINT] = (fingerprint, request.endpoint)
            tag = conditional.etag(fingerprint, store.revision(db.session()))
            headers = {"ETag": f'"{tag}"', "Cache-Control": CACHE_CONTROL}
            if tag in if_none_match_tags():
                return Response(status=HTTPStatus.NOT_MODIFIED, headers=headers)
            responses = current_app.extensions["responses"]  # conditional.ResponseCache
            if (response := responses.get(tag)) is None:
                response = responses.keep(tag, view(*args, **kwargs))
            if request.if_none_match.star_tag and response.status_code == HTTPStatus.OK:
                response = Response(status=HTTPStatus.NOT_MODIFIED)  # "*": any representation
            response.headers.update(headers)
            return response

        wrapper._apidoc = {**getattr(view, "_apidoc", {}), "etag": True}
        return wrapper

    def record_etag(self, view):
        """Document a record's own ETag on its GET (set and checked by editing.shown): it
        changes only when the record does, and is what If-Match on a write compares."""
        view._apidoc = {**getattr(view, "_apidoc", {}), "etag": True}
        return view

    def if_match(self, view):
        """flask-smorest's ETag handling, for writes: If-Match is required (428), checked by
        check_etag in the view (412), and the response carries the record's new ETag."""
        return super().etag(view)

    def _check_precondition(self):
        if request.method in self.METHODS_NEEDING_CHECK_ETAG and not request.if_match:
            raise flask_smorest.etag.PreconditionRequired(
                "This operation needs If-Match: the ETag of the record's current version, from GET."
            )

    def check_etag(self, etag_data, etag_schema=None):
        """flask-smorest's check, with the tags of compressed bodies ("<tag>:gzip") and "*"
        (any current version) matching too."""
        tag = self._generate_etag(etag_data)
        flask_smorest.etag._get_etag_ctx()["etag_checked"] = True
        if not (
            request.if_match.star_tag or tag in conditional.same_tags(request.if_match.as_set())
        ):
            raise flask_smorest.etag.PreconditionFailed(
                "The record has changed since the ETag given in If-Match: fetch it again."
            )

    def list_response(self, schema, description: str = "One page of results."):
        """Document a list: a JSON page with paging headers, or a CSV / NDJSON stream of all."""
        streamed = {"schema": {"type": "string"}}
        return lambda view: self.doc(
            responses={
                200: {
                    "content": {
                        FORMAT_MIMETYPES["csv"]: streamed,
                        FORMAT_MIMETYPES["ndjson"]: streamed,
                    }
                }
            }
        )(
            self.response(
                HTTPStatus.OK, schema(many=True), description=description, headers=PAGE_HEADERS
            )(view)
        )


def if_none_match_tags() -> set[str]:
    """If-None-Match's tags, compared weakly (RFC 9110 13.1.2): W/"x" matches "x"."""
    return conditional.same_tags(request.if_none_match.as_set(include_weak=True))


def page_headers(page: Page, order: list[tuple[str, bool]], list_name: str) -> dict[str, str]:
    """RFC 8288 Link header (first, prev, next) and the exact total, for the current request."""
    links = [("first", None)]
    sort = sort_text(order)
    if page.prev is not None:
        links.append(("prev", encode_cursor(page.prev.keys, True, sort, list_name)))
    if page.next is not None:
        links.append(("next", encode_cursor(page.next.keys, False, sort, list_name)))
    return {"Link": link_header(links), "X-Total-Count": str(page.total)}


def link_header(links: list[tuple[str, str | None]], **replaced) -> str:
    """`<url>; rel="..."` for each (rel, cursor) on the current request's URL and arguments
    (with the `replaced` ones changed)."""
    args = {**request.args.to_dict(), **{name: str(value) for name, value in replaced.items()}}
    args.pop("cursor", None)
    parts = []
    for rel, cursor in links:
        query = urlencode({**args, "cursor": cursor} if cursor else args)
        parts.append(f'<{public_url(request.path)}{"?" + query if query else ""}>; rel="{rel}"')
    return ", ".join(parts)


def public_url(path: str) -> str:
    """The URL of `path` for clients: on PUBLIC_BASE_URL if set, else path-absolute.

    Never built from the Host header, which any client sets: a cached response would carry
    a link to the client's chosen host to everyone (cache poisoning). RFC 8288 links may be
    relative to the request's URL.
    """
    return current_app.config["PUBLIC_BASE_URL"].rstrip("/") + path


def path_parameter(name: str, description: str, example: str) -> dict:
    """Documentation of a URL path parameter (flask-smorest fills in its type)."""
    return {"in": "path", "name": name, "description": description, "example": example}


def abort_not_found(kind: str, record_id: str):
    flask_smorest.abort(HTTPStatus.NOT_FOUND, message=f"No {kind} with id {record_id!r}.")

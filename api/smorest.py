"""The one place where flask-smorest is customised; the rest of the code imports from here."""

from functools import wraps
from http import HTTPStatus
from urllib.parse import urlencode

import flask_smorest
import marshmallow as ma
from flask import Response, request
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import HTTPException

from schemas.base import Schema, doc
from schemas.queries import encode_cursor, sort_text

from . import store
from .db import db
from .store import Page


class ErrorSchema(Schema):
    code = ma.fields.Integer(**doc("HTTP status code.", 404))
    status = ma.fields.String(**doc("HTTP status name.", "Not Found"))
    message = ma.fields.String(**doc("What went wrong, for a person.", "No decree with id 'x'."))
    errors = ma.fields.Dict(
        **doc(
            "Per-parameter problems, by location then field name.",
            {
                "query": {
                    "page_size": [
                        "Must be greater than or equal to 1 and less than or equal to 500."
                    ]
                }
            },
        )
    )


class Api(flask_smorest.Api):
    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error: HTTPException):
        """Every error, 500 included, answers JSON of one shape: {code, status, message, errors}."""
        payload, code, headers = super().handle_http_exception(error)
        payload.setdefault("message", error.description)
        if getattr(error, "valid_methods", None):  # 405: say what is allowed
            headers = {**headers, "Allow": ", ".join(error.valid_methods)}
        return payload, code, headers

    def _register_pagination_header(self):
        """Our lists page by cursor with Link headers; flask-smorest's X-Pagination is unused."""


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

    def etag(self, view):
        """A strong ETag from the data revision and the request, checked before the view runs.

        Place it under @arguments, so that a request with bad arguments is refused, never 304.

        The data changes only through loads, which bump the revision: a matching
        If-None-Match is answered 304 after one indexed read, without touching the records.
        """

        @wraps(view)
        def wrapper(*args, **kwargs):
            fingerprint = {
                "revision": store.revision(db.session()),
                "path": request.path,
                "args": sorted(request.args.items(multi=True)),
                "format": response_format(),
            }
            tag = self._generate_etag(fingerprint)
            headers = {"ETag": f'"{tag}"', "Cache-Control": CACHE_CONTROL}
            # flask-compress marks the tags of compressed bodies "<tag>:gzip".
            if tag in {(t or "").split(":")[0] for t in request.if_none_match}:
                return Response(status=HTTPStatus.NOT_MODIFIED, headers=headers)
            response = view(*args, **kwargs)
            if request.if_none_match.star_tag and response.status_code == HTTPStatus.OK:
                response = Response(status=HTTPStatus.NOT_MODIFIED)  # "*": any representation
            response.headers.update(headers)
            return response

        wrapper._apidoc = {**getattr(view, "_apidoc", {}), "etag": True}
        return wrapper

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


def page_headers(page: Page, order: list[tuple[str, bool]]) -> dict[str, str]:
    """RFC 8288 Link header (first, prev, next) and the exact total, for the current request."""
    links = [("first", None)]
    sort = sort_text(order)
    if page.prev is not None:
        links.append(("prev", encode_cursor(page.prev.keys, True, sort)))
    if page.next is not None:
        links.append(("next", encode_cursor(page.next.keys, False, sort)))
    return {"Link": link_header(links), "X-Total-Count": str(page.total)}


def link_header(links: list[tuple[str, str | None]]) -> str:
    """`<url>; rel="..."` for each (rel, cursor) on the current request's URL and arguments."""
    args = request.args.to_dict()
    args.pop("cursor", None)
    parts = []
    for rel, cursor in links:
        query = urlencode({**args, "cursor": cursor} if cursor else args)
        parts.append(f'<{request.base_url}{"?" + query if query else ""}>; rel="{rel}"')
    return ", ".join(parts)


def path_parameter(name: str, description: str, example: str) -> dict:
    """Documentation of a URL path parameter (flask-smorest fills in its type)."""
    return {"in": "path", "name": name, "description": description, "example": example}


def abort_not_found(kind: str, record_id: str):
    flask_smorest.abort(HTTPStatus.NOT_FOUND, message=f"No {kind} with id {record_id!r}.")

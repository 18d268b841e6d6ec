"""The one place where flask-smorest is customised; the rest of the code imports from here."""

from http import HTTPStatus
from urllib.parse import urlencode

import flask_smorest
import marshmallow as ma
from flask import request
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import HTTPException

from schemas.base import Schema, doc
from schemas.queries import encode_cursor

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
        "description": "RFC 8288 links to the `first` and `next` pages.",
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


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = QueryParser()
    # Pagination headers are part of what a list response says, so part of its ETag.
    ETAG_INCLUDE_HEADERS = ["Link", "X-Total-Count"]

    def list_response(self, schema):
        """Document a paginated list: 200 with the page's items and the paging headers."""
        return self.response(HTTPStatus.OK, schema(many=True), headers=PAGE_HEADERS)


def page_headers(page: Page) -> dict[str, str]:
    """RFC 8288 Link header (first, next) and the exact total, for the current request."""
    base = request.base_url
    args = request.args.to_dict()
    args.pop("cursor", None)
    links = [(_with_args(base, args), "first")]
    if page.next_after is not None:
        links.append((_with_args(base, {**args, "cursor": encode_cursor(page.next_after)}), "next"))
    return {
        "Link": ", ".join(f'<{url}>; rel="{rel}"' for url, rel in links),
        "X-Total-Count": str(page.total),
    }


def _with_args(base: str, args: dict[str, str]) -> str:
    return f"{base}?{urlencode(args)}" if args else base


def path_parameter(name: str, description: str, example: str) -> dict:
    """Documentation of a URL path parameter (flask-smorest fills in its type)."""
    return {"in": "path", "name": name, "description": description, "example": example}


def abort_not_found(kind: str, record_id: str):
    flask_smorest.abort(HTTPStatus.NOT_FOUND, message=f"No {kind} with id {record_id!r}.")

"""The one way every list answers: a JSON page with Link headers, or a CSV / NDJSON stream."""

from http import HTTPStatus

from flask import Response
from flask_smorest import abort
from sqlalchemy import Select

from .. import formats, store
from ..config import Config
from ..db import db
from ..smorest import FORMAT_MIMETYPES, page_headers, response_format


def respond(stmt: Select, sorts, order, page_size, cursor, schema, name: str, stored: bool = False):
    """What a list view returns: a JSON page and its headers, or a CSV / NDJSON stream.

    CSV and NDJSON stream every match, unless page_size or cursor asks for one page.
    `stored`: the records are sent in the forms stored with them (records.store_forms), which
    `schema` rendered when they changed, rather than serialised now.
    """
    fmt = response_format()
    session = db.session()
    form = formats.stored_column(fmt) if stored else None
    if fmt != "json" and page_size is None and cursor is None:
        rows = store.stream(session, stmt, sorts, order, form)
        return formats.streamed(schema, rows, fmt, name, stored)
    position = store.Position(cursor["keys"], cursor["backward"]) if cursor else None
    try:
        page = store.paginate(
            session, stmt, sorts, order, page_size or Config.DEFAULT_PAGE_SIZE, position, form
        )
    except store.InvalidCursor as error:
        abort(HTTPStatus.UNPROCESSABLE_ENTITY, errors={"query": {"cursor": [str(error)]}})
    return one_page(schema, page.items, page_headers(page, order, name), fmt, name, stored)


def one_page(schema, items, headers: dict[str, str], fmt: str, name: str, stored=False):
    """A page with its paging headers: JSON items for the response schema, or a stream
    (`stored`: the items are the records' stored forms)."""
    if fmt != "json":
        response = formats.streamed(schema, items, fmt, name, stored)
        response.headers.update(headers)
        return response
    if stored:
        body = formats.stored_body(schema, items, fmt)
        return Response(body, headers=headers, mimetype=FORMAT_MIMETYPES[fmt])
    return items, headers

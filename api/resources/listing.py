"""The one way every list answers: a JSON page with Link headers, or a CSV / NDJSON stream."""

from http import HTTPStatus

from flask_smorest import abort
from sqlalchemy import Select

from .. import formats, store
from ..config import Config
from ..db import db
from ..smorest import page_headers, response_format


def respond(stmt: Select, sorts, order, page_size, cursor, schema, name: str):
    """What a list view returns: a JSON page and its headers, or a CSV / NDJSON stream.

    CSV and NDJSON stream every match, unless page_size or cursor asks for one page.
    """
    fmt = response_format()
    session = db.session()
    if fmt != "json" and page_size is None and cursor is None:
        return formats.streamed(schema, store.stream(session, stmt, sorts, order), fmt, name)
    position = store.Position(cursor["keys"], cursor["backward"]) if cursor else None
    try:
        page = store.paginate(
            session, stmt, sorts, order, page_size or Config.DEFAULT_PAGE_SIZE, position
        )
    except store.InvalidCursor as error:
        abort(HTTPStatus.UNPROCESSABLE_ENTITY, errors={"query": {"cursor": [str(error)]}})
    return one_page(schema, page.items, page_headers(page, order, name), fmt, name)


def one_page(schema, items, headers: dict[str, str], fmt: str, name: str):
    """A page with its paging headers: JSON items for the response schema, or a stream."""
    if fmt != "json":
        response = formats.streamed(schema, items, fmt, name)
        response.headers.update(headers)
        return response
    return items, headers

"""The one way every list answers: a JSON page with Link headers, or a CSV / NDJSON stream."""

from http import HTTPStatus

from flask_smorest import abort
from sqlalchemy import Select

from .. import formats, store
from ..config import Config
from ..db import db
from ..smorest import page_headers, response_format


def respond(stmt: Select, sorts, order, page_size, cursor, schema, name: str):
    """Return what a list view returns: (items, headers) for JSON, or a streamed Response."""
    fmt = response_format()
    session = db.session()
    if fmt != "json":
        return formats.streamed(schema, store.stream(session, stmt, sorts, order), fmt, name)
    position = store.Position(cursor["keys"], cursor["backward"]) if cursor else None
    try:
        page = store.paginate(
            session, stmt, sorts, order, page_size or Config.DEFAULT_PAGE_SIZE, position
        )
    except store.InvalidCursor as error:
        abort(HTTPStatus.UNPROCESSABLE_ENTITY, errors={"query": {"cursor": [str(error)]}})
    return page.items, page_headers(page, order)

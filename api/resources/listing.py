"""The one way every list answers: a JSON page with Link headers, or a CSV / NDJSON stream."""

from contextlib import contextmanager
from http import HTTPStatus

from flask import Response
from flask_smorest import abort
from sqlalchemy import Select

from schemas.facts import COLLECTIONS

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
    size, position = page_size or Config.DEFAULT_PAGE_SIZE, cursor_position(cursor)
    with cursor_checked():
        page = store.paginate(session, stmt, sorts, order, size, position, form)
    return one_page(schema, page.items, page_headers(page, order, name), fmt, name, stored)


LINKED_PAGE = (
    "One page of the records, in id order, grouped by type: page_size counts the records of "
    "every group together."
)


def respond_linked_facts(linked_type: str, linked_id: str, order, page_size, cursor, name: str):
    """A page of the records linked to an actor or an article, grouped by type
    (FactsByTypeSchema) and sent in their stored JSON, with the paging headers."""
    size, position = page_size or Config.DEFAULT_PAGE_SIZE, cursor_position(cursor)
    with cursor_checked():
        page = store.linked_facts(db.session(), linked_type, linked_id, order, size, position)
    groups = store.facts_by_type(page.items)
    body = formats.stored_groups({COLLECTIONS[t]: forms for t, forms in groups.items()})
    headers = page_headers(page, order, name)
    return Response(body, headers=headers, mimetype=FORMAT_MIMETYPES["json"])


def cursor_position(cursor: dict | None) -> store.Position | None:
    """Where the cursor argument says a page starts (None: the first page)."""
    return store.Position(cursor["keys"], cursor["backward"]) if cursor else None


@contextmanager
def cursor_checked():
    """A cursor that does not fit its list's query (store.InvalidCursor) is a 422."""
    try:
        yield
    except store.InvalidCursor as error:
        abort(HTTPStatus.UNPROCESSABLE_ENTITY, errors={"query": {"cursor": [str(error)]}})


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

"""The change feed: every change to every record, in the one sequence of commits."""

from http import HTTPStatus

import orjson
from flask import Response
from flask.views import MethodView

from schemas.changes import ChangeSchema
from schemas.contract import DEFAULT_PAGE_SIZE, SEQ_HEADER
from schemas.queries import ChangesQuerySchema

from .. import curation, formats, records, store
from ..db import db
from ..smorest import PAGE_HEADERS, Blueprint, link_header, response_format

SEQ_HEADER_DOC = {
    SEQ_HEADER: {
        "description": "The sequence number of the latest change: a client that has applied "
        "it is caught up.",
        "schema": {"type": "integer"},
    }
}

blp = Blueprint(
    "changes",
    __name__,
    url_prefix="/changes",
    description="Every change to every record, in commit order: what mirrors follow.",
)


@blp.route("")
class Changes(MethodView):
    @blp.arguments(ChangesQuerySchema, location="query", as_kwargs=True)
    @blp.etag
    @blp.response(
        200,
        ChangeSchema(many=True),
        description="The changes after `since`, oldest first.",
        headers={"Link": PAGE_HEADERS["Link"], **SEQ_HEADER_DOC},
    )
    @blp.alt_response(410, "GONE")
    @blp.doc(
        operationId="listChanges",
        responses={200: {"content": {"application/x-ndjson": {"schema": {"type": "string"}}}}},
    )
    def get(self, since: int, format=None, type: str | None = None, page_size=None):
        """List changes

        Each committed change to any record (created, updated, deleted, and the imports of
        `flask data load`) has the next number of one sequence, in commit order: a change is
        never visible before every change numbered below it. Follow the `next` link, or pass
        the `seq` of the last change applied as `since`, until a page is empty and
        `Dataset-Seq` equals that `seq`. Created and updated changes carry the whole record
        as its detail endpoint showed it; deletions carry the tombstone. To start a mirror,
        read /export (a snapshot, with the sequence number it was taken at), then follow
        this feed from that number: nothing is lost and nothing comes twice.
        """
        session = db.session()
        state = store.state(session)
        latest, history_from = (state.revision, state.history_from) if state else (0, 0)
        if since < history_from:
            raise curation.Refused(
                HTTPStatus.GONE,
                f"This feed holds the changes after {history_from} only (its history starts at "
                f"a snapshot): read /api/v1/export, then follow the feed from its sequence "
                "number.",
            )
        size = page_size or DEFAULT_PAGE_SIZE
        page = store.changes(session, since, type, size)
        headers = {SEQ_HEADER: str(latest)}
        if len(page) == size:  # there may be more
            headers["Link"] = link_header([("next", None)], since=page[-1].seq)
        entries = [records.change_entry(revision) for revision in page]
        if response_format(format) == "ndjson":  # else JSON (a CSV asked for by Accept too)
            lines = [orjson.dumps(entry) + b"\n" for entry in entries]
            return formats.streamed_lines(lines, "changes", headers)
        return Response(orjson.dumps(entries), mimetype="application/json", headers=headers)

"""The whole dataset in one streamed snapshot, taken at a sequence number."""

import hashlib
from collections import Counter

import orjson
from flask.views import MethodView

from schemas.contract import SEQ_HEADER
from schemas.queries import ExportQuerySchema
from schemas.writes import RECORD_COLLECTIONS

from .. import formats, records, store
from ..db import db
from ..smorest import Blueprint
from .changes import SEQ_HEADER_DOC
from .editing import check_as_of

blp = Blueprint(
    "export",
    __name__,
    url_prefix="/export",
    description="The whole dataset, streamed: a snapshot to start a mirror from.",
)


def snapshot_lines(revisions, seq: int):
    """One line per record, then the manifest: the counts and a SHA-256 of the lines before."""
    digest, counts = hashlib.sha256(), Counter()
    for revision in revisions:
        line = orjson.dumps(records.change_entry(revision, with_patch=False)) + b"\n"
        digest.update(line)
        counts[RECORD_COLLECTIONS[revision.record_type]] += 1
        yield line
    manifest = {
        "seq": seq,
        "counts": {collection: counts[collection] for collection in _COLLECTIONS},
        "sha256": digest.hexdigest(),
    }
    yield orjson.dumps({"manifest": manifest}) + b"\n"


_COLLECTIONS = [RECORD_COLLECTIONS[record_type] for record_type in store.SNAPSHOT_ORDER]


@blp.route("")
class Export(MethodView):
    @blp.arguments(ExportQuerySchema, location="query", as_kwargs=True)
    @blp.etag
    @blp.response(
        200, description="One record per line, then the manifest.", headers=SEQ_HEADER_DOC
    )
    @blp.doc(
        operationId="export",
        responses={
            200: {
                "content": {
                    "application/x-ndjson": {
                        "schema": {"type": "string"},
                        "example": '{"seq": 1, "type": "article", "id": "...", "record": {}}\n'
                        '{"manifest": {"seq": 103, "counts": {}, "sha256": "..."}}\n',
                    }
                }
            }
        },
    )
    def get(self, format: str, as_of: int | None = None):
        """Export the whole dataset

        Every article (with its text), actor and record, as NDJSON: one line per record, in
        the shape of a change (/changes) that created it as it now is: `type`, `id`,
        `version`, `seq` of its latest change, and `record`, exactly as its detail endpoint
        shows it. Articles come first, then actors, then decrees, campaigns, penalties and
        events, each by id. The last line is the manifest: `{"manifest": {"seq", "counts",
        "sha256"}}`, the SHA-256 being of every line before it. The snapshot is one state:
        the one at `seq` (also the `Dataset-Seq` header); following /changes?since=<seq>
        afterwards loses nothing and repeats nothing. With `as_of`, the dataset as it was
        at that sequence number.
        """
        # The sequence number and the records from one snapshot: the request's session
        # closes before a stream begins, and a new transaction could see later commits.
        session = db.stream_session()
        try:
            latest = store.revision(session)
            seq = latest if as_of is None else check_as_of(as_of, session)
        except BaseException:
            session.close()
            raise
        lines = snapshot_lines(store.snapshot(session, as_of), seq)
        response = formats.streamed_lines(lines, "conscription-facts", {SEQ_HEADER: str(seq)})
        response.call_on_close(session.close)  # also when the stream never starts
        return response

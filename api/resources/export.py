"""The whole dataset in one streamed response, for mirrors and bulk analysis."""

from flask.views import MethodView

from schemas.queries import ExportQuerySchema
from schemas.results import FactExportSchema

from .. import formats, store
from ..db import db
from ..smorest import Blueprint

blp = Blueprint(
    "export",
    __name__,
    url_prefix="/export",
    description="Bulk export of every record, streamed.",
)


@blp.route("")
class Export(MethodView):
    @blp.arguments(ExportQuerySchema, location="query", as_kwargs=True)
    @blp.etag
    @blp.response(200, FactExportSchema(many=True))
    @blp.doc(
        operationId="export",
        responses={
            200: {
                "content": {
                    "text/csv": {"schema": {"type": "string"}},
                    "application/x-ndjson": {"schema": {"type": "string"}},
                }
            }
        },
    )
    def get(self, format):
        """Export every record

        Every decree, campaign, penalty and event, by type and id, streamed as NDJSON (the
        default: one record per line), CSV or a JSON array. Fields only one type has are in
        `details`. Articles and actors export from their lists with `format=ndjson`.
        """
        stmt = store.fact_query(None)
        rows = store.stream(db.session(), stmt, store.FACT_SORTS, [("type", False)])
        return formats.streamed(FactExportSchema(), rows, format, "conscription-facts")

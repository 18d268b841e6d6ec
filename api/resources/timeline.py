"""Every dated record of every type in chronological order; the undated ones apart."""

from flask.views import MethodView

from schemas.queries import TimelineQuerySchema, UndatedQuerySchema
from schemas.results import TimelineEntrySchema

from .. import store
from ..db import db
from ..smorest import Blueprint
from . import listing

blp = Blueprint(
    "timeline",
    __name__,
    url_prefix="/timeline",
    description="Records of every type in the order they happened.",
)


@blp.route("")
class Timeline(MethodView):
    @blp.arguments(TimelineQuerySchema, location="query", as_kwargs=True)
    @blp.etag
    @blp.list_response(TimelineEntrySchema)
    @blp.doc(operationId="timeline")
    def get(self, type=None, page_size=None, cursor=None, format=None, **filters):
        """List dated records chronologically

        Every record whose date is known at least to the year, ordered by the first day its
        date may denote (a record known only to 2022 sorts at 2022-01-01), then by id.
        `earliest` and `latest` give the span of days the date may denote. Records without a
        usable date are not guessed into place: they are at /timeline/undated.
        """
        stmt = store.fact_query(type, dated=True, dialect=db.dialect(), **filters)
        return listing.respond(
            stmt,
            store.FACT_SORTS,
            TimelineQuerySchema.order,
            page_size,
            cursor,
            TimelineEntrySchema(),
            "timeline",
        )


@blp.route("/undated")
class UndatedRecords(MethodView):
    @blp.arguments(UndatedQuerySchema, location="query", as_kwargs=True)
    @blp.etag
    @blp.list_response(TimelineEntrySchema)
    @blp.doc(operationId="timelineUndated")
    def get(self, type=None, page_size=None, cursor=None, format=None, **filters):
        """List records without a usable date

        Records whose date, or its year, the sources do not give, by type and id. Date
        filters match none of them.
        """
        stmt = store.fact_query(type, dated=False, dialect=db.dialect(), **filters)
        return listing.respond(
            stmt,
            store.FACT_SORTS,
            UndatedQuerySchema.order,
            page_size,
            cursor,
            TimelineEntrySchema(),
            "undated",
        )

"""Decrees, campaigns, penalties and events: one blueprint per type, built the same way."""

from flask.views import MethodView

from schemas.facts import FACT_SCHEMAS, FactSchema
from schemas.queries import (
    CampaignQuerySchema,
    DecreeQuerySchema,
    EventQuerySchema,
    FactQuerySchema,
    PenaltyQuerySchema,
)

from .. import store
from ..db import db
from ..models import Fact
from ..smorest import Blueprint, abort_not_found, page_headers, path_parameter

# type: (collection, plural label, what the type holds, query schema)
FACT_RESOURCES: dict[str, tuple[str, str, str, type[FactQuerySchema]]] = {
    "decree": (
        "decrees",
        "Decrees",
        "Decrees, laws, orders and policies: who issued them, when, and what they order.",
        DecreeQuerySchema,
    ),
    "campaign": (
        "campaigns",
        "Campaigns",
        "Draft campaigns: regular call-ups, mobilisation and recruitment drives, with quotas, "
        "periods, age limits and notification channels.",
        CampaignQuerySchema,
    ),
    "penalty": (
        "penalties",
        "Penalties",
        "Legal penalties for desertion, voluntary surrender, refusal to serve and draft evasion.",
        PenaltyQuerySchema,
    ),
    "event": (
        "events",
        "Events",
        "Reported events: enlistments, protests, detentions, flight abroad, official statements "
        "and denials, estimates, media campaigns and more.",
        EventQuerySchema,
    ),
}


def fact_blueprint(fact_type: str, schema: type[FactSchema]) -> Blueprint:
    collection, label, description, query_schema = FACT_RESOURCES[fact_type]
    singular = label[:-1] if fact_type != "penalty" else "Penalty"
    blp = Blueprint(collection, __name__, url_prefix=f"/{collection}", description=description)

    @blp.route("")
    class FactList(MethodView):
        @blp.etag
        @blp.arguments(query_schema, location="query", as_kwargs=True)
        @blp.list_response(schema)
        @blp.doc(
            operationId=f"list{label}",
            summary=f"List {collection}",
            description=f"{description} In id order; filters combine with AND.",
        )
        def get(self, page_size: int, cursor: str | None = None, **filters):
            stmt = store.fact_query(fact_type, **filters)
            page = store.paginate(db.session(), stmt, Fact.id, page_size, cursor)
            return page.items, page_headers(page)

    example_id = schema._declared_fields["id"].metadata["example"]
    fact_id = path_parameter("fact_id", f"Id of the {fact_type}.", example_id)

    @blp.route("/<fact_id>", parameters=[fact_id])
    class FactDetail(MethodView):
        @blp.etag
        @blp.response(200, schema)
        @blp.doc(
            operationId=f"get{singular}",
            summary=f"Get one {fact_type}",
            description=f"One {fact_type} with all its sources, actors and contradictions.",
        )
        def get(self, fact_id: str):
            fact = store.get_fact(db.session(), fact_type, fact_id)
            if fact is None:
                abort_not_found(fact_type, fact_id)
            return fact

    return blp


blueprints = [fact_blueprint(fact_type, schema) for fact_type, schema in FACT_SCHEMAS.items()]

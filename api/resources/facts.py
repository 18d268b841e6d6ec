"""Decrees, campaigns, penalties and events: one blueprint per type, built the same way."""

from flask.views import MethodView

from schemas.facts import FACT_SCHEMAS, FactSchema
from schemas.queries import (
    AsOfQuerySchema,
    CampaignFacetQuerySchema,
    CampaignQuerySchema,
    DecreeFacetQuerySchema,
    DecreeQuerySchema,
    EventFacetQuerySchema,
    EventQuerySchema,
    PenaltyFacetQuerySchema,
    PenaltyQuerySchema,
)
from schemas.results import FacetsSchema

from .. import records, store
from ..db import db
from ..smorest import Blueprint, path_parameter
from . import editing, listing

# type: (collection, plural label, what the type holds, list query schema, facets query schema)
FACT_RESOURCES = {
    "decree": (
        "decrees",
        "Decrees",
        "Decrees, laws, orders and policies: who issued them, when, and what they order.",
        DecreeQuerySchema,
        DecreeFacetQuerySchema,
    ),
    "campaign": (
        "campaigns",
        "Campaigns",
        "Draft campaigns: regular call-ups, mobilisation and recruitment drives, with quotas, "
        "periods, age limits and notification channels.",
        CampaignQuerySchema,
        CampaignFacetQuerySchema,
    ),
    "penalty": (
        "penalties",
        "Penalties",
        "Legal penalties for desertion, voluntary surrender, refusal to serve and draft evasion.",
        PenaltyQuerySchema,
        PenaltyFacetQuerySchema,
    ),
    "event": (
        "events",
        "Events",
        "Reported events: enlistments, protests, detentions, flight abroad, official statements "
        "and denials, estimates, media campaigns and more.",
        EventQuerySchema,
        EventFacetQuerySchema,
    ),
}


def fact_blueprint(fact_type: str, schema: type[FactSchema]) -> Blueprint:
    collection, label, description, query_schema, facet_schema = FACT_RESOURCES[fact_type]
    singular = label[:-1] if fact_type != "penalty" else "Penalty"
    blp = Blueprint(collection, __name__, url_prefix=f"/{collection}", description=description)
    listed = records.LIST_SCHEMAS[fact_type]

    docs = editing.WriteDocs(
        singular=singular,
        create=f"Add {'an' if fact_type == 'event' else 'a'} {fact_type}. {editing.CITATION_RULES}",
        change=editing.CITATION_RULES,
        delete=f"Delete the {fact_type}. Records that contradict it no longer do. A decree "
        "that a campaign or penalty refers to, or an event a penalty lists among its cases, "
        "cannot be deleted (409).",
    )

    @blp.route("")
    class FactList(editing.list_writes(blp, fact_type, schema, docs), MethodView):
        @blp.arguments(query_schema, location="query", as_kwargs=True)
        @blp.etag
        @blp.list_response(schema)
        @blp.doc(
            operationId=f"list{label}",
            summary=f"List {collection}",
            description=f"{description} Filters combine with AND; id order by default.",
        )
        def get(self, sort, page_size=None, cursor=None, format=None, **filters):
            stmt = store.fact_query(fact_type, dialect=db.dialect(), **filters)
            return listing.respond(
                stmt, store.FACT_SORTS, sort, page_size, cursor, listed, collection, stored=True
            )

    @blp.route("/facets")
    class FactFacets(MethodView):
        @blp.arguments(facet_schema, location="query", as_kwargs=True)
        @blp.etag
        @blp.response(200, FacetsSchema)
        @blp.doc(
            operationId=f"facet{label}",
            summary=f"Count {collection} by facet",
            description=(
                f"How many {collection} match the filters (the same as the list's), counted by "
                "each facet asked for: kind, year, article, actor, type."
            ),
        )
        def get(self, facets, **filters):
            stmt = store.fact_query(fact_type, dialect=db.dialect(), **filters)
            unfiltered = all(value is None for value in filters.values())
            return store.facets(db.session(), stmt, facets, whole=fact_type if unfiltered else None)

    example_id = schema._declared_fields["id"].metadata["example"]
    fact_id = path_parameter("fact_id", f"Id of the {fact_type}.", example_id)

    @blp.route("/<slug:fact_id>", parameters=[fact_id])
    class FactDetail(editing.detail_writes(blp, fact_type, schema, "fact_id", docs), MethodView):
        @blp.arguments(AsOfQuerySchema, location="query", as_kwargs=True)
        @blp.record_etag
        @blp.response(200, schema)
        @blp.alt_response(404, "NOT_FOUND")
        @blp.alt_response(410, "GONE")
        @blp.doc(
            operationId=f"get{singular}",
            summary=f"Get one {fact_type}",
            description=f"One {fact_type} with all its sources, actors and contradictions.",
        )
        def get(self, fact_id: str, as_of: int | None = None):
            return editing.shown(blp, fact_type, fact_id, as_of)

    editing.revision_routes(blp, fact_type, fact_id, singular, schema)
    return blp


blueprints = [fact_blueprint(fact_type, schema) for fact_type, schema in FACT_SCHEMAS.items()]

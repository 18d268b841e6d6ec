"""People, organisations and places, and the records that involve them."""

from flask.views import MethodView

from schemas.actors import ActorDetailSchema, ActorSchema
from schemas.facts import COLLECTIONS, FactsByTypeSchema
from schemas.queries import ActorQuerySchema, AsOfQuerySchema, DetailQuerySchema

from .. import records, store
from ..db import db
from ..smorest import Blueprint, abort_not_found, path_parameter
from . import editing, listing

blp = Blueprint(
    "actors",
    __name__,
    url_prefix="/actors",
    description="People, organisations and places that the records mention, one id each.",
)
WRITES = editing.WriteDocs(
    singular="Actor",
    create="Add a person, organisation, place or system that records can involve.",
    change="A new name shows in every record that involves the actor (each gets a revision).",
    delete="Needs an admin's token. An actor that records still involve cannot be deleted (409).",
    delete_needs="delete_sources",
)


@blp.route("")
class ActorList(editing.list_writes(blp, "actor", ActorDetailSchema, WRITES), MethodView):
    @blp.arguments(ActorQuerySchema, location="query", as_kwargs=True)
    @blp.etag
    @blp.list_response(ActorSchema)
    @blp.doc(operationId="listActors")
    def get(self, sort, page_size=None, cursor=None, format=None, **filters):
        """List actors

        Actors, in id order by default.
        """
        stmt = store.actor_query(**filters)
        return listing.respond(
            stmt, store.ACTOR_SORTS, sort, page_size, cursor, LISTED, "actors", stored=True
        )


LISTED = records.LIST_SCHEMAS["actor"]
ACTOR_ID = path_parameter("actor_id", "Actor id.", "vladimir-putin")


@blp.route("/<slug:actor_id>", parameters=[ACTOR_ID])
class ActorDetail(
    editing.detail_writes(blp, "actor", ActorDetailSchema, "actor_id", WRITES), MethodView
):
    @blp.arguments(AsOfQuerySchema, location="query", as_kwargs=True)
    @blp.record_etag
    @blp.response(200, ActorDetailSchema)
    @blp.alt_response(404, "NOT_FOUND")
    @blp.alt_response(410, "GONE")
    @blp.doc(operationId="getActor")
    def get(self, actor_id: str, as_of: int | None = None):
        """Get one actor

        The actor; the records that involve it are at `facts_url`.
        """
        return editing.shown(blp, "actor", actor_id, as_of)


@blp.route("/<slug:actor_id>/facts", parameters=[ACTOR_ID])
class ActorFacts(MethodView):
    @blp.arguments(DetailQuerySchema, location="query", as_kwargs=True)
    @blp.etag
    @blp.response(200, FactsByTypeSchema)
    @blp.alt_response(404, "NOT_FOUND")
    @blp.doc(operationId="listActorFacts")
    def get(self, actor_id: str):
        """List every record involving an actor

        All decrees, campaigns, penalties and events that involve the actor, grouped by
        type; each lists the actor's role among its `actors`.
        """
        session = db.session()
        if store.get_actor(session, actor_id) is None:
            abort_not_found("actor", actor_id)
        facts = store.facts_by_type(session, store.fact_query(None, actor=actor_id))
        return {COLLECTIONS[fact_type]: items for fact_type, items in facts.items()}


editing.revision_routes(blp, "actor", ACTOR_ID, "Actor", ActorDetailSchema)

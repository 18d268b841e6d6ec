"""People, organisations and places, and the records that involve them."""

from flask.views import MethodView

from schemas.actors import ActorDetailSchema, ActorSchema
from schemas.facts import FactsByTypeSchema
from schemas.queries import ActorFactsQuerySchema, ActorQuerySchema, AsOfQuerySchema

from .. import records, store
from ..db import db
from ..smorest import PAGE_HEADERS, Blueprint, abort_not_found, path_parameter
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
    @blp.arguments(ActorFactsQuerySchema, location="query", as_kwargs=True)
    @blp.etag
    @blp.response(200, FactsByTypeSchema, description=listing.LINKED_PAGE, headers=PAGE_HEADERS)
    @blp.alt_response(404, "NOT_FOUND")
    @blp.doc(operationId="listActorFacts")
    def get(self, actor_id: str, page_size=None, cursor=None):
        """List the records involving an actor

        The decrees, campaigns, penalties and events that involve the actor, a page at a time
        in id order, grouped by type; each lists the actor's role among its `actors`.
        """
        if store.get_actor(db.session(), actor_id) is None:
            abort_not_found("actor", actor_id)
        return listing.respond_linked_facts(
            "actor", actor_id, ActorFactsQuerySchema.order, page_size, cursor, "actor_facts"
        )


editing.revision_routes(blp, "actor", ACTOR_ID, "Actor", ActorDetailSchema)

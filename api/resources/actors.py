"""People, organisations and places, and the records that involve them."""

from flask.views import MethodView

from schemas.actors import ActorDetailSchema, ActorSchema
from schemas.queries import ActorQuerySchema, DetailQuerySchema

from .. import store
from ..db import db
from ..smorest import Blueprint, abort_not_found, path_parameter
from . import listing

blp = Blueprint(
    "actors",
    __name__,
    url_prefix="/actors",
    description="People, organisations and places that the records mention, one id each.",
)


@blp.route("")
class ActorList(MethodView):
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
            stmt, store.ACTOR_SORTS, sort, page_size, cursor, ActorSchema(), "actors"
        )


@blp.route(
    "/<slug:actor_id>", parameters=[path_parameter("actor_id", "Actor id.", "vladimir-putin")]
)
class ActorDetail(MethodView):
    @blp.arguments(DetailQuerySchema, location="query", as_kwargs=True)
    @blp.etag
    @blp.response(200, ActorDetailSchema)
    @blp.alt_response(404, "NOT_FOUND")
    @blp.doc(operationId="getActor")
    def get(self, actor_id: str):
        """Get one actor

        The actor and a reference to every record that involves it, with its role there.
        """
        actor = store.get_actor(db.session(), actor_id)
        if actor is None:
            abort_not_found("actor", actor_id)
        return actor

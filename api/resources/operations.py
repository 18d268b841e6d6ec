"""Liveness and readiness, for load balancers and orchestrators (outside /api/v1)."""

import marshmallow as ma
from flask.views import MethodView

from schemas.base import Schema, doc
from schemas.queries import DetailQuerySchema

from .. import store
from ..db import db
from ..migrate import schema_is_current
from ..smorest import Blueprint, unavailable

blp = Blueprint(
    "operations",
    __name__,
    url_prefix="",
    description="Whether this server is alive and ready to serve, for load balancers.",
    reads_database=False,  # /readyz documents its own 503
)


class HealthSchema(Schema):
    status = ma.fields.String(**doc("`ok`: the process serves requests.", "ok"))


class ReadinessSchema(HealthSchema):
    revision = ma.fields.Integer(**doc("The data revision being served.", 1))


@blp.route("/healthz")
class Health(MethodView):
    @blp.arguments(DetailQuerySchema, location="query", as_kwargs=True)
    @blp.response(200, HealthSchema)
    @blp.doc(operationId="health", security=[])
    def get(self):
        """Liveness

        The process answers: it needs no restart. Says nothing of the database (see /readyz),
        so that a database outage does not get every server restarted.
        """
        return {"status": "ok"}


@blp.route("/readyz")
class Readiness(MethodView):
    @blp.arguments(DetailQuerySchema, location="query", as_kwargs=True)
    @blp.response(200, ReadinessSchema)
    @blp.alt_response(503, description="Not ready: the database is unreachable, or not loaded.")
    @blp.doc(operationId="readiness", security=[])
    def get(self):
        """Readiness

        The server can answer data requests: the database is reachable, its schema is at the
        latest migration and the dataset is loaded. 503 with the reason otherwise.
        """
        session = db.session()
        if not schema_is_current(session.connection()):
            return unavailable("The database schema is not current: run `flask db upgrade`.")
        revision = store.revision(session)
        if not revision:
            return unavailable("The dataset is not loaded: run `flask data load`.")
        return {"status": "ok", "revision": revision}

"""People, organisations and places that the records mention."""

import marshmallow as ma

from .base import SLUG, Schema, doc, printable, resource_url, timestamp_fields
from .facts import ActorFactSchema

ACTOR_KINDS = ("person", "organisation", "place", "system")


class ActorSchema(Schema):
    id = ma.fields.String(
        required=True, validate=SLUG, **doc("Stable, readable id.", "vladimir-putin")
    )
    name = ma.fields.String(
        required=True, validate=printable, **doc("Canonical name.", "Vladimir Putin")
    )
    kind = ma.fields.String(
        required=True,
        validate=ma.validate.OneOf(ACTOR_KINDS),
        **doc("What sort of actor.", "person", enum=list(ACTOR_KINDS)),
    )
    variants = ma.fields.List(
        ma.fields.String(),
        required=True,
        **doc("Other forms of the name found in the articles.", ["Putin", "President Putin"]),
    )
    description = ma.fields.String(
        required=True,
        allow_none=True,
        **doc("Who or what this is, as the articles describe it.", "Russian President"),
    )
    url = resource_url("actors", **doc("This actor.", "/api/v1/actors/vladimir-putin"))
    created_at, updated_at = timestamp_fields("actor")


class ActorDetailSchema(ActorSchema):
    facts = ma.fields.List(
        ma.fields.Nested(ActorFactSchema),
        attribute="fact_links",
        dump_only=True,
        **doc("Every record that involves the actor, with the actor's role in it.", []),
    )

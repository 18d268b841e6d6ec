"""People, organisations and places that the records mention."""

import marshmallow as ma

from .base import SLUG, Schema, doc, label, resource_url, timestamp_fields

ACTOR_KINDS = ("person", "organisation", "place", "system")


class ActorSchema(Schema):
    id = ma.fields.String(
        required=True, validate=SLUG, **doc("Stable, readable id.", "vladimir-putin")
    )
    name = ma.fields.String(
        required=True, validate=label(200), **doc("Canonical name.", "Vladimir Putin")
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
    facts_url = resource_url(
        "actors",
        suffix="/facts",
        **doc("Every record that involves this actor.", "/api/v1/actors/vladimir-putin/facts"),
    )
    created_at, updated_at = timestamp_fields("actor")


class ActorDetailSchema(ActorSchema):
    """An actor on its own: the records that involve it are at `facts_url`, so that the
    actor's representation (and ETag) changes only when the actor does."""

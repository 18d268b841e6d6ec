"""The change feed and snapshots: what mirrors read."""

import marshmallow as ma

from .base import Schema, doc
from .writes import RECORD_COLLECTIONS

FEED_ACTIONS = ("created", "updated", "deleted")


class TombstoneSchema(Schema):
    deleted_at = ma.fields.String(
        **doc("When the record was deleted.", "2026-12-02T09:30:00+00:00")
    )
    deleted_by = ma.fields.String(
        allow_none=True, **doc("The name of the token that deleted it.", "alice")
    )
    reason = ma.fields.String(
        allow_none=True, **doc("The edit summary given with the deletion.", "A duplicate.")
    )


class ChangeSchema(Schema):
    """One change to one record (an entry of /changes, or a line of a snapshot)."""

    seq = ma.fields.Integer(
        **doc("Its place in the one sequence of every change, in commit order.", 104)
    )
    at = ma.fields.String(**doc("When it was committed.", "2026-12-02T09:30:00+00:00"))
    type = ma.fields.String(**doc("The record's type.", "event", enum=list(RECORD_COLLECTIONS)))
    id = ma.fields.String(**doc("The record's id.", "event-protesters-detained"))
    action = ma.fields.String(
        **doc(
            "created, updated or deleted (a `flask data load` import is created or updated).",
            "updated",
            enum=list(FEED_ACTIONS),
        )
    )
    version = ma.fields.Integer(**doc("The record's version after the change.", 2))
    token = ma.fields.String(
        allow_none=True,
        **doc("The name of the token that made it; null for `flask data load`.", "alice"),
    )
    summary = ma.fields.String(
        allow_none=True, **doc("The edit summary given with it.", "Corrected the date.")
    )
    record = ma.fields.Dict(
        **doc(
            "Created or updated: the whole record exactly as its detail endpoint showed it.",
            {"id": "event-protesters-detained", "title": "..."},
        )
    )
    tombstone = ma.fields.Nested(TombstoneSchema, **doc("Deleted: when, by whom and why.", None))
    patch = ma.fields.List(
        ma.fields.Dict(),
        **doc(
            "The change as a JSON Patch (RFC 6902) from the record's previous version "
            "(/changes only).",
            [{"op": "replace", "path": "/title", "value": "Protesters detained"}],
        ),
    )

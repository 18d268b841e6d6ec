"""What clients send to create or change a record, and what the history shows of a change.

Write bodies are the records' own schemas (the contract of data/), with three allowances for
people writing by hand: the server finds a quote's offsets, so `start` and `end` are optional;
fields that may be null or empty can be left out (they are then null or empty); and the
fields the server derives (`url`, `type`, `disputed`, timestamps, names of linked actors) are
ignored, so a record fetched with GET can be changed and sent back with PUT as it is.
"""

import copy

import marshmallow as ma

from .actors import ActorSchema
from .articles import ArticleSchema
from .base import SLUG, Schema, doc, read_only_removed
from .common import CitationSchema
from .contract import API_PREFIX
from .facts import COLLECTIONS, FACT_SCHEMAS, FactSchema

# record type -> its collection in URLs and in data/
RECORD_COLLECTIONS = {**COLLECTIONS, "actor": "actors", "article": "articles"}


class WriteSchema(Schema):
    @ma.pre_load
    def without_read_only(self, data, **kwargs):
        return read_only_removed(self, data) if isinstance(data, dict) else data


def _writable(
    name: str, base: type[Schema], overrides: dict[str, ma.fields.Field], partial: bool = False
) -> type[Schema]:
    """`base` as a write body: fields that may be null or empty may be left out (and then
    are), or, `partial`, every field may be left out (a merge patch, for the documentation)."""
    fields = {}
    for field_name, schema_field in {**base._declared_fields, **overrides}.items():
        may_be_empty = isinstance(schema_field, ma.fields.List) and not any(
            isinstance(v, ma.validate.Length) and v.min for v in schema_field.validators
        )  # `sources` may not
        optional = partial or may_be_empty or schema_field.allow_none
        if not schema_field.dump_only and schema_field.required and optional:
            schema_field = copy.copy(schema_field)  # the base schema's field stays as it is
            schema_field.required = False
            if not partial:
                is_list = isinstance(schema_field, ma.fields.List)
                schema_field.load_default = list if is_list else None
        fields[field_name] = schema_field
    return type(name, (WriteSchema, base), {**fields, "__doc__": base.__doc__})


def _optional_id(example: str) -> ma.fields.String:
    return ma.fields.String(
        load_default=None,
        validate=SLUG,
        **doc(
            "The new record's id (a slug). Left out, the server derives one from the title; "
            "an id in use, or ever used, is refused (409).",
            example,
        ),
    )


class CitationWriteSchema(WriteSchema, CitationSchema):
    start = ma.fields.Integer(
        load_default=None,
        validate=ma.validate.Range(min=0),
        **doc(
            "Where the quote starts in the article's text; needed only when the quote occurs "
            "there more than once (the server finds it otherwise).",
            2108,
        ),
    )
    end = ma.fields.Integer(
        load_default=None,
        validate=ma.validate.Range(min=1),
        **doc("Optional: if given, it must be `start` plus the quote's length.", 2163),
    )

    @ma.validates_schema
    def check_span(self, data, **kwargs):
        if None not in (data.get("start"), data.get("end")) and "quote" in data:
            super().check_span(data, **kwargs)


_SOURCES = ma.fields.List(
    ma.fields.Nested(CitationWriteSchema),
    required=True,
    validate=ma.validate.Length(min=1, max=100),
    **doc(
        "Verbatim citations: each an article id and a passage of its text; never empty.",
        [
            {
                "article_id": "after-russia-kill-or-be-killed",
                "quote": "deserters can be punished with up to 15 years in prison",
            }
        ],
    ),
)


def _fact_overrides(schema: type[FactSchema]) -> dict[str, ma.fields.Field]:
    example = schema._declared_fields["id"].metadata["example"]
    return {"id": _optional_id(example), "sources": _SOURCES}


MAX_ARTICLE_TEXT = 200_000  # characters: a long article is a tenth of it

_ARTICLE_OVERRIDES = {
    "id": _optional_id("after-russia-kill-or-be-killed"),
    "file": ma.fields.String(
        load_default=None,
        validate=ma.validate.Regexp(
            r"^articles/[A-Za-z0-9_.-]{1,180}\.txt$",
            error="Must be articles/<name>.txt, the name at most 180 characters.",
        ),
        **doc(
            "Where `flask data export` writes the text inside data/; default `articles/<id>.txt`.",
            "articles/after-russia-kill-or-be-killed.txt",
        ),
    ),
    "text": ma.fields.String(
        required=True,
        validate=ma.validate.Length(min=1, max=MAX_ARTICLE_TEXT),
        **doc(
            "The article's full text, as received; it cannot change once a record cites it.",
            "After Russia\n...",
        ),
    ),
}
_BASES = {
    **{fact_type: (schema, _fact_overrides(schema)) for fact_type, schema in FACT_SCHEMAS.items()},
    "actor": (ActorSchema, {"id": _optional_id("vladimir-putin")}),
    "article": (ArticleSchema, _ARTICLE_OVERRIDES),
}


def _name(base: type[Schema], suffix: str) -> str:
    return base.__name__.removesuffix("Schema") + suffix


# What POST and PUT take, by record type; and what documents PATCH's merge patch.
WRITE_SCHEMAS: dict[str, type[Schema]] = {
    record_type: _writable(_name(base, "WriteSchema"), base, overrides)
    for record_type, (base, overrides) in _BASES.items()
}
PATCH_SCHEMAS: dict[str, type[Schema]] = {
    record_type: _writable(_name(base, "PatchSchema"), base, overrides, partial=True)
    for record_type, (base, overrides) in _BASES.items()
}


# History ----------------------------------------------------------------------------------------

ACTIONS = ("created", "updated", "deleted", "imported")


class RevisionSchema(Schema):
    version = ma.fields.Integer(
        dump_only=True, **doc("The record's revision number: 1, 2, 3, ... per record.", 2)
    )
    seq = ma.fields.Integer(
        dump_only=True,
        **doc("Position of the change in the sequence of every change to the dataset.", 231),
    )
    at = ma.fields.AwareDateTime(
        dump_only=True, **doc("When the change was committed.", "2026-12-02T09:30:00+00:00")
    )
    action = ma.fields.String(
        dump_only=True,
        **doc(
            "created, updated or deleted through the API, or imported by `flask data load`.",
            "updated",
            enum=list(ACTIONS),
        ),
    )
    token = ma.fields.String(
        attribute="token_name",
        dump_only=True,
        allow_none=True,
        **doc("Name of the token that made the change; null for `flask data load`.", "alice"),
    )
    summary = ma.fields.String(
        dump_only=True,
        allow_none=True,
        **doc("The edit summary given with the change.", "Date: the text says 'in March'."),
    )
    patch = ma.fields.List(
        ma.fields.Dict(),
        dump_only=True,
        **doc(
            "The change as a JSON Patch (RFC 6902) from the previous revision; a creation "
            "adds the whole record at the root, a deletion replaces it with null.",
            [{"op": "replace", "path": "/title", "value": "Protesters detained in Dagestan"}],
        ),
    )
    url = ma.fields.Method(
        "revision_url",
        dump_only=True,
        **doc(
            "The record as it was at this revision.",
            "/api/v1/events/event-protesters-detained/revisions/2",
        ),
    )

    def revision_url(self, revision) -> str:
        collection = RECORD_COLLECTIONS[revision.record_type]
        return f"{API_PREFIX}/{collection}/{revision.record_id}/revisions/{revision.version}"

"""What clients send to create or change a record, and what the history shows of a change.

Write bodies are the records' own schemas (the contract of data/), with three allowances for
people writing by hand: the server finds a quote's offsets, so `start` and `end` are optional;
fields that may be null or empty can be left out (they are then null or empty); and the
fields the server derives (`url`, `type`, `disputed`, timestamps, names of linked actors) are
ignored, so a record fetched with GET can be changed and sent back with PUT as it is.
"""

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
    def prepare(self, data, **kwargs):
        if not isinstance(data, dict):
            return data  # marshmallow refuses it: "Invalid input type"
        data = read_only_removed(self, data)
        for name, schema_field in self.load_fields.items():
            if name in data or schema_field.load_default is not ma.missing:
                continue
            if isinstance(schema_field, ma.fields.List):
                data[name] = []
            elif schema_field.allow_none:
                data[name] = None
        return data


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
    validate=ma.validate.Length(min=1),
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


def _fact_write_schema(schema: type[FactSchema]) -> type[Schema]:
    name = schema.__name__.removesuffix("Schema") + "WriteSchema"
    example = schema._declared_fields["id"].metadata["example"]
    return type(
        name,
        (WriteSchema, schema),
        {"id": _optional_id(example), "sources": _SOURCES, "__doc__": schema.__doc__},
    )


class ActorWriteSchema(WriteSchema, ActorSchema):
    id = _optional_id("vladimir-putin")


class ArticleWriteSchema(WriteSchema, ArticleSchema):
    id = _optional_id("after-russia-kill-or-be-killed")
    file = ma.fields.String(
        load_default=None,
        validate=ma.validate.Regexp(
            r"^articles/[A-Za-z0-9_.-]+\.txt$", error="Must be articles/<name>.txt."
        ),
        **doc(
            "Where `flask data export` writes the text inside data/; default `articles/<id>.txt`.",
            "articles/after-russia-kill-or-be-killed.txt",
        ),
    )
    text = ma.fields.String(
        required=True,
        validate=ma.validate.Length(min=1),
        **doc(
            "The article's full text, as received; it cannot change once a record cites it.",
            "After Russia\n...",
        ),
    )


WRITE_SCHEMAS: dict[str, type[Schema]] = {
    **{fact_type: _fact_write_schema(schema) for fact_type, schema in FACT_SCHEMAS.items()},
    "actor": ActorWriteSchema,
    "article": ArticleWriteSchema,
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
            "adds the whole record at the root, a deletion removes it.",
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

"""The base schema and field helpers every API schema builds on."""

import re

import marshmallow as ma

from .contract import API_PREFIX


class Schema(ma.Schema):
    """Unknown keys are an error, both in query strings and in the curated data files."""

    class Meta:
        unknown = ma.RAISE


def read_only_removed(schema: ma.Schema, data):
    """`data` without the fields that `schema` only dumps (ids' links, derived values), at
    every depth: what a client may send back of what it was shown."""
    if not isinstance(data, dict):
        return data
    kept = {}
    for key, value in data.items():
        schema_field = schema.fields.get(key)
        if schema_field is not None and schema_field.dump_only:
            continue
        inner = getattr(schema_field, "inner", schema_field)  # a List's items
        if isinstance(inner, ma.fields.Nested) and isinstance(inner.schema, ma.Schema):
            if isinstance(value, list) and inner is not schema_field:
                value = [read_only_removed(inner.schema, item) for item in value]
            else:
                value = read_only_removed(inner.schema, value)
        kept[key] = value
    return kept


def doc(description: str, example=None, **metadata) -> dict:
    """The `metadata` of a documented field: every field has a description and an example."""
    return {"metadata": {"description": description, "example": example, **metadata}}


def resource_url(
    collection: str, attribute: str = "id", suffix: str = "", **kwargs
) -> ma.fields.Function:
    """A read-only link to a resource, e.g. `/api/v1/articles/{id}`."""
    return ma.fields.Function(
        lambda obj: f"{API_PREFIX}/{collection}/{ma.utils.get_value(obj, attribute)}{suffix}",
        dump_only=True,
        **kwargs,
    )


SLUG = ma.validate.Regexp(
    r"^(?=.{1,100}$)[a-z0-9]+(?:-[a-z0-9]+)*$",
    error="Must be a slug of at most 100 characters: lowercase letters, digits and hyphens.",
)
# Control characters (NUL, which PostgreSQL's text cannot hold, among them) and the lone
# surrogates that UTF-8 cannot encode.
UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def label(max_length: int) -> list:
    """Validators of a one-line label stored in a column of `max_length` characters."""
    return [ma.validate.Length(min=1, max=max_length), printable]


def printable(text: str) -> None:
    """A one-line label (a title, a name): it is also a sort key, which cursors carry."""
    if UNPRINTABLE.search(text):
        raise ma.ValidationError("Must not contain control characters.")


def timestamp_fields(noun: str) -> tuple[ma.fields.AwareDateTime, ma.fields.AwareDateTime]:
    """`created_at, updated_at = timestamp_fields("article")`: when stored, when last changed."""
    example = "2026-11-22T03:00:00+00:00"
    return (
        ma.fields.AwareDateTime(
            dump_only=True, **doc(f"When the {noun} was first stored.", example)
        ),
        ma.fields.AwareDateTime(dump_only=True, **doc(f"When the {noun} last changed.", example)),
    )

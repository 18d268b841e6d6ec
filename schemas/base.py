"""The base schema and field helpers every API schema builds on."""

import re

import marshmallow as ma

from .contract import API_PREFIX


class Schema(ma.Schema):
    """Unknown keys are an error, both in query strings and in the curated data files."""

    class Meta:
        unknown = ma.RAISE


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
    r"^[a-z0-9]+(?:-[a-z0-9]+)*$", error="Must be a slug: lowercase letters, digits and hyphens."
)
# Control characters (NUL, which PostgreSQL's text cannot hold, among them) and the lone
# surrogates that UTF-8 cannot encode.
UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


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

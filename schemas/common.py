"""Building blocks shared by the record schemas: dates, numbers, citations, actor references."""

import calendar
import re
from datetime import date, timedelta

import marshmallow as ma

from .base import SLUG, Schema, doc, resource_url

PRECISIONS = ("day", "month", "year", "unknown")
QUALIFIERS = ("exact", "at_least", "at_most", "about")
ACTOR_ROLES = (
    "issuer",
    "speaker",
    "subject",
    "participant",
    "place",
    "reporter",
    "target",
    "mentioned",
)

# ISO 8601 forms allowed for each precision; `--MM-DD` and `--MM` when the year is unknown.
_DATE_FORMS = {
    "day": re.compile(r"^(\d{4}|-)-(\d{2})-(\d{2})$"),
    "month": re.compile(r"^(\d{4}|-)-(\d{2})$"),
    "year": re.compile(r"^(\d{4})$"),
}


# The longest span a dated record may denote (a leap year): its last day minus its first.
LONGEST_DATE_SPAN = timedelta(days=365)


def date_bounds(value: str | None, precision: str) -> tuple[date | None, date | None]:
    """First and last day that a normalised date may denote; (None, None) if its year is unknown."""
    if value is None or value.startswith("--"):
        return None, None
    parts = [int(part) for part in value.split("-")]
    if precision == "year":
        return date(parts[0], 1, 1), date(parts[0], 12, 31)
    if precision == "month":
        year, month = parts
        # From the calendar: "the day before next month's first" fails for 9999-12 (no year 10000).
        return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])
    return date(*parts), date(*parts)


class DateValueSchema(Schema):
    text = ma.fields.String(
        allow_none=True,
        required=True,
        **doc("The date exactly as the source writes it.", "On September 21"),
    )
    value = ma.fields.String(
        allow_none=True,
        required=True,
        **doc(
            "Normalised ISO 8601 date, as precise as known: `YYYY-MM-DD`, `YYYY-MM`, `YYYY`, "
            "or `--MM-DD` / `--MM` when the year is unknown. Null when nothing is known.",
            "2022-09-21",
        ),
    )
    precision = ma.fields.String(
        required=True,
        validate=ma.validate.OneOf(PRECISIONS),
        **doc("How precisely the date is known.", "day", enum=list(PRECISIONS)),
    )
    inferred = ma.fields.Boolean(
        required=True,
        **doc("True when part of the date (typically the year) comes from context.", True),
    )
    inference = ma.fields.String(
        allow_none=True,
        required=True,
        **doc(
            "Why and from what the inferred part was inferred; null when nothing was inferred.",
            "Year not stated; the article was published on 2023-03-12.",
        ),
    )

    @ma.validates_schema
    def check_consistency(self, data, **kwargs):
        value, precision = data.get("value"), data.get("precision")
        if (value is None) != (precision == "unknown"):
            raise ma.ValidationError("Must be null exactly when precision is 'unknown'.", "value")
        if value is not None:
            match = _DATE_FORMS[precision].match(value)
            if not match:
                raise ma.ValidationError(
                    f"Not an ISO 8601 date of precision {precision!r}.", "value"
                )
            try:
                if value.startswith("--"):  # year unknown: check month and day in a leap year
                    month, day = [*map(int, value[2:].split("-")), 1][:2]
                    date(2000, month, day)
                else:
                    date_bounds(value, precision)
            except ValueError as error:
                raise ma.ValidationError(f"Not a valid date: {error}.", "value") from error
        if data.get("inferred") != bool(data.get("inference")):
            raise ma.ValidationError(
                "An inference reason is required exactly when the date is inferred.", "inference"
            )


class Amount(ma.fields.Float):
    """A number that keeps whole values whole in JSON (160000, not 160000.0)."""

    def _serialize(self, value, attr, obj, **kwargs):
        number = super()._serialize(value, attr, obj, **kwargs)
        return int(number) if number is not None and number.is_integer() else number


class QuantitySchema(Schema):
    measure = ma.fields.String(required=True, **doc("What is counted or measured.", "casualties"))
    value = Amount(
        required=True,
        allow_nan=False,
        # Whole numbers beyond 2**53 are not exact in a float, and JSON readers differ there.
        validate=ma.validate.Range(min=-(2**53), max=2**53),
        **doc("The number, as a plain value.", 768000),
    )
    unit = ma.fields.String(required=True, **doc("Unit of the value.", "people"))
    qualifier = ma.fields.String(
        required=True,
        validate=ma.validate.OneOf(QUALIFIERS),
        **doc(
            "How the value bounds the real figure: `exact`, `at_least` (also 'over', 'more "
            "than'), `at_most` ('up to'), `about` ('nearly', 'around').",
            "at_least",
            enum=list(QUALIFIERS),
        ),
    )
    text = ma.fields.String(
        required=True, **doc("The number exactly as the source writes it.", "over 768,000")
    )


class CitationSchema(Schema):
    article_id = ma.fields.String(
        required=True,
        validate=SLUG,
        **doc("Id of the cited article.", "after-russia-kill-or-be-killed"),
    )
    quote = ma.fields.String(
        required=True,
        validate=ma.validate.Length(min=1),
        **doc(
            "The cited passage, verbatim: equal to the article text from `start` to `end`.",
            "deserters can be punished with up to 15 years in prison",
        ),
    )
    start = ma.fields.Integer(
        required=True,
        validate=ma.validate.Range(min=0),
        **doc("Offset of the first character of the quote (Unicode code points, from 0).", 2108),
    )
    end = ma.fields.Integer(
        required=True,
        validate=ma.validate.Range(min=1),
        **doc("Offset just past the last character of the quote (exclusive).", 2163),
    )
    article_url = resource_url(
        "articles",
        "article_id",
        **doc("Link to the cited article.", "/api/v1/articles/after-russia-kill-or-be-killed"),
    )

    @ma.validates_schema
    def check_span(self, data, **kwargs):
        if "quote" in data and data.get("end", 0) - data.get("start", 0) != len(data["quote"]):
            raise ma.ValidationError("end - start must equal the length of the quote.", "end")


class ActorRefSchema(Schema):
    id = ma.fields.String(required=True, validate=SLUG, **doc("Actor id.", "vladimir-putin"))
    role = ma.fields.String(
        required=True,
        validate=ma.validate.OneOf(ACTOR_ROLES),
        **doc("The actor's part in the record.", "issuer", enum=list(ACTOR_ROLES)),
    )
    name = ma.fields.String(dump_only=True, **doc("The actor's name.", "Vladimir Putin"))
    url = resource_url("actors", **doc("Link to the actor.", "/api/v1/actors/vladimir-putin"))

"""Query-string arguments. Unknown, repeated or malformed arguments are refused (422)."""

import base64
import binascii
import datetime as dt
import json
import re

import marshmallow as ma

from .actors import ACTOR_KINDS
from .base import SLUG, Schema, doc
from .common import date_bounds
from .contract import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from .facts import CAMPAIGN_KINDS, COLLECTIONS, DECREE_KINDS, EVENT_KINDS, PENALTY_KINDS

FORMATS = ("json", "csv", "ndjson")
# What full-text search can use: at least one letter or digit (api.search tokenises alike).
SEARCHABLE = ma.validate.Regexp(r"(?s).*[^\W_]", error="Give at least one word to search for.")


# Pagination and sorting ----------------------------------------------------------------------


def encode_cursor(keys: list[str], backward: bool, sort: str) -> str:
    payload = json.dumps({"k": keys, "b": backward, "s": sort}, separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def encode_offset(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode().rstrip("=")


class OffsetCursor(ma.fields.String):
    """A position in a ranked list (search hits); loads as the offset."""

    default_error_messages = {"invalid_cursor": "Not a cursor issued by this API."}

    def _deserialize(self, value, attr, data, **kwargs) -> int:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            offset = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))["o"]
        except (binascii.Error, ValueError, KeyError, TypeError) as error:
            raise self.make_error("invalid_cursor") from error
        if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset < 10**9:
            raise self.make_error("invalid_cursor")
        return offset


class Cursor(ma.fields.String):
    """An opaque page position; loads as {keys, backward, sort}."""

    default_error_messages = {"invalid_cursor": "Not a cursor issued by this API."}

    def _deserialize(self, value, attr, data, **kwargs) -> dict:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            raw = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            cursor = {"keys": raw["k"], "backward": raw["b"], "sort": raw["s"]}
        except (binascii.Error, ValueError, KeyError, TypeError) as error:
            raise self.make_error("invalid_cursor") from error
        if not (
            isinstance(cursor["keys"], list)
            and all(isinstance(k, str) for k in cursor["keys"])
            and isinstance(cursor["backward"], bool)
            and isinstance(cursor["sort"], str)
        ):
            raise self.make_error("invalid_cursor")
        return cursor


class Sort(ma.fields.String):
    """`-date,id`: fields from a whitelist, `-` for descending; loads as [(field, descending)]."""

    def __init__(self, allowed: tuple[str, ...], default: str = "id", **kwargs):
        self.allowed = allowed
        names = "|".join(allowed)
        super().__init__(
            load_default=self.parse(default),
            **doc(
                "Sort order: comma-separated fields, `-` before a field for descending. "
                f"Fields: {', '.join(allowed)}. Ties are broken by id.",
                default,
                default=default,
                pattern=rf"^-?({names})(,-?({names}))*$",
                **kwargs,
            ),
        )

    def _deserialize(self, value, attr, data, **kwargs) -> list[tuple[str, bool]]:
        return self.parse(super()._deserialize(value, attr, data, **kwargs))

    def parse(self, text: str) -> list[tuple[str, bool]]:
        order, seen = [], set()
        for part in text.split(","):
            name = part.strip().removeprefix("-")
            if name not in self.allowed:
                raise ma.ValidationError(
                    f"Unknown sort field {name!r}; one of: {', '.join(self.allowed)}."
                )
            if name in seen:
                raise ma.ValidationError(f"Sort field {name!r} is given twice.")
            seen.add(name)
            order.append((name, part.strip().startswith("-")))
        return order


class PartialDate(ma.fields.String):
    """`YYYY`, `YYYY-MM` or `YYYY-MM-DD`; loads as the first (or, `end=True`, last) day."""

    _FORM = r"^(?!0000)\d{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?)?$"

    def __init__(self, end: bool, **kwargs):
        self.end = end
        kwargs["metadata"] = {**kwargs.get("metadata", {}), "pattern": self._FORM}
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs) -> dt.date:
        text = super()._deserialize(value, attr, data, **kwargs)
        precision = {4: "year", 7: "month", 10: "day"}.get(len(text))
        try:
            if not re.match(self._FORM, text) or precision is None:
                raise ValueError
            first, last = date_bounds(text, precision)
        except ValueError as error:
            raise ma.ValidationError("Not a date: use YYYY, YYYY-MM or YYYY-MM-DD.") from error
        return last if self.end else first


def _page_size() -> ma.fields.Integer:
    return ma.fields.Integer(
        validate=ma.validate.Range(min=1, max=MAX_PAGE_SIZE),
        **doc(
            f"Results per page (default {DEFAULT_PAGE_SIZE}, at most "
            f"{MAX_PAGE_SIZE}: more is refused). CSV and NDJSON stream every match "
            "unless page_size or cursor is given.",
            50,
        ),
    )


def _format() -> ma.fields.String:
    return ma.fields.String(
        validate=ma.validate.OneOf(FORMATS),
        **doc(
            "Response format; overrides the Accept header (application/json, text/csv, "
            "application/x-ndjson). CSV and NDJSON stream every match unless page_size or "
            "cursor is given.",
            "json",
            enum=list(FORMATS),
        ),
    )


class ListQuerySchema(Schema):
    """Paging and format, shared by every list; subclasses add `sort`."""

    page_size = _page_size()
    cursor = Cursor(
        **doc(
            "Opaque position from the `next` or `prev` link of a page.",
            encode_cursor(["decree-2025-spring-call-up"], False, "id"),
        )
    )
    format = _format()

    @ma.validates_schema
    def check_paging(self, data, **kwargs):
        cursor, order = data.get("cursor"), data.get("sort")
        if cursor and order is not None and cursor["sort"] != sort_text(order):
            raise ma.ValidationError("The cursor belongs to another sort order.", "cursor")


def sort_text(order: list[tuple[str, bool]]) -> str:
    return ",".join(("-" if descending else "") + name for name, descending in order)


def check_range(data: dict, low: str, high: str) -> None:
    if data.get(low) is not None and data.get(high) is not None and data[low] > data[high]:
        raise ma.ValidationError(f"Must not be after {low}.", high)


class DetailQuerySchema(Schema):
    """A single record takes no query arguments: any given is refused, not ignored."""


class ArticleQuerySchema(ListQuerySchema):
    sort = Sort(("id", "title"))


class ActorQuerySchema(ListQuerySchema):
    sort = Sort(("id", "name", "kind"))
    kind = ma.fields.String(
        validate=ma.validate.OneOf(ACTOR_KINDS),
        **doc("Only actors of this kind.", "person", enum=list(ACTOR_KINDS)),
    )


# Facts -----------------------------------------------------------------------------------------

FACT_SORTS = ("id", "date", "kind", "title", "updated_at")


class FactFilterSchema(Schema):
    """Filters shared by every fact list; they combine with AND."""

    article = ma.fields.String(
        validate=SLUG,
        **doc("Only records citing this article id.", "after-russia-kill-or-be-killed"),
    )
    actor = ma.fields.String(
        validate=SLUG, **doc("Only records involving this actor id.", "vladimir-putin")
    )
    disputed = ma.fields.Boolean(
        **doc("true: only records that another record contradicts; false: only the others.", True)
    )
    date_from = PartialDate(
        end=False,
        **doc(
            "Only records that may have happened on or after this date (YYYY, YYYY-MM or "
            "YYYY-MM-DD): a record dated only to a month or year matches when that period "
            "overlaps the range. Records whose date or year is unknown never match.",
            "2022-09",
        ),
    )
    date_to = PartialDate(
        end=True,
        **doc(
            "Only records that may have happened on or before this date; `2022` means up to "
            "2022-12-31. Same semantics as date_from.",
            "2022-12",
        ),
    )
    q = ma.fields.String(
        validate=[ma.validate.Length(min=1, max=500), SEARCHABLE],
        **doc(
            'Full-text filter: words (all must match), "quoted phrases", prefix* queries.',
            "gosuslugi",
        ),
    )

    @ma.validates_schema
    def check_dates(self, data, **kwargs):
        check_range(data, "date_from", "date_to")


def _kind_filter(kinds: tuple[str, ...], example: str) -> ma.fields.String:
    return ma.fields.String(
        validate=ma.validate.OneOf(kinds),
        **doc("Only records of this kind.", example, enum=list(kinds)),
    )


def _bound(number: str, side: str, example: float) -> ma.fields.Float:
    words = {"min": "at least", "max": "at most"}[side]
    return ma.fields.Float(
        allow_nan=False, **doc(f"Only records whose {number} is {words} this.", example)
    )


class QuotaFilterSchema(Schema):
    quota_min = _bound("quota", "min", 100000)
    quota_max = _bound("quota", "max", 200000)

    @ma.validates_schema
    def check_quota(self, data, **kwargs):
        check_range(data, "quota_min", "quota_max")


class DecreeFilterSchema(FactFilterSchema, QuotaFilterSchema):
    kind = _kind_filter(DECREE_KINDS, "decree")


class CampaignFilterSchema(FactFilterSchema, QuotaFilterSchema):
    kind = _kind_filter(CAMPAIGN_KINDS, "regular_call_up")


class PenaltyFilterSchema(FactFilterSchema):
    kind = _kind_filter(PENALTY_KINDS, "desertion")
    prison_years_min = _bound("longest prison term (years)", "min", 10)
    prison_years_max = _bound("longest prison term (years)", "max", 20)

    @ma.validates_schema
    def check_years(self, data, **kwargs):
        check_range(data, "prison_years_min", "prison_years_max")


class EventFilterSchema(FactFilterSchema):
    kind = _kind_filter(EVENT_KINDS, "protest")


class DecreeQuerySchema(DecreeFilterSchema, ListQuerySchema):
    sort = Sort(FACT_SORTS)


class CampaignQuerySchema(CampaignFilterSchema, ListQuerySchema):
    sort = Sort(FACT_SORTS)


class PenaltyQuerySchema(PenaltyFilterSchema, ListQuerySchema):
    sort = Sort(FACT_SORTS)


class EventQuerySchema(EventFilterSchema, ListQuerySchema):
    sort = Sort(FACT_SORTS)


FACETS = ("type", "kind", "year", "article", "actor")


class FacetNames(ma.fields.String):
    def _deserialize(self, value, attr, data, **kwargs) -> list[str]:
        text = super()._deserialize(value, attr, data, **kwargs)
        names = [n.strip() for n in text.split(",")] if text else []
        unknown = [n for n in names if n not in FACETS]
        if unknown:
            raise ma.ValidationError(f"Unknown facet {unknown[0]!r}; one of: {', '.join(FACETS)}.")
        return list(dict.fromkeys(names))


def _facets_field() -> FacetNames:
    default = "kind,year,article,actor"
    return FacetNames(
        load_default=default.split(","),
        **doc(
            f"Comma-separated facets to count: {', '.join(FACETS)}.", "kind,year", default=default
        ),
    )


class DecreeFacetQuerySchema(DecreeFilterSchema):
    facets = _facets_field()


class CampaignFacetQuerySchema(CampaignFilterSchema):
    facets = _facets_field()


class PenaltyFacetQuerySchema(PenaltyFilterSchema):
    facets = _facets_field()


class EventFacetQuerySchema(EventFilterSchema):
    facets = _facets_field()


# Search, timeline, export ----------------------------------------------------------------------

DOC_TYPES = ("article", *COLLECTIONS)


class TypeList(ma.fields.String):
    """`decree,event`: a comma-separated subset of `choices`."""

    def __init__(self, choices: tuple[str, ...], **kwargs):
        self.choices = choices
        names = "|".join(choices)
        kwargs["metadata"] = {**kwargs["metadata"], "pattern": rf"^({names})(,({names}))*$"}
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs) -> list[str]:
        names = [n.strip() for n in super()._deserialize(value, attr, data, **kwargs).split(",")]
        unknown = [n for n in names if n not in self.choices]
        if unknown:
            raise ma.ValidationError(
                f"Unknown type {unknown[0]!r}; one of: {', '.join(self.choices)}."
            )
        return list(dict.fromkeys(names))


class SearchQuerySchema(Schema):
    q = ma.fields.String(
        required=True,
        validate=[ma.validate.Length(min=1, max=500), SEARCHABLE],
        **doc(
            'Words (all must match), "quoted phrases" (words in this order), prefix* queries; '
            "case-insensitive.",
            '"partial mobilisation" dagestan',
        ),
    )
    type = TypeList(
        DOC_TYPES,
        **doc(f"Only these types, comma-separated: {', '.join(DOC_TYPES)}.", "event,article"),
    )
    page_size = _page_size()
    cursor = OffsetCursor(
        **doc("Opaque position from the `next` or `prev` link of a page of hits.", "eyJvIjo1MH0")
    )
    format = _format()

    @ma.validates_schema
    def check_paging(self, data, **kwargs):
        ListQuerySchema.check_paging(self, data)


class TimelineQuerySchema(FactFilterSchema, ListQuerySchema):
    type = TypeList(
        tuple(COLLECTIONS),
        **doc(f"Only these types, comma-separated: {', '.join(COLLECTIONS)}.", "decree,event"),
    )


class ExportQuerySchema(Schema):
    format = ma.fields.String(
        load_default="ndjson",
        validate=ma.validate.OneOf(FORMATS),
        **doc("Export format.", "ndjson", enum=list(FORMATS)),
    )

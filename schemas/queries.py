"""Query-string arguments. Unknown, repeated or malformed arguments are refused (422).

A documented `pattern` is what the server checks, written so that it means the same in Python
and in ECMA-262 (JSON Schema's dialect, and Swagger UI's, which compiles it without the `u`
flag): a request whose arguments match the spec is not refused for their form.
"""

import base64
import datetime as dt
import json
import re
from typing import ClassVar

import marshmallow as ma

from .actors import ACTOR_KINDS
from .base import SLUG, UNPRINTABLE, Schema, doc
from .common import date_bounds
from .contract import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from .facts import CAMPAIGN_KINDS, COLLECTIONS, DECREE_KINDS, EVENT_KINDS, PENALTY_KINDS

FORMATS = ("json", "csv", "ndjson")
Order = list[tuple[str, bool]]  # (sort field, descending)


def anchored(regex: str) -> str:
    """The documented `pattern` for a regex the server matches whole (re.fullmatch)."""
    return f"^(?:{regex})$"


# Numbers -------------------------------------------------------------------------------------

# JSON's forms of numbers, in ASCII digits: int() and float() would also take "٥", "+5", " 5",
# "1_000" and "inf".
INTEGER = r"-?(0|[1-9][0-9]*)"
NUMBER = rf"{INTEGER}(\.[0-9]+)?([eE][+-]?[0-9]+)?"


class AsciiInteger(ma.fields.Integer):
    """An integer written as JSON writes one: ASCII digits, a `-` if negative, no spaces."""

    def _deserialize(self, value, attr, data, **kwargs) -> int:
        if isinstance(value, str) and not re.fullmatch(INTEGER, value):
            raise self.make_error("invalid", input=value)
        return super()._deserialize(value, attr, data, **kwargs)


class AsciiNumber(ma.fields.Float):
    """A finite number written as JSON writes one (`150000`, `2.5`, `1e5`)."""

    def __init__(self, **kwargs):
        super().__init__(allow_nan=False, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs) -> float:
        if isinstance(value, str) and not re.fullmatch(NUMBER, value):
            raise self.make_error("invalid", input=value)
        return super()._deserialize(value, attr, data, **kwargs)


# Dates ---------------------------------------------------------------------------------------

# `YYYY`, `YYYY-MM` or `YYYY-MM-DD` of a day the calendar has (2024-02-29, never 2023-02-29 or
# 2022-04-31), from year 0001 to 9999.
_MONTH = "(0[1-9]|1[0-2])"
_MONTH_DAY = "(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])|(0[13-9]|1[0-2])-(29|30)|(0[13578]|1[02])-31"
_LEAP_YEAR = "[0-9]{2}(0[48]|[2468][048]|[13579][26])|(0[48]|[2468][048]|[13579][26])00"
PARTIAL_DATE = rf"(?!0000)([0-9]{{4}}(-{_MONTH})?|[0-9]{{4}}-({_MONTH_DAY})|({_LEAP_YEAR})-02-29)"


class PartialDate(ma.fields.String):
    """`YYYY`, `YYYY-MM` or `YYYY-MM-DD`; loads as the first (or, `end=True`, last) day."""

    def __init__(self, end: bool, **kwargs):
        self.end = end
        kwargs["metadata"] = {**kwargs.get("metadata", {}), "pattern": anchored(PARTIAL_DATE)}
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs) -> dt.date:
        text = super()._deserialize(value, attr, data, **kwargs)
        if not re.fullmatch(PARTIAL_DATE, text):
            raise ma.ValidationError("Not a date: use YYYY, YYYY-MM or YYYY-MM-DD.")
        precision = {4: "year", 7: "month", 10: "day"}[len(text)]
        first, last = date_bounds(text, precision)
        return last if self.end else first


# Lists of names: sort fields, facets, types ---------------------------------------------------


def name_list(names: tuple[str, ...], sign: str = "", unique: bool = False) -> str:
    """A regex of `a,b,c`: names from `names`, each after an optional `sign` (a regex); with
    `unique`, none twice (a lookahead that finds a name again: group 1, backreferenced)."""
    assert all(re.fullmatch("[a-z_]+", name) for name in names), "names need no escaping"
    names_regex = "|".join(names)
    regex = f"{sign}(?:{names_regex})(?:,{sign}(?:{names_regex}))*"
    if not unique:
        return regex
    repeated = f"(?:[^,]*,)*{sign}({names_regex}),(?:[^,]*,)*{sign}\\1(?:,|$)"
    return f"(?!{repeated}){regex}"


class NameList(ma.fields.String):
    """`decree,event`: a comma-separated subset of `choices`; loads as a list without repeats."""

    def __init__(self, choices: tuple[str, ...], noun: str, **kwargs):
        self.choices, self.noun = choices, noun
        kwargs["metadata"] = {**kwargs["metadata"], "pattern": anchored(name_list(choices))}
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs) -> list[str]:
        names = super()._deserialize(value, attr, data, **kwargs).split(",")
        unknown = [n for n in names if n not in self.choices]
        if unknown:
            raise ma.ValidationError(
                f"Unknown {self.noun} {unknown[0]!r}; one of: {', '.join(self.choices)}."
            )
        return list(dict.fromkeys(names))


class Sort(ma.fields.String):
    """`-date,id`: fields from a whitelist, `-` for descending; loads as [(field, descending)]."""

    def __init__(self, allowed: tuple[str, ...], default: str = "id", **kwargs):
        self.allowed = allowed
        super().__init__(
            load_default=self.parse(default),
            **doc(
                "Sort order: comma-separated fields, each once, `-` before a field for "
                f"descending. Fields: {', '.join(allowed)}. Ties are broken by id.",
                default,
                default=default,
                pattern=anchored(name_list(allowed, sign="-?", unique=True)),
                **kwargs,
            ),
        )

    def _deserialize(self, value, attr, data, **kwargs) -> Order:
        return self.parse(super()._deserialize(value, attr, data, **kwargs))

    def parse(self, text: str) -> Order:
        order, seen = [], set()
        for part in text.split(","):
            name = part.removeprefix("-")
            if name not in self.allowed:
                raise ma.ValidationError(
                    f"Unknown sort field {name!r}; one of: {', '.join(self.allowed)}."
                )
            if name in seen:
                raise ma.ValidationError(f"Sort field {name!r} is given twice.")
            seen.add(name)
            order.append((name, part.startswith("-")))
        return order


def sort_text(order: Order) -> str:
    return ",".join(("-" if descending else "") + name for name, descending in order)


# Cursors -------------------------------------------------------------------------------------

BASE64URL = "[A-Za-z0-9_-]+"


def encode_cursor(keys: list[str], backward: bool, sort: str, list_name: str) -> str:
    """The cursor of a page of `list_name` in `sort` order, after (`backward`: before) `keys`."""
    payload = {"l": list_name, "s": sort, "k": keys, "b": backward}
    return _encode(payload)


def encode_offset(offset: int) -> str:
    return _encode({"o": offset})


def _encode(payload: dict) -> str:
    text = json.dumps(payload, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode(text: str):
    """The JSON value inside a cursor; ValueError when there is none."""
    if not re.fullmatch(BASE64URL, text):
        raise ValueError("not base64url")
    try:
        return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except RecursionError as error:  # nested deeper than the JSON decoder goes
        raise ValueError("nested too deep") from error


class CursorField(ma.fields.String):
    """Base64url JSON, as the API issues it; subclasses check what it holds (load_payload)."""

    default_error_messages = {"invalid_cursor": "Not a cursor issued by this API."}

    def __init__(self, **kwargs):
        kwargs["metadata"] = {**kwargs["metadata"], "pattern": anchored(BASE64URL)}
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return self.load_payload(_decode(text))
        except (ValueError, KeyError, TypeError) as error:
            raise self.make_error("invalid_cursor") from error

    def load_payload(self, raw):
        raise NotImplementedError


class OffsetCursor(CursorField):
    """A position in a ranked list (search hits); loads as the offset."""

    def load_payload(self, raw) -> int:
        offset = raw["o"]
        if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset < 10**9:
            raise ValueError("not an offset")
        return offset


class Cursor(CursorField):
    """An opaque page position; loads as {list, sort, keys, backward}."""

    def load_payload(self, raw) -> dict:
        cursor = {"list": raw["l"], "sort": raw["s"], "keys": raw["k"], "backward": raw["b"]}
        if not (
            isinstance(cursor["list"], str)
            and isinstance(cursor["sort"], str)
            and isinstance(cursor["keys"], list)
            and all(isinstance(k, str) and not UNPRINTABLE.search(k) for k in cursor["keys"])
            and isinstance(cursor["backward"], bool)
        ):
            raise ValueError("not a page position")
        return cursor


def _cursor(list_name: str, sort: str, keys: list[str], backward: bool = False) -> Cursor:
    """A list's cursor argument. Its example, a real link's cursor, pages from `keys` on."""
    return Cursor(
        **doc(
            "Opaque position from the `next` or `prev` link of a page of this list, in the "
            "same sort order.",
            encode_cursor(keys, backward, sort, list_name),
        )
    )


# Paging and format ---------------------------------------------------------------------------


def _page_size(streamed: bool = True) -> AsciiInteger:
    """`streamed`: the list is also sent as CSV or NDJSON, which stream every match."""
    streaming = " CSV and NDJSON stream every match unless page_size or cursor is given."
    return AsciiInteger(
        validate=ma.validate.Range(min=1, max=MAX_PAGE_SIZE),
        **doc(
            f"Results per page (default {DEFAULT_PAGE_SIZE}, at most "
            f"{MAX_PAGE_SIZE}: more is refused).{streaming if streamed else ''}",
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


class PagedQuerySchema(Schema):
    """Paging, shared by every list; subclasses add `sort` or have a fixed `order`.

    A cursor carries the name of its list and its sort order: one of another list, or of
    another order, would page through the wrong rows, and is refused.
    """

    list_name: ClassVar[str]
    order: ClassVar[Order | None] = None  # the order of a list without `sort`

    page_size = _page_size(streamed=False)

    @ma.validates_schema
    def check_cursor(self, data, **kwargs):
        cursor = data.get("cursor")
        if cursor is None:
            return
        if cursor["list"] != self.list_name:
            raise ma.ValidationError("The cursor belongs to another list.", "cursor")
        if cursor["sort"] != sort_text(data.get("sort", self.order)):
            raise ma.ValidationError("The cursor belongs to another sort order.", "cursor")


class ListQuerySchema(PagedQuerySchema):
    """Paging and format, shared by every list of one kind of record."""

    page_size = _page_size()
    format = _format()


class RevisionQuerySchema(ListQuerySchema):
    list_name = "revisions"
    order = [("id", True)]  # newest first

    cursor = _cursor(list_name, "-id", ["2147483647"])  # from the newest on


class DetailQuerySchema(Schema):
    """A single record takes no query arguments: any given is refused, not ignored."""


class ArticleQuerySchema(ListQuerySchema):
    list_name = "articles"
    sort = Sort(("id", "title"))
    cursor = _cursor(list_name, "id", ["after-russia-kill-or-be-killed"])


class ActorQuerySchema(ListQuerySchema):
    list_name = "actors"
    sort = Sort(("id", "name", "kind"))
    cursor = _cursor(list_name, "id", ["after-russia"])
    kind = ma.fields.String(
        validate=ma.validate.OneOf(ACTOR_KINDS),
        **doc("Only actors of this kind.", "person", enum=list(ACTOR_KINDS)),
    )


# The records of every type linked to one actor or article: JSON pages in id order, grouped by
# type (FactsByTypeSchema), so no CSV or NDJSON and no sort.


class ActorFactsQuerySchema(PagedQuerySchema):
    list_name = "actor_facts"
    order = [("id", False)]
    cursor = _cursor(list_name, "id", ["decree-partial-mobilisation"])


class ArticleFactsQuerySchema(PagedQuerySchema):
    list_name = "article_facts"
    order = [("id", False)]
    cursor = _cursor(list_name, "id", ["decree-partial-mobilisation"])


# Facts ---------------------------------------------------------------------------------------

FACT_SORTS = ("id", "date", "kind", "title", "updated_at")

# Full-text search needs a letter or digit, but no regex that Python and ECMA-262 read alike can
# name Unicode's letters: the pattern, checked as documented, asks for a character that is not
# ASCII punctuation, a control or white space. A q without a word (`€`) then matches nothing.
SEARCHABLE_PATTERN = r"[^\s\x00-\x2F\x3A-\x40\x5B-\x60\x7B-\x7F]"
SEARCHABLE = re.compile(SEARCHABLE_PATTERN)


def _searchable(text: str) -> None:
    if not SEARCHABLE.search(text):
        raise ma.ValidationError("Give at least one word to search for.")


def search_text(description: str, example: str, **kwargs) -> ma.fields.String:
    return ma.fields.String(
        validate=[ma.validate.Length(min=1, max=500), _searchable],
        **doc(
            f"{description} Case-insensitive; text without a letter or digit (`€`) matches "
            "nothing, text of ASCII punctuation alone (`--`) is refused.",
            example,
            pattern=SEARCHABLE_PATTERN,
        ),
        **kwargs,
    )


def optional_example(description: str, example) -> dict:
    """doc(), without an example when it is None: a list's examples must combine (Swagger UI
    fills them all in), and some arguments have none that would."""
    return (
        doc(description, example)
        if example is not None
        else {"metadata": {"description": description}}
    )


def _text_filter(example: str) -> ma.fields.String:
    return search_text(
        'Full-text filter: words (all must match), "quoted phrases", prefix* queries.', example
    )


def _article_filter(example: str) -> ma.fields.String:
    return ma.fields.String(validate=SLUG, **doc("Only records citing this article id.", example))


def _actor_filter(example: str) -> ma.fields.String:
    return ma.fields.String(validate=SLUG, **doc("Only records involving this actor id.", example))


def _date_filter(end: bool, example: str | None) -> PartialDate:
    if end:
        description = (
            "Only records that may have happened on or before this date; `2022` means up to "
            "2022-12-31. Same semantics as date_from, which it must not precede."
        )
    else:
        description = (
            "Only records that may have happened on or after this date (YYYY, YYYY-MM or "
            "YYYY-MM-DD): a record dated only to a month or year matches when that period "
            "overlaps the range. Records whose date or year is unknown never match. Days the "
            "calendar has, from 0001-01-01 to 9999-12-31."
        )
    return PartialDate(end=end, **optional_example(description, example))


class FactFilterSchema(Schema):
    """Filters shared by every fact list; they combine with AND.

    The examples of a list's filters, together, find records in the shipped data (Swagger UI
    fills them all in): a list whose records do not fit them overrides some.
    """

    article = _article_filter("after-russia-kill-or-be-killed")
    actor = _actor_filter("vladimir-putin")
    disputed = ma.fields.Boolean(
        truthy={"true"},
        falsy={"false"},
        **doc("true: only records that another record contradicts; false: only the others.", False),
    )
    date_from = _date_filter(end=False, example="2022-09")
    date_to = _date_filter(end=True, example="2022-12")
    q = _text_filter("mobilisation")


def _kind_filter(kinds: tuple[str, ...], example: str) -> ma.fields.String:
    return ma.fields.String(
        validate=ma.validate.OneOf(kinds),
        **doc("Only records of this kind.", example, enum=list(kinds)),
    )


def _bound(number: str, side: str, example: float | None, maximum: int) -> AsciiNumber:
    words = {"min": "at least", "max": "at most"}
    return AsciiNumber(
        validate=ma.validate.Range(min=0, max=maximum),
        **optional_example(
            f"Only records whose {number} is {words[side]} this: a number as JSON writes one "
            f"(ASCII digits, an optional fraction and exponent: 100000, 2.5, 1e5), from 0 to "
            f"{maximum}.",
            example,
        ),
    )


MAX_QUOTA = 10**9  # people: more than anyone has counted
MAX_PRISON_YEARS = 1000


class QuotaFilterSchema(Schema):
    quota_min = _bound("quota", "min", 100000, MAX_QUOTA)
    quota_max = _bound("quota", "max", 500000, MAX_QUOTA)


class DecreeFilterSchema(FactFilterSchema, QuotaFilterSchema):
    kind = _kind_filter(DECREE_KINDS, "decree")
    # No examples: the one decree with a quota has no date, and the date filters have theirs.
    quota_min = _bound("quota", "min", None, MAX_QUOTA)
    quota_max = _bound("quota", "max", None, MAX_QUOTA)


class CampaignFilterSchema(FactFilterSchema, QuotaFilterSchema):
    kind = _kind_filter(CAMPAIGN_KINDS, "partial_mobilisation")


class PenaltyFilterSchema(FactFilterSchema):
    kind = _kind_filter(PENALTY_KINDS, "desertion")
    actor = _actor_filter("russian-lawmakers")
    prison_years_min = _bound("longest prison term (years)", "min", 10, MAX_PRISON_YEARS)
    prison_years_max = _bound("longest prison term (years)", "max", 20, MAX_PRISON_YEARS)


class EventFilterSchema(FactFilterSchema):
    kind = _kind_filter(EVENT_KINDS, "detention")
    actor = _actor_filter("russia")


class DecreeQuerySchema(DecreeFilterSchema, ListQuerySchema):
    list_name = COLLECTIONS["decree"]
    sort = Sort(FACT_SORTS)
    cursor = _cursor(list_name, "id", ["decree-2025-spring-call-up"])


class CampaignQuerySchema(CampaignFilterSchema, ListQuerySchema):
    list_name = COLLECTIONS["campaign"]
    sort = Sort(FACT_SORTS)
    cursor = _cursor(list_name, "id", ["campaign-2025-spring-call-up"])


class PenaltyQuerySchema(PenaltyFilterSchema, ListQuerySchema):
    list_name = COLLECTIONS["penalty"]
    sort = Sort(FACT_SORTS)
    cursor = _cursor(list_name, "id", ["penalty-draft-evasion"], backward=True)


class EventQuerySchema(EventFilterSchema, ListQuerySchema):
    list_name = COLLECTIONS["event"]
    sort = Sort(FACT_SORTS)
    cursor = _cursor(list_name, "id", ["event-anti-war-protests"])


FACETS = ("type", "kind", "year", "article", "actor")


def _facets_field() -> NameList:
    default = "kind,year,article,actor"
    return NameList(
        FACETS,
        "facet",
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


class SearchQuerySchema(Schema):
    q = search_text(
        'Words (all must match), "quoted phrases" (words in this order), prefix* queries.',
        '"partial mobilisation"',
        required=True,
    )
    type = NameList(
        DOC_TYPES,
        "type",
        **doc(f"Only these types, comma-separated: {', '.join(DOC_TYPES)}.", "event,article"),
    )
    page_size = _page_size()
    cursor = OffsetCursor(
        **doc("Opaque position from the `next` or `prev` link of a page of hits.", encode_offset(1))
    )
    format = _format()


class TimelineQuerySchema(FactFilterSchema, ListQuerySchema):
    list_name = "timeline"
    order = [("date", False)]
    cursor = _cursor(list_name, "date", ["2022-01-01", "event-russia-invades-ukraine-2022"])
    type = NameList(
        tuple(COLLECTIONS),
        "type",
        **doc(f"Only these types, comma-separated: {', '.join(COLLECTIONS)}.", "decree,event"),
    )


class UndatedQuerySchema(TimelineQuerySchema):
    """The records without a usable date: date filters, which match none, have no example."""

    list_name = "undated"
    order = [("type", False)]
    cursor = _cursor(list_name, "type", ["campaign", "campaign-kremlin-recruitment-videos"])
    date_from = _date_filter(end=False, example=None)
    date_to = _date_filter(end=True, example=None)


# The change feed, snapshots and reads as of a sequence number ------------------------------

MAX_SEQ = 2**31 - 1  # what an INTEGER column holds
RECORD_TYPES = ("article", "actor", *COLLECTIONS)


def _sequence_number(description: str, **kwargs) -> AsciiInteger:
    return AsciiInteger(
        validate=ma.validate.Range(min=0, max=MAX_SEQ),
        **optional_example(description, None),
        **kwargs,
    )


AS_OF = (
    "The state at this sequence number (a value of `Dataset-Seq`, or a change's `seq`): "
    "records created later are absent, records deleted later are there as they were. "
    "Left out: the current state."
)


class AsOfQuerySchema(Schema):
    """A record's detail: now, or as it was at a sequence number."""

    as_of = _sequence_number(AS_OF)


class ChangesQuerySchema(Schema):
    since = AsciiInteger(
        load_default=0,
        validate=ma.validate.Range(min=0, max=MAX_SEQ),
        **doc(
            "The changes after this sequence number (not including it); 0: from the first. "
            "A client passes the `seq` of the last change it applied.",
            0,
        ),
    )
    type = ma.fields.String(
        validate=ma.validate.OneOf(RECORD_TYPES),
        metadata={
            "description": "Only the changes to records of this type.",
            "enum": list(RECORD_TYPES),
        },
    )
    page_size = _page_size()
    format = ma.fields.String(
        validate=ma.validate.OneOf(("json", "ndjson")),
        **doc(
            "A JSON array, or one change per line (NDJSON); overrides the Accept header.",
            "json",
            enum=["json", "ndjson"],
        ),
    )


class ExportQuerySchema(Schema):
    format = ma.fields.String(
        load_default="ndjson",
        validate=ma.validate.OneOf(("ndjson",)),
        **doc("One record per line, then the manifest (NDJSON).", "ndjson", enum=["ndjson"]),
    )
    as_of = _sequence_number(AS_OF)

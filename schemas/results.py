"""Shapes of derived results: facet counts, timeline entries, search hits, export rows."""

import marshmallow as ma

from .base import Schema, doc
from .common import DateValueSchema
from .contract import API_PREFIX
from .facts import COLLECTIONS

DOC_COLLECTIONS = {"article": "articles", **COLLECTIONS}


def _url(obj) -> str:
    kind, record_id = (obj["type"], obj["id"]) if isinstance(obj, dict) else (obj.type, obj.id)
    return f"{API_PREFIX}/{DOC_COLLECTIONS[kind]}/{record_id}"


class FacetCountSchema(Schema):
    value = ma.fields.Raw(
        allow_none=True,
        **doc(
            "The facet's value (a kind, year, article id, actor id or type); null: unknown.", 2022
        ),
    )
    count = ma.fields.Integer(**doc("How many of the matching records have this value.", 12))


def _facet(description: str) -> ma.fields.List:
    return ma.fields.List(ma.fields.Nested(FacetCountSchema), **doc(description, []))


class FacetsSchema(Schema):
    type = _facet("Counts by record type.")
    kind = _facet("Counts by kind.")
    year = _facet("Counts by the year the record's date begins in (null: year unknown).")
    article = _facet("Counts by cited article (a record counts once per article).")
    actor = _facet("Counts by involved actor (a record counts once per actor).")


class TimelineEntrySchema(Schema):
    date = ma.fields.Nested(
        DateValueSchema, allow_none=True, **doc("The record's date, as precise as known.", None)
    )
    earliest = ma.fields.Date(
        attribute="date_min",
        allow_none=True,
        **doc("First day the date may denote; null when its year is unknown.", "2022-09-01"),
    )
    latest = ma.fields.Date(
        attribute="date_max",
        allow_none=True,
        **doc("Last day the date may denote; null when its year is unknown.", "2022-09-30"),
    )
    type = ma.fields.String(**doc("Record type.", "event", enum=list(COLLECTIONS)))
    id = ma.fields.String(**doc("Record id.", "event-protesters-detained"))
    kind = ma.fields.String(**doc("Record kind.", "detention"))
    title = ma.fields.String(**doc("Short label.", "At least 1,310 protesters detained"))
    disputed = ma.fields.Function(
        lambda fact: bool(fact.contradicts),
        **doc("True when another record contradicts this one.", False),
    )
    url = ma.fields.Function(
        _url, **doc("Link to the record.", "/api/v1/events/event-protesters-detained")
    )


class SearchHitSchema(Schema):
    type = ma.fields.String(
        **doc("What matched: an article or a record type.", "event", enum=list(DOC_COLLECTIONS))
    )
    id = ma.fields.String(**doc("Id of the article or record.", "event-dagestan-protests"))
    title = ma.fields.String(
        **doc("Its title.", "Most prominent anti-mobilisation protests in Dagestan")
    )
    score = ma.fields.Float(
        **doc("Relevance, higher is better; comparable only within one response.", 11.33)
    )
    snippet = ma.fields.String(
        **doc(
            "The text around the first match, HTML-escaped, matches in <mark>.",
            "The most prominent anti-mobilisation <mark>protests</mark> took place in …",
        )
    )
    url = ma.fields.Function(
        _url, **doc("Link to the article or record.", "/api/v1/events/event-dagestan-protests")
    )

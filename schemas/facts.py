"""The four fact types: decrees, campaigns, penalties and events.

Each schema both validates the curated files in `data/` and documents the API's responses, so
the data contract is written once.
"""

from functools import cache

import marshmallow as ma

from .base import SLUG, Schema, doc, printable, timestamp_fields
from .common import ActorRefSchema, CitationSchema, DateValueSchema, QuantitySchema
from .contract import API_PREFIX

# type -> the collection that serves it
COLLECTIONS = {
    "decree": "decrees",
    "campaign": "campaigns",
    "penalty": "penalties",
    "event": "events",
}
DECREE_KINDS = ("decree", "law", "order", "policy")
DECREE_STATUSES = ("signed", "adopted", "announced", "in_force")
CAMPAIGN_KINDS = (
    "regular_call_up",
    "partial_mobilisation",
    "contract_recruitment",
    "recruitment_propaganda",
)
PENALTY_KINDS = ("desertion", "voluntary_surrender", "refusal_to_serve", "draft_evasion")
PENALTY_CONDITIONS = ("wartime", "mobilisation", "combat_situation", "peacetime")
EVENT_KINDS = (
    "announcement",
    "assurance",
    "border_restriction",
    "casualties",
    "criminal_case",
    "denial",
    "deployment",
    "detention",
    "diplomacy",
    "emigration",
    "enlistment",
    "estimate",
    "exemption",
    "expansion",
    "media_campaign",
    "military_operation",
    "press_conference",
    "protest",
    "raid",
    "report",
    "statement",
    "wrongful_mobilisation",
)


def _kind(kinds: tuple[str, ...], example: str) -> ma.fields.String:
    return ma.fields.String(
        required=True,
        validate=ma.validate.OneOf(kinds),
        **doc("What sort of record this is.", example, enum=list(kinds)),
    )


def _fact_id(example: str) -> ma.fields.String:
    return ma.fields.String(
        required=True,
        validate=SLUG,
        **doc("Stable, readable id; never reused.", example),
    )


def _quantity(description: str, example: dict) -> ma.fields.Nested:
    return ma.fields.Nested(
        QuantitySchema, required=True, allow_none=True, **doc(description, example)
    )


def _date(description: str, example: dict | None) -> ma.fields.Nested:
    return ma.fields.Nested(
        DateValueSchema, required=True, allow_none=True, **doc(description, example)
    )


_EXAMPLE_SOURCE = {
    "article_id": "after-russia-kill-or-be-killed",
    "quote": "deserters can be punished with up to 15 years in prison",
    "start": 2108,
    "end": 2163,
    "article_url": "/api/v1/articles/after-russia-kill-or-be-killed",
}
_EXAMPLE_DATE = {
    "text": "On September 21",
    "value": "2022-09-21",
    "precision": "day",
    "inferred": True,
    "inference": "Year not stated; the article, published 2023-03-12, reports it as past.",
}


class FactSchema(Schema):
    """Fields every fact record has, whatever its type."""

    TYPE = ""

    id = _fact_id("decree-2025-spring-call-up")
    kind = ma.fields.String(required=True, **doc("What sort of record this is.", "decree"))
    type = ma.fields.String(dump_only=True, **doc("Record type.", "decree", enum=list(COLLECTIONS)))
    title = ma.fields.String(
        required=True,
        validate=[ma.validate.Length(min=1, max=300), printable],
        **doc("Short label written by the curators.", "Putin signs decree to call up 160,000 men"),
    )
    summary = ma.fields.String(
        required=True,
        validate=ma.validate.Length(min=1, max=20_000),
        **doc("What the sources state, in the curators' words.", "The decree orders ..."),
    )
    date = _date(
        "When it happened (decree: signed; campaign: start; penalty: adopted; event: took place).",
        _EXAMPLE_DATE,
    )
    actors = ma.fields.List(
        ma.fields.Nested(ActorRefSchema),
        required=True,
        validate=ma.validate.Length(max=200),
        **doc("People, organisations and places involved, with their role.", []),
    )
    contradicts = ma.fields.List(
        ma.fields.String(validate=SLUG),
        required=True,
        validate=ma.validate.Length(max=200),
        **doc("Ids of records that report something contradicting this one.", []),
    )
    sources = ma.fields.List(
        ma.fields.Nested(CitationSchema),
        required=True,
        validate=ma.validate.Length(min=1),
        **doc(
            "Verbatim citations of the passages that state this fact; never empty.",
            [_EXAMPLE_SOURCE],
        ),
    )
    notes = ma.fields.String(
        required=True,
        allow_none=True,
        validate=ma.validate.Length(max=20_000),
        **doc("Curators' judgement calls: merges, typing, inferences.", None),
    )
    disputed = ma.fields.Function(
        lambda fact: bool(fact.contradicts),
        dump_only=True,
        **doc("True when another record contradicts this one.", False),
    )
    created_at, updated_at = timestamp_fields("record")

    url = ma.fields.Method(
        "record_url",
        dump_only=True,
        **doc("This record.", "/api/v1/decrees/decree-2025-spring-call-up"),
    )

    def record_url(self, fact) -> str:
        return f"{API_PREFIX}/{COLLECTIONS[fact.type]}/{fact.id}"

    def get_attribute(self, obj, attr, default):
        if attr in detail_fields(type(self)) and hasattr(obj, "details"):
            return obj.details.get(attr, default)
        return super().get_attribute(obj, attr, default)


@cache
def detail_fields(schema: type[FactSchema]) -> frozenset[str]:
    """The fields that only this type has (stored in the `details` column)."""
    return frozenset(schema._declared_fields) - frozenset(FactSchema._declared_fields)


class DecreeSchema(FactSchema):
    TYPE = "decree"

    id = _fact_id("decree-2025-spring-call-up")
    kind = _kind(DECREE_KINDS, "decree")
    status = ma.fields.String(
        required=True,
        allow_none=True,
        validate=ma.validate.OneOf(DECREE_STATUSES),
        **doc("Legal status as reported.", "signed", enum=[*DECREE_STATUSES, None]),
    )
    orders = ma.fields.String(
        required=True,
        allow_none=True,
        **doc("What it orders, as the sources describe it.", "The call-up of 160,000 men."),
    )
    quota = _quantity(
        "How many people it orders called up.",
        {
            "measure": "quota",
            "value": 160000,
            "unit": "men",
            "qualifier": "exact",
            "text": "160,000",
        },
    )
    period_end = _date("When the period it orders ends.", None)
    age_min = _quantity("Lower age limit.", None)
    age_max = _quantity("Upper age limit.", None)


class ComparisonSchema(Schema):
    text = ma.fields.String(
        required=True,
        **doc("The comparison, verbatim.", "up 10,000 men compared to last spring’s drive"),
    )
    figure = _quantity("The difference, if numeric.", None)
    against = ma.fields.String(
        required=True, **doc("What it is compared with.", "the spring 2024 call-up")
    )


class CampaignSchema(FactSchema):
    TYPE = "campaign"

    id = _fact_id("campaign-2025-spring-call-up")
    kind = _kind(CAMPAIGN_KINDS, "regular_call_up")
    end = _date("When the campaign ends or ended.", None)
    quota = _quantity("Quota or target of people to call up.", None)
    age_min = _quantity("Lower age limit.", None)
    age_max = _quantity("Upper age limit.", None)
    notification_channels = ma.fields.List(
        ma.fields.String(),
        required=True,
        **doc("How people are notified.", ["post", "gosuslugi"]),
    )
    decree = ma.fields.String(
        required=True,
        allow_none=True,
        validate=SLUG,
        **doc("Id of the decree that ordered it.", "decree-2025-spring-call-up"),
    )
    comparisons = ma.fields.List(
        ma.fields.Nested(ComparisonSchema),
        required=True,
        **doc("Comparisons the sources make with earlier drives.", []),
    )


class PenaltySchema(FactSchema):
    TYPE = "penalty"

    id = _fact_id("penalty-desertion")
    kind = _kind(PENALTY_KINDS, "desertion")
    punishment = ma.fields.String(
        required=True,
        **doc("The punishment, as the sources describe it.", "up to 15 years in prison"),
    )
    max_prison_years = _quantity("Longest prison term.", None)
    applies_during = ma.fields.List(
        ma.fields.String(
            validate=ma.validate.OneOf(PENALTY_CONDITIONS),
            metadata={"enum": list(PENALTY_CONDITIONS)},
        ),
        required=True,
        **doc("When the penalty applies.", ["wartime", "mobilisation"]),
    )
    act = ma.fields.String(
        required=True,
        allow_none=True,
        validate=SLUG,
        **doc("Id of the decree or law that set it.", None),
    )
    cases = ma.fields.List(
        ma.fields.String(validate=SLUG),
        required=True,
        **doc("Ids of events where it was applied or charged.", []),
    )


class EventSchema(FactSchema):
    TYPE = "event"

    id = _fact_id("event-protesters-detained")
    kind = _kind(EVENT_KINDS, "detention")
    figures = ma.fields.List(
        ma.fields.Nested(QuantitySchema),
        required=True,
        **doc("Numbers the sources give.", []),
    )
    reported = _date("When an outlet reported it, where the source says so.", None)


FACT_SCHEMAS: dict[str, type[FactSchema]] = {
    schema.TYPE: schema for schema in (DecreeSchema, CampaignSchema, PenaltySchema, EventSchema)
}


class FactsByTypeSchema(Schema):
    decrees = ma.fields.List(ma.fields.Nested(DecreeSchema), dump_only=True, **doc("Decrees.", []))
    campaigns = ma.fields.List(
        ma.fields.Nested(CampaignSchema), dump_only=True, **doc("Campaigns.", [])
    )
    penalties = ma.fields.List(
        ma.fields.Nested(PenaltySchema), dump_only=True, **doc("Penalties.", [])
    )
    events = ma.fields.List(ma.fields.Nested(EventSchema), dump_only=True, **doc("Events.", []))

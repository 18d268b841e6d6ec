"""Query-string arguments of the list endpoints. Unknown arguments are refused (422)."""

import base64
import binascii
import json

import marshmallow as ma

from api.config import Config

from .actors import ACTOR_KINDS
from .base import SLUG, Schema, doc
from .facts import CAMPAIGN_KINDS, DECREE_KINDS, EVENT_KINDS, PENALTY_KINDS


def encode_cursor(after: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": after}).encode()).decode().rstrip("=")


class Cursor(ma.fields.String):
    """An opaque page position; loads as the sort key to resume after."""

    default_error_messages = {"invalid_cursor": "Not a cursor issued by this API."}

    def _deserialize(self, value, attr, data, **kwargs) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            after = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))["after"]
        except (binascii.Error, ValueError, KeyError, TypeError) as error:
            raise self.make_error("invalid_cursor") from error
        if not isinstance(after, str):
            raise self.make_error("invalid_cursor")
        return after


class ListQuerySchema(Schema):
    page_size = ma.fields.Integer(
        load_default=Config.DEFAULT_PAGE_SIZE,
        validate=ma.validate.Range(min=1, max=Config.MAX_PAGE_SIZE),
        **doc(f"Records per page (at most {Config.MAX_PAGE_SIZE}; more is refused).", 50),
    )
    cursor = Cursor(
        **doc("Opaque position from the `next` link of the previous page.", "eyJhZnRlciI6ICJ4In0")
    )


class ArticleQuerySchema(ListQuerySchema):
    pass


class ActorQuerySchema(ListQuerySchema):
    kind = ma.fields.String(
        validate=ma.validate.OneOf(ACTOR_KINDS),
        **doc("Only actors of this kind.", "person", enum=list(ACTOR_KINDS)),
    )


class FactQuerySchema(ListQuerySchema):
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


def _kind_filter(kinds: tuple[str, ...], example: str) -> ma.fields.String:
    return ma.fields.String(
        validate=ma.validate.OneOf(kinds),
        **doc("Only records of this kind.", example, enum=list(kinds)),
    )


class DecreeQuerySchema(FactQuerySchema):
    kind = _kind_filter(DECREE_KINDS, "decree")


class CampaignQuerySchema(FactQuerySchema):
    kind = _kind_filter(CAMPAIGN_KINDS, "regular_call_up")


class PenaltyQuerySchema(FactQuerySchema):
    kind = _kind_filter(PENALTY_KINDS, "desertion")


class EventQuerySchema(FactQuerySchema):
    kind = _kind_filter(EVENT_KINDS, "protest")

"""Source articles."""

import marshmallow as ma

from .base import SLUG, Schema, doc, label, resource_url, timestamp_fields
from .common import DateValueSchema


class ArticleSchema(Schema):
    id = ma.fields.String(
        required=True,
        validate=SLUG,
        **doc("Stable, readable id.", "after-russia-kill-or-be-killed"),
    )
    file = ma.fields.String(
        required=True,
        validate=ma.validate.Length(max=200),
        **doc("Path of the stored text inside `data/`.", "articles/003_3c97c8d52af0c69b.txt"),
    )
    title = ma.fields.String(
        required=True,
        validate=label(300),
        **doc(
            "Label for lists, written by the curators (see `headline` for the article's own).",
            "How Putin pushes Russians to kill or be killed",
        ),
    )
    headline = ma.fields.String(
        required=True,
        allow_none=True,
        validate=label(300),
        **doc(
            "The headline as printed, if the text carries one.",
            "How Putin pushes Russians to kill or be killed",
        ),
    )
    outlet = ma.fields.String(
        required=True,
        allow_none=True,
        validate=label(200),
        **doc("Publishing outlet, if the text names it.", "After Russia"),
    )
    byline = ma.fields.String(
        required=True,
        allow_none=True,
        validate=label(200),
        **doc("Author as credited, if the text names one.", None),
    )
    language = ma.fields.String(
        required=True,
        validate=ma.validate.Length(min=2, max=16),
        **doc("Language of the stored text (BCP 47).", "en"),
    )
    published = ma.fields.Nested(
        DateValueSchema,
        required=True,
        **doc(
            "Publication date, only as far as the text states it.",
            {
                "text": "Mar 12, 2023",
                "value": "2023-03-12",
                "precision": "day",
                "inferred": False,
                "inference": None,
            },
        ),
    )
    note = ma.fields.String(
        required=True,
        allow_none=True,
        **doc("What the curators could and could not establish about the source.", None),
    )
    sha256 = ma.fields.String(
        dump_only=True,
        **doc(
            "SHA-256 of the stored text (UTF-8 bytes).",
            "67146f3265f9220a0de0421e42ed89d7bbf4c8b5821a755a86b13f84ff1af295",
        ),
    )
    word_count = ma.fields.Integer(
        dump_only=True, **doc("Words in the text (whitespace-separated).", 529)
    )
    url = resource_url(
        "articles", **doc("This article.", "/api/v1/articles/after-russia-kill-or-be-killed")
    )
    facts_url = resource_url(
        "articles",
        suffix="/facts",
        **doc(
            "Every record that cites this article.",
            "/api/v1/articles/after-russia-kill-or-be-killed/facts",
        ),
    )
    created_at, updated_at = timestamp_fields("article")


class ArticleDetailSchema(ArticleSchema):
    text = ma.fields.String(
        dump_only=True,
        **doc("The full stored text; citations' offsets index into it.", "After Russia\n..."),
    )

"""Postings of the frequent words: a common word's best hits without scoring all its matches.

A one-word search ranked every match: 334k at 1M records for a word in 30 % of them, 339 ms
on SQLite (bm25 alone 230) and 830 on PostgreSQL for its first page. Its engine's score
depends only on the word's occurrences in a document and (bm25) the document's length, so
postings keyed (word, doc_type, occurrences, length, doc_id) hold each group of equal
occurrences in ranking order, and the best hits are the first rows of each group
(search.best_of_word). The words in at least search.MIN_POSTED_DOCUMENTS documents get
postings here (none in the shipped dataset); `flask search index-words` picks them anew.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.orm import Session

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "search_postings",
        sa.Column("word", sa.String(100), nullable=False),
        sa.Column("doc_type", sa.String(16), nullable=False),
        sa.Column("occurrences", sa.Integer(), nullable=False),
        sa.Column("length", sa.Integer(), nullable=False),
        sa.Column("doc_id", sa.String(100), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "word",
            "doc_type",
            "occurrences",
            "length",
            "doc_id",
            name=op.f("pk_search_postings"),
        ),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "search_word_counts",
        sa.Column("word", sa.String(100), nullable=False),
        sa.Column("doc_type", sa.String(16), nullable=False),
        sa.Column("occurrences", sa.Integer(), nullable=False),
        sa.Column("documents", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "word", "doc_type", "occurrences", name=op.f("pk_search_word_counts")
        ),
    )
    from api import search  # this code's own postings

    search.index_words(Session(bind=op.get_bind()))


def downgrade() -> None:
    op.drop_table("search_word_counts")
    op.drop_table("search_postings")

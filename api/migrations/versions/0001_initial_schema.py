"""Initial schema: articles, actors, facts and their citations, actor links, contradictions;
the dataset revision; the full-text search documents and their backend-specific index.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# The full-text index over search_documents.tokens: FTS5 (kept in sync by triggers) on SQLite,
# a generated tsvector column ('simple' configuration) with a GIN index on PostgreSQL.
# See api/search.py.
_FTS_INSERT = "INSERT INTO search_fts(rowid, tokens) VALUES (new.id, new.tokens);"
_FTS_DELETE = (
    "INSERT INTO search_fts(search_fts, rowid, tokens) VALUES ('delete', old.id, old.tokens);"
)
SEARCH_INDEX = {
    "sqlite": [
        "CREATE VIRTUAL TABLE search_fts USING fts5(tokens, content='search_documents', "
        "content_rowid='id', tokenize='unicode61 remove_diacritics 0')",
        "CREATE TRIGGER search_documents_ai AFTER INSERT ON search_documents "
        f"BEGIN {_FTS_INSERT} END",
        "CREATE TRIGGER search_documents_ad AFTER DELETE ON search_documents "
        f"BEGIN {_FTS_DELETE} END",
        "CREATE TRIGGER search_documents_au AFTER UPDATE ON search_documents "
        f"BEGIN {_FTS_DELETE} {_FTS_INSERT} END",
    ],
    "postgresql": [
        # Stored, so that ranking reads the vector instead of parsing the text again.
        "ALTER TABLE search_documents ADD COLUMN tsv tsvector "
        "GENERATED ALWAYS AS (to_tsvector('simple', tokens)) STORED",
        "CREATE INDEX ix_search_documents_tsv ON search_documents USING gin (tsv)",
    ],
}


def _record_columns() -> list[sa.Column]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "articles",
        sa.Column("id", sa.String(length=100), nullable=False),
        sa.Column("file", sa.String(length=200), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("headline", sa.String(length=300), nullable=True),
        sa.Column("outlet", sa.String(length=200), nullable=True),
        sa.Column("byline", sa.String(length=200), nullable=True),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("published", sa.JSON(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("word_count", sa.Integer(), nullable=False),
        *_record_columns(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_articles")),
    )
    op.create_table(
        "actors",
        sa.Column("id", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("variants", sa.JSON(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        *_record_columns(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_actors")),
    )
    op.create_index(op.f("ix_actors_kind"), "actors", ["kind"])
    op.create_table(
        "facts",
        sa.Column("id", sa.String(length=100), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("date", sa.JSON(), nullable=True),
        sa.Column("date_min", sa.Date(), nullable=True),
        sa.Column("date_max", sa.Date(), nullable=True),
        sa.Column("date_sort", sa.Date(), nullable=False),
        sa.Column("date_sort_desc", sa.Date(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        *_record_columns(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_facts")),
    )
    op.create_index("ix_facts_type_id", "facts", ["type", "id"])
    op.create_index("ix_facts_type_kind_id", "facts", ["type", "kind", "id"])
    op.create_index("ix_facts_type_date_sort_id", "facts", ["type", "date_sort", "id"])
    op.create_index("ix_facts_type_date_sort_desc_id", "facts", ["type", "date_sort_desc", "id"])
    op.create_index("ix_facts_date_sort_id", "facts", ["date_sort", "id"])
    op.create_table(
        "citations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("fact_id", sa.String(length=100), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("article_id", sa.String(length=100), nullable=False),
        sa.Column("quote", sa.Text(), nullable=False),
        sa.Column("start", sa.Integer(), nullable=False),
        sa.Column("end", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["article_id"], ["articles.id"], name=op.f("fk_citations_article_id_articles")
        ),
        sa.ForeignKeyConstraint(
            ["fact_id"], ["facts.id"], name=op.f("fk_citations_fact_id_facts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_citations")),
    )
    op.create_index(op.f("ix_citations_article_id"), "citations", ["article_id"])
    op.create_index(op.f("ix_citations_fact_id"), "citations", ["fact_id"])
    op.create_table(
        "fact_actors",
        sa.Column("fact_id", sa.String(length=100), nullable=False),
        sa.Column("actor_id", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["actors.id"], name=op.f("fk_fact_actors_actor_id_actors")
        ),
        sa.ForeignKeyConstraint(
            ["fact_id"], ["facts.id"], name=op.f("fk_fact_actors_fact_id_facts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("fact_id", "actor_id", "role", name=op.f("pk_fact_actors")),
    )
    op.create_index(op.f("ix_fact_actors_actor_id"), "fact_actors", ["actor_id"])
    op.create_table(
        "contradictions",
        sa.Column("fact_id", sa.String(length=100), nullable=False),
        sa.Column("other_id", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["fact_id"],
            ["facts.id"],
            name=op.f("fk_contradictions_fact_id_facts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["other_id"],
            ["facts.id"],
            name=op.f("fk_contradictions_other_id_facts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("fact_id", "other_id", name=op.f("pk_contradictions")),
    )
    op.create_index(op.f("ix_contradictions_other_id"), "contradictions", ["other_id"])
    op.create_table(
        "dataset_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dataset_state")),
    )
    op.create_table(
        "search_documents",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("doc_type", sa.String(length=16), nullable=False),
        sa.Column("doc_id", sa.String(length=100), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("tokens", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_documents")),
    )
    op.create_index(
        "ix_search_documents_doc", "search_documents", ["doc_type", "doc_id"], unique=True
    )
    for statement in SEARCH_INDEX[op.get_bind().dialect.name]:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE search_fts")  # its triggers go with search_documents
    for table in (
        "search_documents",
        "dataset_state",
        "contradictions",
        "fact_actors",
        "citations",
        "facts",
        "actors",
        "articles",
    ):
        op.drop_table(table)

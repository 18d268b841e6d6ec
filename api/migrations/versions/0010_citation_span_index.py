"""Citations by article and span: the duplicate check of every write (curation._same_citations)
looks up the records citing exactly one passage; by article alone it read all of that
article's citations (about 100 ms per PATCH on PostgreSQL at 1M records).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_citations_article_id_start_end", "citations", ["article_id", "start", "end"]
    )


def downgrade() -> None:
    op.drop_index("ix_citations_article_id_start_end", table_name="citations")

"""SQLite: the search documents' keys by rowid, in an index of their own (search_fts_keys).

Ranking FTS5's matches joins each to its document for the type and id that break ties; read
from the table, that join read a whole document row for every match (about 300 ms of the
480 of a common word's search at 1M records). The index holds just (id, doc_type, doc_id),
and search.py reads it by name: SQLite prefers a rowid lookup in the table otherwise.
PostgreSQL ranks the documents themselves (their stored tsvector): nothing to join.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("CREATE INDEX search_fts_keys ON search_documents (id, doc_type, doc_id)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP INDEX search_fts_keys")

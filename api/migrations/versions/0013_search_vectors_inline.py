"""PostgreSQL: keep each search document's tsvector in its row (STORAGE MAIN), not in TOAST.

A common word's ranking reads the vector of every match (334k at 1M records). Stored
out of line, each one cost a TOAST index lookup and chunk reads: 3.1M buffer hits and 2.4 s
for the ranking; kept in the row (compressed, the longer text and tokens go out of line
instead) 235k pages and 0.83 s. The table is rewritten so that the rows already there move
too: at 1M records the table is locked for the rewrite, about a minute. SQLite: nothing to do.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _set_storage(storage: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"ALTER TABLE search_documents ALTER COLUMN tsv SET STORAGE {storage}")
    # The rows already there are stored anew by a rewrite of the table (CLUSTER: unlike
    # VACUUM FULL it runs inside the migration's transaction), in their id order.
    op.execute("CLUSTER search_documents USING pk_search_documents")
    op.execute("ALTER TABLE search_documents SET WITHOUT CLUSTER")


def upgrade() -> None:
    _set_storage("MAIN")


def downgrade() -> None:
    _set_storage("EXTENDED")

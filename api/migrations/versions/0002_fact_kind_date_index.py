"""An index for lists filtered by kind and date: (type, kind, date_sort, date_max).

Date ranges are matched on date_sort and date_max (store._overlapping); with this index a
kind and a date window read only the index entries of that kind in the window, instead of
every record of the kind.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_facts_type_kind_date_sort_date_max", "facts", ["type", "kind", "date_sort", "date_max"]
    )


def downgrade() -> None:
    op.drop_index("ix_facts_type_kind_date_sort_date_max", table_name="facts")

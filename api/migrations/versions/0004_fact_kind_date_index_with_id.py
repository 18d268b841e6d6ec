"""The kind-and-date index ends with id: (type, kind, date_sort, date_max, id).

With id in it, a list filtered by kind and date window picks its page in id or ascending date
order from the index alone (on PostgreSQL once VACUUM has marked the pages all-visible) and
then reads only that page's rows (store.paginate), instead of reading every record in the
window to sort them.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD = ("ix_facts_type_kind_date_sort_date_max", ["type", "kind", "date_sort", "date_max"])
NEW = ("ix_facts_type_kind_date_sort_date_max_id", [*OLD[1], "id"])


def upgrade() -> None:
    op.create_index(NEW[0], "facts", NEW[1])
    op.drop_index(OLD[0], table_name="facts")


def downgrade() -> None:
    op.create_index(OLD[0], "facts", OLD[1])
    op.drop_index(NEW[0], table_name="facts")

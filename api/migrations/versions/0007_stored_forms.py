"""Stored representations: each record's JSON and CSV line as lists show them, rendered when
the record changes rather than on every read; and an index for a record's revision at a
sequence number.

The existing records are rendered here, by the app's own schemas (records.store_forms).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.orm import Session

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RECORD_TABLES = ("articles", "actors", "facts")


def upgrade() -> None:
    # Plain ALTER TABLE (SQLite has both): batch mode would copy the tables, and SQLite's
    # foreign keys refuse the drop of a table that others refer to.
    for table in RECORD_TABLES:
        op.add_column(table, sa.Column("json_form", sa.Text(), nullable=True))
        op.add_column(table, sa.Column("csv_form", sa.Text(), nullable=True))
    op.create_index(
        "ix_revisions_record_type_record_id_seq",
        "revisions",
        ["record_type", "record_id", "seq"],
    )
    from api import records  # the schemas of this code render what it will serve

    records.store_missing_forms(Session(bind=op.get_bind()))


def downgrade() -> None:
    op.drop_index("ix_revisions_record_type_record_id_seq", table_name="revisions")
    for table in RECORD_TABLES:
        op.drop_column(table, "csv_form")
        op.drop_column(table, "json_form")

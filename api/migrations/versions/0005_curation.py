"""Curation: per-record versions, the revision history and bearer tokens.

Every record gets a version (1 for what is already stored); every change from now on is a
row of `revisions`, numbered by the one-row `dataset_state`, which this migration makes sure
exists so that writes can always lock it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RECORD_TABLES = ("articles", "actors", "facts")


def upgrade() -> None:
    for table in RECORD_TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("version", sa.Integer(), server_default="1", nullable=False))
    op.create_table(
        "revisions",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("record_type", sa.String(length=16), nullable=False),
        sa.Column("record_id", sa.String(length=100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("token_name", sa.String(length=100), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("record", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("patch", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_revisions")),
    )
    op.create_index(
        "ix_revisions_record", "revisions", ["record_type", "record_id", "version"], unique=True
    )
    op.create_index("ix_revisions_record_id", "revisions", ["record_id"])
    op.create_table(
        "tokens",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tokens")),
        sa.UniqueConstraint("name", name=op.f("uq_tokens_name")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_tokens_token_hash")),
    )
    state = sa.table(
        "dataset_state",
        sa.column("id", sa.Integer),
        sa.column("revision", sa.Integer),
        sa.column("changed_at", sa.DateTime(timezone=True)),
    )
    if op.get_bind().execute(sa.select(sa.func.count()).select_from(state)).scalar() == 0:
        op.execute(state.insert().values(id=1, revision=0, changed_at=sa.func.current_timestamp()))


def downgrade() -> None:
    op.drop_table("tokens")
    op.drop_index("ix_revisions_record_id", table_name="revisions")
    op.drop_index("ix_revisions_record", table_name="revisions")
    op.drop_table("revisions")
    for table in RECORD_TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("version")

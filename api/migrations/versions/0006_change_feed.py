"""The change feed: where a database's history begins, and what it mirrors.

`history_from` is the sequence number from which the feed (/changes) is complete: 0 on a
database that recorded every change itself, the snapshot's sequence number on a mirror
seeded from a snapshot. `mirror_of` is the origin a mirror pulls from; a mirror is
read-only.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("dataset_state") as batch:
        batch.add_column(
            sa.Column("history_from", sa.Integer(), server_default="0", nullable=False)
        )
        batch.add_column(sa.Column("mirror_of", sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dataset_state") as batch:
        batch.drop_column("mirror_of")
        batch.drop_column("history_from")

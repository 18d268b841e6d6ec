"""The records of one actor or article in id order: (actor_id, fact_id) and (article_id,
fact_id) indexes on the link tables, replacing those on actor_id and article_id alone.

`/actors/{id}/facts` and `/articles/{id}/facts` are paged in fact id order (store.linked_facts).
With these indexes a page is read from the links of that one actor or article, from its
position on, instead of walking every fact in id order to test each for a link (the whole
table for an actor with few records) or gathering all of an actor's links to sort them.
The old indexes are prefixes of the new ones, which serve their lookups as well.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table: (old index, its column), new index
INDEXES = {
    "fact_actors": (("ix_fact_actors_actor_id", "actor_id"), "ix_fact_actors_actor_id_fact_id"),
    "citations": (("ix_citations_article_id", "article_id"), "ix_citations_article_id_fact_id"),
}


def upgrade() -> None:
    for table, ((old, column), new) in INDEXES.items():
        op.create_index(new, table, [column, "fact_id"])
        op.drop_index(old, table_name=table)


def downgrade() -> None:
    for table, ((old, column), new) in INDEXES.items():
        op.create_index(old, table, [column])
        op.drop_index(new, table_name=table)

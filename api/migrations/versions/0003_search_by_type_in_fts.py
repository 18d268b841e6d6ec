"""SQLite: the full-text index holds each document's type too (search_fts(tokens, doc_type)).

With the type only in search_documents, a search restricted to some types let SQLite's planner
walk every document of those types and test each against the full-text index (19 s for one
rare word among 1M records); counting hits also had to read each matching document. With the
type in the index, FTS5 alone finds and counts the hits of the wanted types. PostgreSQL is
unchanged.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TRIGGERS = ("search_documents_ai", "search_documents_ad", "search_documents_au")


def _fts_statements(columns: list[str]) -> list[str]:
    names = ", ".join(columns)
    new = ", ".join(f"new.{c}" for c in columns)
    old = ", ".join(f"old.{c}" for c in columns)
    insert = f"INSERT INTO search_fts(rowid, {names}) VALUES (new.id, {new});"
    delete = f"INSERT INTO search_fts(search_fts, rowid, {names}) VALUES ('delete', old.id, {old});"
    return [
        *(f"DROP TRIGGER IF EXISTS {name}" for name in TRIGGERS),
        "DROP TABLE IF EXISTS search_fts",
        f"CREATE VIRTUAL TABLE search_fts USING fts5({names}, content='search_documents', "
        "content_rowid='id', tokenize='unicode61 remove_diacritics 0')",
        f"CREATE TRIGGER search_documents_ai AFTER INSERT ON search_documents BEGIN {insert} END",
        f"CREATE TRIGGER search_documents_ad AFTER DELETE ON search_documents BEGIN {delete} END",
        "CREATE TRIGGER search_documents_au AFTER UPDATE ON search_documents "
        f"BEGIN {delete} {insert} END",
        "INSERT INTO search_fts(search_fts) VALUES ('rebuild')",
    ]


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for statement in _fts_statements(["tokens", "doc_type"]):
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for statement in _fts_statements(["tokens"]):
            op.execute(statement)

"""The Alembic migrations build exactly the schema that the models describe."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from api import search
from api.models import Base

from .conftest import BACKENDS


def test_migrated_schema_matches_the_models(backend, new_app):
    app, url = new_app(backend)
    result = app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    engine = create_engine(app.config["DATABASE_URL"])
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={"include_name": lambda name, *_: not search.is_index_object(name)},
        )
        diff = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert diff == []


def test_postgresql_keeps_search_vectors_in_their_rows(new_app):
    """Migration 0013: a common word's ranking reads every match's vector, and one stored
    out of line (TOAST) cost three buffer reads more."""
    if "postgresql" not in BACKENDS:
        pytest.skip("PostgreSQL is unreachable")
    app, url = new_app("postgresql")
    assert app.test_cli_runner().invoke(args=["db", "upgrade"]).exit_code == 0
    engine = create_engine(app.config["DATABASE_URL"])
    with engine.connect() as connection:
        storage = connection.scalar(
            text(
                "SELECT attstorage FROM pg_attribute "
                "WHERE attrelid = 'search_documents'::regclass AND attname = 'tsv'"
            )
        )
    engine.dispose()
    assert storage == "m"  # MAIN: compressed in the row, out of it only as a last resort

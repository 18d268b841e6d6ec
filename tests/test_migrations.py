"""The Alembic migrations build exactly the schema that the models describe."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from api import search
from api.models import Base


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

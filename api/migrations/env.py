"""Alembic environment: runs on the connection `flask db upgrade` hands over, or on the URL."""

from alembic import context
from sqlalchemy import create_engine

from api import search
from api.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying
        # The full-text index is made by hand beside the models: autogenerate leaves it alone.
        include_name=lambda name, *_: not search.is_index_object(name),
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    run_migrations(connection)
else:
    with create_engine(config.get_main_option("sqlalchemy.url")).begin() as connection:
        run_migrations(connection)

"""Command-line interface: `flask --app api <command>`."""

import sys
from pathlib import Path

import click
from alembic import command
from alembic.config import Config as AlembicConfig
from flask import Flask, current_app

from .db import db

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config() -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    # configparser interpolates "%": escape the ones of URL-encoded options.
    config.set_main_option("sqlalchemy.url", current_app.config["DATABASE_URL"].replace("%", "%%"))
    return config


def upgrade_database() -> None:
    url = current_app.config["DATABASE_URL"]
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    with db.engine().begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def register_commands(app: Flask) -> None:
    @app.cli.group("db")
    def db_group():
        """Database schema."""

    @db_group.command("upgrade")
    def db_upgrade():
        """Create or migrate the database schema to the latest revision."""
        upgrade_database()
        click.echo("Database schema is at the latest revision.")

    @app.cli.group("data")
    def data_group():
        """The curated dataset in data/."""

    data_dir_option = click.option(
        "--data-dir",
        type=click.Path(file_okay=False, exists=True, path_type=Path),
        default=None,
        help="Dataset folder (default: the DATA_DIR setting, data/).",
    )

    @data_group.command("check")
    @data_dir_option
    def data_check(data_dir: Path | None):
        """Check the dataset: verbatim citations, references, duplicates, coverage."""
        from .dataset import check_dataset, read_dataset

        dataset = read_dataset(data_dir or current_app.config["DATA_DIR"])
        problems = check_dataset(dataset)
        for problem in problems:
            click.echo(str(problem), err=True)
        if problems:
            click.echo(f"Dataset check failed: {len(problems)} problem(s).", err=True)
            sys.exit(1)
        click.echo(
            f"Dataset OK: {len(dataset.articles)} articles, {len(dataset.actors)} actors, "
            f"{len(dataset.facts)} records."
        )

    @data_group.command("load")
    @data_dir_option
    def data_load(data_dir: Path | None):
        """Migrate the schema, then make the database hold exactly the dataset (idempotent)."""
        from .dataset import DatasetError, check_dataset, load_dataset, read_dataset

        dataset = read_dataset(data_dir or current_app.config["DATA_DIR"])
        try:
            # Checked before anything is touched, so a refused load leaves even the schema as is.
            if problems := check_dataset(dataset):
                raise DatasetError(problems)
            upgrade_database()
            with db.transaction() as session:
                report = load_dataset(session, dataset)
        except DatasetError as error:
            for problem in error.problems:
                click.echo(str(problem), err=True)
            click.echo(
                f"Load refused: {len(error.problems)} problem(s); the database is unchanged.",
                err=True,
            )
            sys.exit(1)
        click.echo(f"Loaded. {report}" if report.changed else f"Already up to date. {report}")

    @app.cli.group("spec")
    def spec_group():
        """The committed OpenAPI document, openapi.yaml."""

    @spec_group.command("write")
    @click.argument("path", type=click.Path(dir_okay=False, path_type=Path), default="openapi.yaml")
    def spec_write(path: Path):
        """Write the OpenAPI document generated from the code."""
        from .spec import spec_yaml

        path.write_text(spec_yaml(current_app), encoding="utf-8")
        click.echo(f"Wrote {path}.")

"""Command-line interface: `flask --app api <command>`."""

import sys
from functools import wraps
from pathlib import Path

import click
from flask import Flask, current_app
from sqlalchemy import make_url
from sqlalchemy.exc import DBAPIError

from .db import db
from .migrate import exclusive, upgrade_database


def reports_database_errors(command):
    """An unreachable or broken database is one clear line and exit status 1, no traceback."""

    @wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (DBAPIError, OSError) as error:  # OSError: a SQLite file that cannot be made
            url = make_url(current_app.config["DATABASE_URL"]).render_as_string()
            reason = getattr(error, "orig", None) or error
            click.echo(f"Database error ({url}): {str(reason).strip().splitlines()[0]}", err=True)
            sys.exit(1)

    return wrapper


def register_commands(app: Flask) -> None:
    @app.cli.group("db")
    def db_group():
        """Database schema."""

    @db_group.command("upgrade")
    @reports_database_errors
    def db_upgrade():
        """Create or migrate the database schema to the latest revision."""
        with exclusive():
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
    @reports_database_errors
    def data_load(data_dir: Path | None):
        """Migrate the schema, then make the database hold exactly the dataset (idempotent)."""
        from .dataset import DatasetError, check_dataset, load_dataset, read_dataset

        dataset = read_dataset(data_dir or current_app.config["DATA_DIR"])
        try:
            # Checked before anything is touched, so a refused load leaves even the schema as is.
            if problems := check_dataset(dataset):
                raise DatasetError(problems)
            with exclusive():  # a concurrent load waits, then finds the data up to date
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

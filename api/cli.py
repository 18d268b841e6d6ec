"""Command-line interface: `flask --app api <command>`."""

import sys
from functools import wraps
from pathlib import Path

import click
from flask import Flask, current_app
from sqlalchemy import make_url
from sqlalchemy.exc import DBAPIError

from .auth import ROLES, TokenError, create_token, list_tokens, revoke_token
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
        from .dataset import check_dataset, coverage_problems, read_dataset

        dataset = read_dataset(data_dir or current_app.config["DATA_DIR"])
        problems = check_dataset(dataset) + coverage_problems(dataset)
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
    @click.option(
        "--over-api-edits",
        is_flag=True,
        help="Also overwrite or delete records last changed through the API (as new revisions).",
    )
    @click.option(
        "--if-empty",
        is_flag=True,
        help="Only seed a database that holds no records yet; leave any other as it is.",
    )
    @reports_database_errors
    def data_load(data_dir: Path | None, over_api_edits: bool, if_empty: bool):
        """Migrate the schema, then make the database hold the dataset (idempotent).

        Every change is recorded as an "imported" revision. Records whose latest change was
        made through the API are never silently reverted: the load is refused, unless
        --over-api-edits applies the files' state over them, as new revisions.
        """
        from .dataset import (
            DatasetError,
            LoadConflict,
            check_dataset,
            is_empty,
            load_dataset,
            read_dataset,
        )

        dataset = read_dataset(data_dir or current_app.config["DATA_DIR"])
        try:
            # Checked before anything is touched, so a refused load leaves even the schema as is.
            if problems := check_dataset(dataset):
                raise DatasetError(problems)
            with exclusive():  # a concurrent load waits, then finds the data up to date
                upgrade_database()
                with db.transaction() as session:
                    if if_empty and not is_empty(session):
                        click.echo("The database holds data already: left as it is (--if-empty).")
                        return
                    report = load_dataset(session, dataset, over_api_edits)
        except DatasetError as error:
            for problem in error.problems:
                click.echo(str(problem), err=True)
            click.echo(
                f"Load refused: {len(error.problems)} problem(s); the database is unchanged.",
                err=True,
            )
            sys.exit(1)
        except LoadConflict as conflict:
            click.echo(
                f"Load refused: it would overwrite, delete or bring back {len(conflict.records)} "
                "record(s) "
                f"last changed through the API: {', '.join(conflict.records)}. The database is "
                "unchanged. Export the database first (`flask data export DIR`), or pass "
                "--over-api-edits to apply the files' state as new revisions.",
                err=True,
            )
            sys.exit(1)
        click.echo(f"Loaded. {report}" if report.changed else f"Already up to date. {report}")

    @data_group.command("export")
    @click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
    @reports_database_errors
    def data_export(out_dir: Path):
        """Write the database into OUT_DIR in data/'s layout (YAML files and article texts)."""
        from .dataset import export_dataset

        out_dir.mkdir(parents=True, exist_ok=True)
        # The read session is one snapshot (REPEATABLE READ on PostgreSQL, a read transaction
        # on SQLite): one consistent state, however many writes commit meanwhile.
        counts = export_dataset(db.session(), out_dir)
        summary = ", ".join(f"{n} {name}" for name, n in counts.items())
        click.echo(f"Exported {summary} to {out_dir}.")

    @app.cli.group("tokens")
    def tokens_group():
        """Bearer tokens for writes: curators edit records, admins may also delete sources."""

    @tokens_group.command("create")
    @click.option("--name", required=True, help="Who holds it; shown in the revision history.")
    @click.option("--role", type=click.Choice(sorted(ROLES)), default="curator", show_default=True)
    @reports_database_errors
    def tokens_create(name: str, role: str):
        """Create a token; it is printed once, alone on the last line."""
        with exclusive():  # a token may be the first thing a new database holds
            upgrade_database()
        try:
            with db.transaction() as session:
                token = create_token(session, name, role)
        except TokenError as error:
            click.echo(str(error), err=True)
            sys.exit(1)
        click.echo(f"Created {role} token {name!r}. It is shown only now; keep it secret:")
        click.echo(token)

    @tokens_group.command("list")
    @reports_database_errors
    def tokens_list():
        """Every token: name, role, when created, when revoked (never the token itself)."""
        with db.transaction() as session:
            tokens = list_tokens(session)
        if not tokens:
            click.echo("No tokens.")
        for token in tokens:
            revoked = f"revoked {token.revoked_at:%Y-%m-%d %H:%M}" if token.revoked_at else "active"
            click.echo(
                f"{token.name}\t{token.role}\tcreated {token.created_at:%Y-%m-%d %H:%M}\t{revoked}"
            )

    @tokens_group.command("revoke")
    @click.argument("name")
    @reports_database_errors
    def tokens_revoke(name: str):
        """Revoke a token: writes with it are refused (401) from now on."""
        try:
            with db.transaction() as session:
                revoke_token(session, name)
        except TokenError as error:
            click.echo(str(error), err=True)
            sys.exit(1)
        click.echo(f"Revoked token {name!r}.")

    @app.cli.group("mirror")
    def mirror_group():
        """Follow another server: this database becomes its read-only mirror."""

    @mirror_group.command("pull")
    @click.argument("source_url")
    @click.option("--page-size", type=click.IntRange(1, 500), default=500, show_default=True)
    @reports_database_errors
    def mirror_pull(source_url: str, page_size: int):
        """Seed from SOURCE_URL's snapshot (first run), then apply its changes since the last.

        SOURCE_URL is the origin's base URL (http://host:8000). Run it again (from cron, in a
        loop) to follow; an interrupted run loses nothing, the next resumes after the last
        page it committed.
        """
        from .mirror import MirrorError, pull

        with exclusive():  # one pull at a time
            upgrade_database()
            try:
                report = pull(current_app.extensions["db_writes"], source_url, page_size)
            except MirrorError as error:
                click.echo(f"Mirror pull failed: {error}", err=True)
                sys.exit(1)
        click.echo(f"Mirror of {source_url.rstrip('/')}: {report}")

    @app.cli.group("search")
    def search_group():
        """The full-text search index."""

    @search_group.command("index-words")
    @click.option(
        "--min-documents",
        type=click.IntRange(1),
        default=None,
        help="Words in at least this many documents get postings (default: 20,000).",
    )
    @click.argument("words", nargs=-1)
    @reports_database_errors
    def search_index_words(min_documents: int | None, words: tuple[str, ...]):
        """Give postings to the frequent words (and WORDS), anew: their one-word searches rank
        their best hits from them instead of scoring every match. Writes keep them."""
        from .search import index_words

        with exclusive():
            upgrade_database()
            with db.transaction() as session:
                posted = index_words(session, min_documents, words)
        listed = ", ".join(f"{word} ({n:,})" for word, n in posted.items()) or "none"
        click.echo(f"Words with postings: {listed}.")

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

#!/bin/sh
# The container's start: bring the database up to date, then become gunicorn.
#
# 1. Migrate the schema to the latest revision (creates the SQLite file or the PostgreSQL
#    tables on first start).
# 2. Load data/ (LOAD_DATA=1, the default): `flask data load` checks the dataset and writes
#    only what differs from the database, so on an up-to-date database it changes nothing
#    ("Already up to date."). LOAD_DATA=0 skips it, for a database loaded by other means.
# 3. exec gunicorn, so that it is PID 1 and receives docker's SIGTERM itself. It reads
#    gunicorn.conf.py from the working directory (HOST, PORT, WEB_CONCURRENCY).
set -eu

flask --app api db upgrade

case "${LOAD_DATA:-1}" in
    1) flask --app api data load ;;
    0) echo "LOAD_DATA=0: the dataset is not loaded by this container." ;;
    *) echo "LOAD_DATA must be 1 or 0, not '${LOAD_DATA}'." >&2; exit 2 ;;
esac

exec gunicorn "$@" 'api:create_app()'

#!/bin/sh
# The container's start: bring the database up to date, then become gunicorn.
#
# 1. Migrate the schema to the latest revision (creates the SQLite file or the PostgreSQL
#    tables on first start).
# 2. Seed from data/ (LOAD_DATA=1, the default) only if the database holds no records yet:
#    once curators edit it through the API, the database is the source of record, and a
#    restart must never revert it to the image's data/. LOAD_DATA=0 skips even the seeding.
# 3. exec gunicorn, so that it is PID 1 and receives docker's SIGTERM itself. It reads
#    gunicorn.conf.py from the working directory (HOST, PORT, WEB_CONCURRENCY).
set -eu

flask --app api db upgrade

case "${LOAD_DATA:-1}" in
    1) flask --app api data load --if-empty ;;
    0) echo "LOAD_DATA=0: the dataset is not loaded by this container." ;;
    *) echo "LOAD_DATA must be 1 or 0, not '${LOAD_DATA}'." >&2; exit 2 ;;
esac

exec gunicorn "$@" 'api:create_app()'

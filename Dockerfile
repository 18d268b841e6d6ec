# syntax=docker/dockerfile:1
# Conscription Facts API: gunicorn with gevent workers on Python 3.12, as an unprivileged user.
# The SQLite database is built from data/ at build time (a dataset that fails its check fails
# the build); docker/boot.sh migrates at every start and seeds only an empty database, so a
# PostgreSQL DATABASE_URL or an empty volume at /app/var works too, and edits are kept.
FROM python:3.12.8-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DATA_DIR=/app/data \
    DATABASE_URL=sqlite:////app/var/facts.sqlite3 \
    HOST=0.0.0.0 \
    PORT=8000 \
    WEB_CONCURRENCY=2

WORKDIR /app
RUN useradd --system --no-log-init --create-home --uid 10001 app

# The pinned dependencies alone, read from pyproject.toml: this layer is rebuilt when they
# change, not with every change to the code or the data.
COPY pyproject.toml ./
RUN python -c 'import tomllib; deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]; open("/tmp/requirements.txt", "w").write("\n".join(deps) + "\n")' \
    && pip install --requirement /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The code, installed without its dependencies (they are in the layer above). gunicorn and
# flask run from /app, so they import the package from here and read gunicorn.conf.py.
COPY LICENSE README.md gunicorn.conf.py ./
COPY api ./api
COPY schemas ./schemas
RUN pip install --no-deps . \
    && rm -rf build ./*.egg-info
COPY --chmod=755 docker/boot.sh ./docker/boot.sh

COPY data ./data
RUN mkdir var && chown app:app var
USER 10001
RUN flask --app api data load

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ['PORT']}/healthz\", timeout=2)"]
# Migrate, seed an empty database from data/ unless LOAD_DATA=0, then exec gunicorn (HOST, PORT, WEB_CONCURRENCY).
CMD ["/app/docker/boot.sh"]

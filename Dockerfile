# syntax=docker/dockerfile:1
# Conscription Facts API: the embedded SQLite database is built from data/ at image build time.
# Python 3.12+: CPython 3.11 crashes in its garbage collector under this workload (a CPython bug).
FROM python:3.12-slim

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
RUN useradd --system --create-home --uid 10001 app

# Dependencies first, so that code and data changes reuse this layer.
COPY pyproject.toml README.md gunicorn.conf.py ./
COPY api ./api
COPY schemas ./schemas
RUN pip install .

COPY data ./data
RUN flask --app api data load && chown -R app:app /app/var

USER 10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ['PORT']}/healthz\", timeout=2)"]
# gunicorn.conf.py reads HOST, PORT and WEB_CONCURRENCY; pass a PostgreSQL DATABASE_URL at run time.
CMD ["gunicorn", "api:create_app()"]

"""Settings, read from the environment once at start-up."""

import os
from pathlib import Path

from schemas.contract import API_PREFIX, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE

PROJECT_DIR = Path(__file__).resolve().parent.parent


def default_database_url() -> str:
    return f"sqlite:///{PROJECT_DIR / 'var' / 'facts.sqlite3'}"


def database_url(url: str) -> str:
    """Let plain postgresql:// URLs use psycopg 3, the driver we ship."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class ConfigError(ValueError):
    """A setting that cannot work: the app refuses to start, naming it."""


def replica_urls(value: str | list[str], primary: str) -> list[str]:
    """DATABASE_REPLICA_URL: PostgreSQL URLs separated by commas or whitespace (empty: none),
    streaming standbys of the PostgreSQL database that DATABASE_URL names."""
    urls = value.replace(",", " ").split() if isinstance(value, str) else list(value)
    urls = [database_url(url) for url in urls]
    if urls and not primary.startswith("postgresql"):
        raise ConfigError(
            "DATABASE_REPLICA_URL needs a PostgreSQL DATABASE_URL: replicas are streaming "
            "standbys of the primary PostgreSQL server."
        )
    for url in urls:
        if not url.startswith("postgresql"):
            raise ConfigError(f"DATABASE_REPLICA_URL: {url.split(':')[0]}:// is not PostgreSQL.")
    return urls


def _list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


class Config:
    DATABASE_URL = database_url(os.environ.get("DATABASE_URL") or default_database_url())
    # Read replicas (PostgreSQL streaming standbys), separated by commas or whitespace; empty:
    # none. Checked and parsed by replica_urls() when the app starts (db.py).
    DATABASE_REPLICA_URL = os.environ.get("DATABASE_REPLICA_URL", "")
    DATA_DIR = Path(os.environ.get("DATA_DIR") or PROJECT_DIR / "data")

    # Where clients reach the API (https://facts.example.org): the base of Link URLs. Empty:
    # links are path-absolute (/api/v1/...), never built from the client's Host header.
    PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "")
    # How many proxies in front set X-Forwarded-For/-Proto/-Host/-Port (0: trust none).
    TRUSTED_PROXIES = int(os.environ.get("TRUSTED_PROXIES") or 0)
    # Origins whose browser pages may call the API (CORS), comma-separated; * for any.
    CORS_ORIGINS = _list(os.environ.get("CORS_ORIGINS") or "*")
    # Each worker keeps its latest answers by ETag, up to this many MB (0: none; tests: none
    # unless set), so that a page asked for again at the same revision is not made again.
    RESPONSE_CACHE_MB = os.environ.get("RESPONSE_CACHE_MB")
    MAX_CONTENT_LENGTH = 1024 * 1024  # a write's body: larger is refused, 413
    MAX_PAGE_SIZE = MAX_PAGE_SIZE
    DEFAULT_PAGE_SIZE = DEFAULT_PAGE_SIZE

    # gzip for JSON, CSV and NDJSON, streamed responses included (flask-compress).
    COMPRESS_ALGORITHM = ["gzip", "br", "deflate"]
    COMPRESS_ALGORITHM_STREAMING = ["gzip", "deflate"]
    COMPRESS_MIMETYPES = ["application/json", "text/csv", "application/x-ndjson"]

    API_TITLE = "Conscription Facts API"
    API_VERSION = "1.0.0"
    OPENAPI_VERSION = "3.1.0"
    OPENAPI_URL_PREFIX = API_PREFIX
    OPENAPI_JSON_PATH = "openapi.json"
    OPENAPI_SWAGGER_UI_PATH = "docs"
    OPENAPI_SWAGGER_UI_URL = f"{API_PREFIX}/docs/assets/"
    OPENAPI_SWAGGER_UI_CONFIG = {"deepLinking": True, "displayRequestDuration": True}
    API_SPEC_OPTIONS = {
        "info": {
            "description": (
                "Structured, source-linked facts about military conscription and mobilisation "
                "in Russia, extracted from news reporting. Every fact record cites the exact "
                "passage of a stored source article that states it: `quote` equals the "
                "article text between the character offsets `start` (inclusive) and `end` "
                "(exclusive), counted in Unicode code points."
            ),
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "servers": [{"url": "/", "description": "This server"}],
    }

"""Conscription Facts API: the Flask application factory."""

from http import HTTPStatus
from pathlib import Path

import flask_swagger_ui
import orjson
from flask import Blueprint, Flask, Response, current_app
from flask.json.provider import DefaultJSONProvider
from flask_compress import Compress
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from . import curation, observability, web
from .cli import register_commands
from .conditional import ConditionalGets, ResponseCache
from .config import API_PREFIX, Config, ConfigError
from .db import db
from .resources import BLUEPRINTS, UNVERSIONED
from .smorest import Api, SlugConverter, problem, unavailable

SWAGGER_UI_ASSETS = Path(flask_swagger_ui.__file__).parent / "dist"
DOCS = f"{API_PREFIX}/docs"


class OrjsonProvider(DefaultJSONProvider):
    """orjson writes responses several times faster than the standard library."""

    def dumps(self, obj, **kwargs) -> str:
        return orjson.dumps(obj, default=self.default, option=orjson.OPT_NON_STR_KEYS).decode()

    def loads(self, s, **kwargs):
        return orjson.loads(s)


def database_unavailable(error: DBAPIError):
    """The database is unreachable, broken or not set up: 503, never a bare 500."""
    current_app.logger.error("Database error: %s", str(error.orig).strip())
    observability.record_database_error()
    return unavailable("The database is unavailable or not ready; try again later (see /readyz).")


def pool_exhausted(error: PoolTimeout):
    """Every pooled connection is busy: the service is overloaded, briefly."""
    current_app.logger.error("No database connection free: %s", error)
    return unavailable("The service is busy; try again shortly.")


def integrity_conflict(error: IntegrityError):
    """A write the rules did not foresee breaking a constraint: a conflict, not a crash."""
    current_app.logger.warning("Integrity error: %s", str(error.orig).strip())
    return problem(HTTPStatus.CONFLICT, "The change conflicts with the stored data.")


def refused(error: curation.Refused):
    """A write that breaks a rule, or a record that is not there: 4xx naming the problem."""
    errors = {"errors": {error.location: error.errors}} if error.errors else {}
    return problem(error.status, error.detail, error.headers, **errors)


def gone(error: curation.Gone):
    """A deleted record: when, by whom and why, and where its history is."""
    return problem(HTTPStatus.GONE, error.detail, **error.fields)


def to_the_docs() -> Response:
    """A bare redirect: no body (werkzeug's redirect() writes an HTML page)."""
    response = Response(status=302, headers={"Location": DOCS})
    del response.headers["Content-Type"]
    return response


def response_cache_bytes(app: Flask) -> int:
    """RESPONSE_CACHE_MB in bytes: 32 MB unless set, none in tests unless set."""
    value = app.config["RESPONSE_CACHE_MB"]
    if value in (None, ""):
        return 0 if app.testing else 32 * 1024 * 1024
    try:
        megabytes = float(value)
    except ValueError:
        megabytes = -1.0
    if not 0 <= megabytes < 1024 * 1024:
        raise ConfigError(f"RESPONSE_CACHE_MB: {value!r} is not a size in MB (0: no cache).")
    return int(megabytes * 1024 * 1024)


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(__name__, static_folder=None)
    # Set before any route is added: a doubled slash is a 404 like any unknown path, not a
    # redirect to a URL built from the Host header, with an HTML body.
    app.url_map.merge_slashes = False
    app.config.from_object(Config)
    if test_config:
        app.config.update(test_config)
    app.json = OrjsonProvider(app)  # keeps fields in schema order

    db.init_app(app)
    observability.init_app(app)
    ConditionalGets(app)  # inside web's ProxyFix: it sees the client's address
    app.extensions["responses"] = ResponseCache(response_cache_bytes(app))
    web.init_app(app)
    Compress(app)
    api = Api(app)
    api.register_converter(SlugConverter, lambda _converter: dict(SlugConverter.openapi))
    app.url_map.converters["slug"] = SlugConverter
    for blp in BLUEPRINTS:
        api.register_blueprint(blp, url_prefix=f"{API_PREFIX}{blp.url_prefix}")
    for blp in UNVERSIONED:
        api.register_blueprint(blp)
    # /metrics is a plain Flask route (observability.py): documented by hand.
    metrics_rule = next(app.url_map.iter_rules("metrics"))
    api.spec.path(rule=metrics_rule, operations=observability.METRICS_OPERATIONS)
    app.register_error_handler(DBAPIError, database_unavailable)
    app.register_error_handler(IntegrityError, integrity_conflict)
    app.register_error_handler(PoolTimeout, pool_exhausted)
    app.register_error_handler(curation.Refused, refused)
    app.register_error_handler(curation.Gone, gone)
    api.spec.components.security_scheme(
        "bearerAuth",
        {
            "type": "http",
            "scheme": "bearer",
            "description": "A token from `flask --app api tokens create`; reads need none.",
        },
    )

    # Swagger UI's JavaScript and CSS come from a pinned package, never from a CDN.
    app.register_blueprint(
        Blueprint(
            "swagger_ui_assets",
            __name__,
            static_folder=SWAGGER_UI_ASSETS,
            static_url_path=f"{API_PREFIX}/docs/assets",
        )
    )
    app.add_url_rule("/", "index", to_the_docs)

    app.extensions["smorest_api"] = api
    register_commands(app)
    return app

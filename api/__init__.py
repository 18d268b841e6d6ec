"""Conscription Facts API: the Flask application factory."""

from pathlib import Path

import flask_swagger_ui
import orjson
from flask import Blueprint, Flask, redirect
from flask.json.provider import DefaultJSONProvider
from flask_compress import Compress
from sqlalchemy import text

from . import observability
from .cli import register_commands
from .config import API_PREFIX, Config
from .db import db
from .resources import BLUEPRINTS
from .smorest import Api

SWAGGER_UI_ASSETS = Path(flask_swagger_ui.__file__).parent / "dist"


class OrjsonProvider(DefaultJSONProvider):
    """orjson writes responses several times faster than the standard library."""

    def dumps(self, obj, **kwargs) -> str:
        return orjson.dumps(obj, default=self.default, option=orjson.OPT_NON_STR_KEYS).decode()

    def loads(self, s, **kwargs):
        return orjson.loads(s)


def health():
    """Liveness and readiness for load balancers: the database answers."""
    db.session().execute(text("SELECT 1"))
    return {"status": "ok"}


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(__name__, static_folder=None)
    app.config.from_object(Config)
    if test_config:
        app.config.update(test_config)
    app.json = OrjsonProvider(app)  # keeps fields in schema order

    db.init_app(app)
    observability.init_app(app)
    Compress(app)
    api = Api(app)
    for blp in BLUEPRINTS:
        api.register_blueprint(blp, url_prefix=f"{API_PREFIX}{blp.url_prefix}")

    # Swagger UI's JavaScript and CSS come from a pinned package, never from a CDN.
    app.register_blueprint(
        Blueprint(
            "swagger_ui_assets",
            __name__,
            static_folder=SWAGGER_UI_ASSETS,
            static_url_path=f"{API_PREFIX}/docs/assets",
        )
    )
    app.add_url_rule("/", "index", lambda: redirect(f"{API_PREFIX}/docs"))
    app.add_url_rule("/healthz", "health", health)

    app.extensions["smorest_api"] = api
    register_commands(app)
    return app

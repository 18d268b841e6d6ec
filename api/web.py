"""Web conventions every response follows: CORS, Vary, security headers, proxies, OPTIONS."""

import base64
import hashlib
import re
import time
from http import HTTPStatus

from flask import Flask, Response, request
from flask_cors import CORS
from flask_smorest import abort
from werkzeug.middleware.proxy_fix import ProxyFix

# What browsers on other origins may read of a response, and send with a write.
EXPOSED_HEADERS = ["Dataset-Seq", "ETag", "Link", "Location", "X-Total-Count", "X-Request-Id"]
ALLOWED_HEADERS = [
    "Accept",
    "Authorization",
    "Content-Type",
    "Edit-Summary",
    "If-Match",
    "If-None-Match",
    "Min-Dataset-Seq",
    "X-Request-Id",
]
ALLOWED_METHODS = ["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"]

# JSON, CSV and NDJSON are data: nothing in them runs, nothing may frame them.
API_CSP = "default-src 'none'; frame-ancestors 'none'"
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.S)


def init_app(app: Flask) -> None:
    if app.config["TRUSTED_PROXIES"]:
        hops = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)
    origins = app.config["CORS_ORIGINS"]
    CORS(
        app,
        # "*" itself, not each origin echoed back: one cached response serves every origin.
        origins="*" if "*" in origins else origins,
        methods=ALLOWED_METHODS,
        allow_headers=ALLOWED_HEADERS,
        expose_headers=EXPOSED_HEADERS,
        max_age=86400,
        send_wildcard=True,
        vary_header=True,
    )
    app.before_request(_take_turns)
    app.before_request(_require_host)
    app.after_request(_conventions)


def _take_turns():
    """Let the worker's other requests run first: under gevent, a connection whose next
    request is already waiting would otherwise be served again and again before them."""
    time.sleep(0)


def _require_host():
    """HTTP/1.1 requires a Host header (RFC 9112 3.2); gunicorn lets a request without pass."""
    environ = request.environ
    if environ.get("SERVER_PROTOCOL") == "HTTP/1.1" and not environ.get("HTTP_HOST"):
        abort(HTTPStatus.BAD_REQUEST, message="An HTTP/1.1 request needs a Host header.")


def _conventions(response: Response) -> Response:
    headers = response.headers
    if request.method == "OPTIONS" and response.status_code == HTTPStatus.OK:
        # Flask's automatic answer is an empty text/html 200: say it with 204 and Allow.
        response.status_code = HTTPStatus.NO_CONTENT
        response.set_data(b"")
    if response.status_code in (HTTPStatus.NO_CONTENT, HTTPStatus.NOT_MODIFIED):
        headers.pop("Content-Type", None)  # no body, no type (not werkzeug's text/html)
    # One URL serves JSON, CSV or NDJSON by Accept, gzip or not by Accept-Encoding.
    response.vary.update(("Accept", "Accept-Encoding"))
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "no-referrer")
    if response.mimetype == "text/html":
        headers.setdefault("Content-Security-Policy", _docs_policy(response))
    else:
        headers.setdefault("Content-Security-Policy", API_CSP)
    return response


def _docs_policy(response: Response) -> str:
    """Swagger UI's page: its own assets only, and the one inline script that starts it."""
    if response.is_streamed:
        return API_CSP
    hashes = [
        "'sha256-" + base64.b64encode(hashlib.sha256(script).digest()).decode() + "'"
        for script in _INLINE_SCRIPT.findall(response.get_data())
    ]
    return (
        f"default-src 'none'; script-src 'self' {' '.join(hashes)}; "
        "style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; "
        "font-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )

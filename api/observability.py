"""Request ids, JSON logs and Prometheus metrics.

- Each request has an id: the client's `X-Request-Id` when it is sane, else a new one. It is
  echoed on every response, errors included, and carried by every log line of the request.
- Logs are JSON lines on stderr: one access line per request (logger `api.access`), and the
  app's own logs (logger `api`: unhandled exceptions, database errors) with the request id.
- `GET /metrics` serves Prometheus metrics; under gunicorn (PROMETHEUS_MULTIPROC_DIR, set by
  gunicorn.conf.py) they are the sums over all workers, whichever worker answers the scrape.
"""

import datetime as dt
import logging
import os
import re
import time
from http import HTTPStatus
from typing import Any

import orjson
from flask import Flask, Response, g, has_request_context, request
from flask.logging import wsgi_errors_stream
from flask_smorest import abort
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.multiprocess import MultiProcessCollector
from pythonjsonlogger.orjson import OrjsonFormatter

REQUEST_ID_HEADER = "X-Request-Id"
# A client's id is kept if it is 1-128 characters of letters, digits and `. _ : -`: enough for
# UUIDs, ULIDs, hex and dotted or colon-separated trace ids. Anything else (spaces, quotes,
# CR/LF, non-ASCII, several ids joined by a comma) could forge log lines or headers: replaced.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

# The fields of every JSON log line, the app's and gunicorn's alike: gunicorn.conf.py repeats
# them, since it may not import the app.
LOG_FORMAT = {
    "fmt": "%(levelname)s %(name)s %(process)d %(message)s",
    "rename_fields": {"levelname": "level", "name": "logger", "process": "pid"},
    "timestamp": True,
}
access_log = logging.getLogger("api.access")

# Bounded label values only: the route's endpoint name (never the raw path, whose ids would
# make a series each), a known method, the status code.
_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"})
_UNMATCHED = "unmatched"  # no route: a 404 or 405 from routing

# The variable is read by prometheus_client when it is imported, as here: the same test.
MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
disable_created_metrics()  # no `*_created` series: they would double the output for nothing

REQUESTS = Counter(
    "http_requests",
    "Requests answered, by endpoint (route name), method and status code.",
    ["endpoint", "method", "status"],
)
LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time from the request to the last byte of the response, by endpoint (route name).",
    ["endpoint"],
)
DATABASE_ERRORS = Counter(
    "database_errors",
    "Requests that failed because the database was unreachable or broken.",
)

# The spec of GET /metrics, for `api.spec.path` (the route itself is a plain Flask one).
METRICS_OPERATIONS = {
    "get": {
        "operationId": "metrics",
        "summary": "Prometheus metrics",
        "description": (
            "Counters and latency histograms of this server in the Prometheus text format "
            "0.0.4: `http_requests_total` by endpoint, method and status, "
            "`http_request_duration_seconds` by endpoint, `database_errors_total`. Summed "
            "over all worker processes of the server."
        ),
        "tags": ["operations"],  # beside /healthz and /readyz
        "security": [],
        "responses": {
            "422": {"$ref": "#/components/responses/UNPROCESSABLE_ENTITY"},
            "200": {
                "description": "The metrics, as `text/plain; version=0.0.4; charset=utf-8`.",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            },
        },
    }
}


def init_app(app: Flask) -> None:
    """Install request ids, access logs, JSON logging and the /metrics route on `app`.

    ACCESS_LOG (default: on, off when TESTING so that tests stay quiet) is read here.
    """
    _configure_logging()
    app.before_request(_start)
    app.after_request(_make_finish(app.config.get("ACCESS_LOG", not app.testing)))
    app.add_url_rule("/metrics", "metrics", metrics)


def request_id() -> str | None:
    """This request's id: the client's X-Request-Id if sane, else a new one. None outside one."""
    if not has_request_context():
        return None
    if "request_id" not in g:
        g.request_id = sane_request_id(request.headers.get(REQUEST_ID_HEADER, ""))
    return g.request_id


def sane_request_id(given: str) -> str:
    # 128 random bits in hex, as uuid4().hex but without building a UUID (a third of the time).
    return given if _SANE_REQUEST_ID.fullmatch(given) else os.urandom(16).hex()


def record_database_error() -> None:
    """Count a request that failed on the database (the error handler calls it)."""
    DATABASE_ERRORS.inc()


def metrics() -> Response:
    """Prometheus metrics, of all gunicorn workers when they share a multiprocess directory."""
    if request.args:  # like every operation: a parameter it does not take is refused
        abort(
            HTTPStatus.UNPROCESSABLE_ENTITY,
            errors={"query": dict.fromkeys(request.args, ["Unknown field."])},
        )
    registry = REGISTRY
    if MULTIPROCESS:
        registry = CollectorRegistry()  # a new one per scrape, as prometheus_client requires
        MultiProcessCollector(registry)
    return Response(
        generate_latest(registry),
        content_type=CONTENT_TYPE_PLAIN_0_0_4,
        headers={"Cache-Control": "no-store"},
    )


def _start() -> None:
    g.request_started = time.perf_counter()
    request_id()


def _make_finish(log_access: bool):
    def finish(response: Response) -> Response:
        # Registered first, this after_request runs last: it sees the final status and size.
        started = g.get("request_started") or time.perf_counter()
        rid = request_id()
        response.headers[REQUEST_ID_HEADER] = rid
        endpoint, method = request.endpoint or _UNMATCHED, request.method
        status = response.status_code
        fields = log_access and access_fields(
            request.environ, status, response.content_length, endpoint, rid
        )

        def done() -> None:
            seconds = time.perf_counter() - started
            record_request(endpoint, method, status, seconds, fields)  # outside the request

        # A stream (an export) ends when the server closes it, long after this hook: time it then.
        if response.is_streamed:
            response.call_on_close(done)
        else:
            done()
        return response

    return finish


def access_fields(
    environ: dict, status: int, size: int | None, endpoint: str, rid: str
) -> dict[str, Any]:
    """What the access log says of a request (from its WSGI environ, whoever answered it)."""

    def text(name: str) -> str:  # WSGI strings are latin-1 stand-ins for the bytes sent
        return environ.get(name, "").encode("latin-1").decode("utf-8", "replace")

    return {
        "method": environ["REQUEST_METHOD"],
        "path": text("PATH_INFO") or "/",
        "query": text("QUERY_STRING"),
        "status": status,
        "bytes": size,  # None for a stream without Content-Length
        "endpoint": endpoint,
        "request_id": rid,
        "remote_addr": environ.get("REMOTE_ADDR"),
        "user_agent": environ.get("HTTP_USER_AGENT"),
    }


def record_request(
    endpoint: str, method: str, status: int, seconds: float, fields: dict | None
) -> None:
    """Count and time an answered request; log it if `fields` (access_fields) are given."""
    method = method if method in _METHODS else "other"
    counted = _series.get((endpoint, method, status))
    if counted is None:  # labels() looks its series up each call: a cheap 304 felt it
        counted = _series[endpoint, method, status] = (
            REQUESTS.labels(endpoint, method, status),
            LATENCY.labels(endpoint),
        )
    counted[0].inc()
    counted[1].observe(seconds)
    if fields and access_log.isEnabledFor(logging.INFO):
        fields["duration_ms"] = round(seconds * 1000, 3)
        _write_access_line(fields)


_series: dict[tuple[str, str, int], tuple] = {}  # bounded: endpoints x methods x statuses


def _write_access_line(fields: dict[str, Any]) -> None:
    """The line the JSON formatter (LOG_FORMAT) would write, without a LogRecord: building
    one and formatting it took more of a cheap 304's time than the rest of it together."""
    line = {
        "level": "INFO",
        "logger": access_log.name,
        "pid": os.getpid(),
        "message": f"{fields['method']} {fields['path']} {fields['status']}",
        **fields,
        "timestamp": dt.datetime.now(dt.UTC).isoformat(),
    }
    _handler.stream.write(orjson.dumps(line).decode() + "\n")


def _add_request_id(record: logging.LogRecord) -> bool:
    if not hasattr(record, "request_id"):
        record.request_id = request_id()
    return True


# Flask's own default handler writes to wsgi_errors_stream too: the server's error stream in a
# request (stderr under gunicorn), sys.stderr of the moment otherwise (pytest swaps it).
_handler = logging.StreamHandler(wsgi_errors_stream)
_handler.setFormatter(OrjsonFormatter(**LOG_FORMAT))
_handler.addFilter(_add_request_id)


def _configure_logging() -> None:
    # `api` is app.logger (the package's name): Flask adds no handler of its own when it has one.
    logger = logging.getLogger("api")
    if _handler not in logger.handlers:  # once per process, however many apps
        logger.addHandler(_handler)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
    # Not again through the root logger, whose handlers (gunicorn's, pytest's) would double it.
    logger.propagate = False

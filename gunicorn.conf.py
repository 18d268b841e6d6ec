"""gunicorn settings, read by `make run`, the Docker image, the tests and the benchmark.

gevent workers: every connection is a greenlet, so idle or slow clients cost a socket, not a
worker (sync workers waited out the timeout on each; see docs/benchmarks.md for the choice).
psycopg 3 cooperates with gevent by itself; SQLite queries are short and run in place.
"""

import json
import os
import shutil
import tempfile

from gunicorn import glogging, util

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gevent"
worker_connections = 1000
# With gevent the timeout only catches a worker that stops reporting, not a long request:
# streams yield after every record (api/formats.py), so a streaming worker keeps reporting.
timeout = 30
keepalive = 5
# The longest request line gunicorn allows; anything longer is a JSON 414 (below).
limit_request_line = 8190
# One control socket per instance, never the shared per-user default that instances steal
# from each other: none unless GUNICORN_CONTROL_SOCKET names one.
control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET", "")
control_socket_disable = not control_socket

# Logs: JSON lines on stderr, the app's and gunicorn's with the same fields (LOG_FORMAT in
# api/observability.py). The app writes one access line per request itself (logger api.access,
# with the request id and the time to the last byte): gunicorn's plain-text one is off. The
# formatter is named by its dotted path: this file must not import the app or Flask, since the
# master loads it before the gevent workers patch the standard library.
accesslog = None
errorlog = "-"
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.orjson.OrjsonFormatter",
            "fmt": "%(levelname)s %(name)s %(process)d %(message)s",
            "rename_fields": {"levelname": "level", "name": "logger", "process": "pid"},
            "timestamp": True,
        }
    },
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stderr",
        }
    },
    "root": {"level": "WARNING", "handlers": ["stderr"]},
    "loggers": {
        # No level: gunicorn's --log-level (loglevel) still applies.
        "gunicorn.error": {"handlers": ["stderr"], "propagate": False},
        # A logconfig_dict turns gunicorn's access log back on: silence it (see accesslog).
        "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
    },
}


class AppLogsAccess(glogging.Logger):
    """gunicorn's Logger, less its access log: silenced above, it would still format every
    request's fields first (a tenth of a 304's time)."""

    def access(self, resp, req, environ, request_time):
        pass


logger_class = AppLogsAccess

# Prometheus: the workers write their counts to files in one directory, and a scrape answered
# by any worker sums them all (prometheus_client's multiprocess mode). The variable must be set
# before the workers import the app; without one given, each instance makes its own directory.
_METRICS_TEMP_PREFIX = "gunicorn-prometheus-"
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix=_METRICS_TEMP_PREFIX)


def on_starting(server):
    """The counts of an earlier run in a given directory are not this run's: wipe them."""
    path = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        if name.endswith(".db"):
            os.remove(os.path.join(path, name))


def child_exit(server, worker):
    """A dead worker's live gauges go (its counters stay: they still count)."""
    # Imported here, in the master, only when a worker has died: never before the first fork.
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    path = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    if os.path.basename(path).startswith(_METRICS_TEMP_PREFIX):  # made above, not given
        shutil.rmtree(path, ignore_errors=True)


def _problem_json_error(sock, status_int, reason, mesg):
    """gunicorn's own errors (bad request line, URI or headers too long) as problem+json.

    gunicorn answers these before the app sees the request, with an HTML page of its own.
    """
    problem = {
        "type": "about:blank",
        "title": reason,
        "status": status_int,
        "detail": mesg or reason,
    }
    body = json.dumps(problem).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/problem+json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


util.write_error = _problem_json_error

"""gunicorn settings, read by `make run`, the Docker image, the tests and the benchmark.

gevent workers: every connection is a greenlet, so idle or slow clients cost a socket, not a
worker (sync workers waited out the timeout on each; see docs/benchmarks.md for the choice).
psycopg 3 cooperates with gevent by itself; SQLite queries are short and run in place.
"""

import json
import os

from gunicorn import util

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gevent"
worker_connections = 1000
# With gevent the timeout only catches a worker that stops reporting, not a long request:
# exports yield between chunks (api/formats.py), so a streaming worker keeps reporting.
timeout = 30
keepalive = 5
# The longest request line gunicorn allows; anything longer is a JSON 414 (below).
limit_request_line = 8190
# One control socket per instance, never the shared per-user default that instances steal
# from each other: none unless GUNICORN_CONTROL_SOCKET names one.
control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET", "")
control_socket_disable = not control_socket
accesslog = "-"


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

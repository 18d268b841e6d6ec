"""gunicorn settings, read by `make run`, the Docker image and the benchmark.

Sync workers: one request at a time per process, which the collector settings below rely on.
(Threaded workers also crash CPython 3.11.7 under load, see api/store.py.) A full export
streams for minutes, hence the long timeout.
"""

import gc
import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "sync"
timeout = 600
accesslog = "-"


def post_worker_init(worker):
    """Collect garbage between requests, never while rows load.

    The app's long-lived objects (mappers, schemas, the spec) are frozen out of the collector's
    reach, and automatic collection is off: post_request collects each request's garbage once
    the response is sent (1-2 ms). Collections in the middle of a request were most of the list
    p99 (30-90 ms each), and the CPython 3.11 crash (api/store.py) happens when the collector
    runs while SQLAlchemy loads rows. Exports, which load rows for minutes, collect between
    batches themselves (store.stream).
    """
    gc.collect()
    gc.freeze()
    if worker.cfg.threads > 1:  # gunicorn then runs threads: a collection could meet a load
        worker.log.warning("threads > 1: the garbage collector stays on (gunicorn.conf.py)")
        return
    gc.disable()


def post_request(worker, req, environ, resp):
    if not gc.isenabled():
        gc.collect()

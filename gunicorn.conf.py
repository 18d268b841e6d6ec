"""gunicorn settings, read by `make run`, the Docker image and the benchmark.

Sync workers: one request at a time per process. (Threaded workers crash CPython 3.11.7 under
load, see api/store.py.) A full export streams for minutes, hence the long timeout.
"""

import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
timeout = 600
accesslog = "-"

"""Request ids, JSON logs and Prometheus metrics."""

from flask import Flask


def init_app(app: Flask) -> None:
    """Installed by create_app; filled in by the observability work."""

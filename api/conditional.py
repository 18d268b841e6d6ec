"""The cheap conditional GET: a 304 that costs one read of the data's revision.

A list or facets GET carries an ETag made from the data's revision and the request
(smorest.Blueprint.etag). Once the whole app has answered a request 304, this WSGI layer in
front of it knows three things about that request (its path, query, Accept and Origin): its
arguments are valid (the 304 came after they were parsed), the fingerprint its tag is made
from, and the headers that the 304 carried. The same request again, with a tag that is still
current, is answered here from those, without Flask, its argument parsing or a session:
a 304 is never sent for arguments that the app would refuse, and it carries what the app's
own 304 did (CORS, Vary, Cache-Control), with a fresh request id, log line and metrics.

Anything else, and any error here, goes to the app as usual.
"""

import hashlib
import queue
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from cachetools import LRUCache
from flask import Flask, Response
from sqlalchemy import event
from werkzeug.http import parse_etags

from schemas.contract import MIN_SEQ_HEADER, SEQ_HEADER

from . import observability

FINGERPRINT = "api.etag_fingerprint"  # environ key: set by Blueprint.etag, read here
# A read-your-writes request (its WSGI environ key): left to the app's routing.
MIN_SEQ = "HTTP_" + MIN_SEQ_HEADER.upper().replace("-", "_")
# Headers of the app's 304 that belong to that one response, not to the request.
_PER_RESPONSE = frozenset({"etag", "x-request-id", "date", "content-length", SEQ_HEADER.lower()})
_REVISION_SQL = "SELECT revision FROM dataset_state WHERE id = 1"


def etag(fingerprint: dict[str, Any], revision: int) -> str:
    """The tag of a request's response at a revision, the app's and this layer's alike (in
    or out of an app context, whose JSON provider flask-smorest's own tags would use)."""
    data = orjson.dumps({**fingerprint, "revision": revision}, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha1(data).hexdigest()


@dataclass
class _Known:
    fingerprint: dict[str, Any]  # what the tag is made from, but the revision
    endpoint: str
    headers: list[tuple[str, str]]
    reports_seq: bool  # the app's 304 said which sequence number it was at
    tagged: tuple[int, str] = (-1, "")  # the last revision asked for, and its tag

    def tag(self, revision: int) -> str:
        if self.tagged[0] != revision:  # one tuple: replaced whole, never seen half-set
            self.tagged = (revision, etag(self.fingerprint, revision))
        return self.tagged[1]


def _key(environ: dict) -> tuple:
    """What a request's answer may depend on, beside its tag (Host: only whether it is given,
    which HTTP/1.1 requires)."""
    return (
        environ.get("SERVER_PROTOCOL"),
        bool(environ.get("HTTP_HOST")),
        environ["REQUEST_METHOD"],
        environ.get("PATH_INFO", ""),
        environ.get("QUERY_STRING", ""),
        environ.get("HTTP_ACCEPT"),
        environ.get("HTTP_ORIGIN"),
    )


class ConditionalGets:
    """WSGI middleware: `ConditionalGets(app)` puts itself in front of the app's wsgi_app."""

    def __init__(self, app: Flask, entries: int = 10_000):
        self.app = app
        self.next = app.wsgi_app
        app.wsgi_app = self
        # Read without a lock (a dict's get is atomic), written under one. The oldest entry
        # goes first: one that is still asked for is learned again from the app's next 304.
        self.known: dict[tuple, _Known] = {}
        self.entries = entries
        self.lock = threading.Lock()
        self.idle: queue.SimpleQueue = queue.SimpleQueue()  # connections for _revision
        # They go when the engine's pooled ones do (its dispose), or with this layer.
        engine, idle = app.extensions["db"].kw["bind"], self.idle
        event.listen(engine, "engine_disposed", lambda _engine: _close_all(idle))
        weakref.finalize(self, _close_all, idle)
        self.log_access = app.config.get("ACCESS_LOG", not app.testing)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ["REQUEST_METHOD"] not in ("GET", "HEAD") or "HTTP_IF_NONE_MATCH" not in environ:
            return self.next(environ, start_response)
        started = time.perf_counter()
        key = _key(environ)
        known = self.known.get(key)
        if known is not None and MIN_SEQ not in environ:
            try:
                answered = self._not_modified(environ, start_response, known, started)
            except Exception:  # noqa: BLE001 - the app answers instead, errors included
                answered = None
            if answered is not None:
                return answered
        return self.next(environ, self._learning(environ, key, start_response))

    def _not_modified(self, environ, start_response, known: _Known, started: float):
        revision = self._revision()
        tag = known.tag(revision)
        if not matches(environ["HTTP_IF_NONE_MATCH"], tag):
            return None
        rid = observability.sane_request_id(environ.get("HTTP_X_REQUEST_ID", ""))
        headers = [*known.headers, ("ETag", f'"{tag}"'), (observability.REQUEST_ID_HEADER, rid)]
        if known.reports_seq:
            headers.append((SEQ_HEADER, str(revision)))
        start_response("304 NOT MODIFIED", headers)
        seconds = time.perf_counter() - started
        fields = self.log_access and observability.access_fields(
            environ, 304, None, known.endpoint, rid
        )
        method = environ["REQUEST_METHOD"]
        observability.record_request(known.endpoint, method, 304, seconds, fields)
        return []

    def _revision(self) -> int:
        """The data's revision, read on a connection of this layer's own.

        Taken from the engine once and then kept (one per concurrent request): the pool's
        checkout and reset on return cost as much as the rest of a 304. In autocommit, so
        that no transaction stays open, and each read sees the latest commit. A connection
        that fails is dropped (and the app answers that request).
        """
        try:
            connection = self.idle.get_nowait()
        except queue.Empty:
            connection = self._connect()
        try:
            cursor = connection.cursor()
            cursor.execute(_REVISION_SQL)
            row = cursor.fetchone()
            cursor.close()
        except Exception:
            connection.close()
            raise
        self.idle.put(connection)
        return row[0] if row else 0

    def _connect(self):
        fairy = self.app.extensions["db"].kw["bind"].raw_connection()
        fairy.detach()  # ours now: the pool neither counts nor resets it
        connection = fairy.dbapi_connection
        if hasattr(connection, "autocommit"):  # psycopg; sqlite3 begins none for a SELECT
            connection.autocommit = True
        return connection

    def _learning(self, environ: dict, key: tuple, start_response: Callable) -> Callable:
        """start_response, remembering an app's 304 that Blueprint.etag made."""

        def learn(status: str, headers: list[tuple[str, str]], exc_info=None):
            tagged = environ.get(FINGERPRINT)
            if tagged is not None and status.startswith("304"):
                kept = [(k, v) for k, v in headers if k.lower() not in _PER_RESPONSE]
                seq = any(k.lower() == SEQ_HEADER.lower() for k, _ in headers)
                with self.lock:
                    self.known[key] = _Known(*tagged, kept, seq)
                    if len(self.known) > self.entries:
                        del self.known[next(iter(self.known))]
            return start_response(status, headers, exc_info)

        return learn


def _close_all(idle: queue.SimpleQueue) -> None:
    while True:
        try:
            idle.get_nowait().close()
        except queue.Empty:
            return


def matches(if_none_match: str, tag: str) -> bool:
    """Whether an If-None-Match names the current tag (weakly: RFC 9110 13.1.2); "*" is left
    to the app."""
    if if_none_match == f'"{tag}"':  # what a client that kept our ETag sends back
        return True
    given = parse_etags(if_none_match)
    return not given.star_tag and tag in same_tags(given.as_set(include_weak=True))


def same_tags(tags) -> set[str]:
    """Tags as compared: flask-compress marks the tags of compressed bodies "<tag>:gzip", and
    that is the same tag."""
    return {tag.split(":")[0] for tag in tags if tag}  # "" is no tag


@dataclass(frozen=True)
class _Kept:  # a 200's
    body: bytes
    headers: list[tuple[str, str]]


class ResponseCache:
    """A worker's answers by their ETag: the tag names the data's revision and all of the
    request that the answer depends on, so the same tag is the same answer, byte for byte.

    Smorest.Blueprint.etag looks a tag up before running the view: a page asked for again at
    the same revision skips its query and its rendering. Only whole 200 bodies up to
    `largest` bytes are kept (streams never), at most `size` bytes in all, the least recently
    used going first; a tag of an older revision is never asked for again and ages out.
    """

    def __init__(self, size: int, largest: int = 1024 * 1024):
        self.entries: LRUCache = LRUCache(maxsize=max(size, 1), getsizeof=_size_of)
        self.size, self.largest = size, largest
        self.lock = threading.Lock()  # cachetools' caches are not thread-safe

    def get(self, tag: str) -> Response | None:
        with self.lock:
            kept = self.entries.get(tag)
        if kept is None:
            return None
        return Response(kept.body, headers=kept.headers)

    def keep(self, tag: str, response: Response) -> Response:
        if (
            self.size
            and response.status_code == 200
            and not response.is_streamed
            and not response.direct_passthrough
        ):
            body = response.get_data()
            if len(body) <= min(self.largest, self.size):
                kept = _Kept(body, list(response.headers.items()))
                with self.lock:
                    self.entries[tag] = kept
        return response


def _size_of(kept: _Kept) -> int:
    return len(kept.body) + sum(len(k) + len(v) for k, v in kept.headers)

"""Hostile clients against a real server: malformed requests, slow clients, a database outage.

    .venv/bin/python bench/hostile.py
    .venv/bin/python bench/hostile.py --backend postgresql --json /tmp/hostile.json

Builds a database from the shipped dataset (SQLite, or a private PostgreSQL cluster that this
script creates, starts and stops by itself: never the system server), starts gunicorn with the
shipped gunicorn.conf.py (2 workers) on a free port, reads the served OpenAPI document and
sends, for every GET operation, hostile values for each path and query parameter (all of them
the first time a parameter is seen, a sample on the operations that share it), odd methods,
Accept, If-None-Match, Host and forwarding headers, then malformed requests on raw sockets.

Every response is checked: a 5xx, an error (4xx/5xx) that is not JSON (Content-Type
application/problem+json or application/json and a body that parses; HEAD needs no body), a
response that is not complete within 10 s (a hang), a connection closed without a response, a
body cut short, a 2xx text/html page other than the Swagger UI (/api/v1/docs), a redirect to
another host and a Python traceback in any body are FAILs. Then 50 half-open and 50 idle
connections are held while /healthz is timed (FAIL over 1 s). With --backend postgresql, the
database is stopped during a load of GETs (every answer must be 503 with a JSON body, or a
200 that needs no database), started again (no 5xx once it is back), restarted once more with
no traffic (the pool's stale connections must not fail a request), and /readyz and /healthz
are checked.

Then the writes (skip them with --skip-writes, or the reads with --skip-reads): with tokens
made by `flask tokens create` (an admin's, a curator's, a revoked one), every write operation
of the served spec (POST, PUT, PATCH, DELETE) gets malformed JSON, invalid UTF-8, NUL bytes
(raw and \u0000), lone surrogates, oversize bodies (10k titles, 2 MiB, 100k-deep and 1000-deep
nesting, 900 KB of distinct words, chunked bodies over the limit, lying Content-Lengths), long
arrays, wrong JSON types and edge values for every field of its body schema (nested ones too),
huge numbers, odd `start`s, odd ids in the body and the URL, odd Content-Types, garbage
Authorization, If-Match and Edit-Summary headers, odd methods and CORS preflights. Hostile
PUTs and PATCHes go to one record of each collection (If-Match: *), DELETEs to a record made
for them. A 2xx where an error is due is a FAIL too (a 2xx that is merely lenient is listed).
Then races: 8 writers with one If-Match on one record (exactly one may win), 8 with
If-Match: * (all win, one revision each), 23 on different records, 8 POSTs of one id and of
one name, contradictions changed from both ends while a record is deleted, writers of 400 KB
bodies, one write that holds the write lock for seconds; then partial bodies that stall (5,
then 60) while /healthz (FAIL over 1 s), reads and writes of other clients are timed (FAIL:
a hang or a 5xx). With --backend postgresql the database is stopped and started during a burst
of writes: every answer must be 2xx or 503, every 2xx write must be in the history, no other
one may be, and the records must match their last revisions. After the probes, the races and
the outage the history is checked (revision seq 1..N without gaps, each record's versions
1..V, every record as GET shows it equal to its last revision's record, deleted ones 410,
contradictions symmetric, lists readable), and at the end `flask data export` of the result
must pass `flask data check`.

One example of each class of FAIL is then sent again, alone, to read the exceptions it logged,
so that the summary groups the FAILs by cause. Prints counts and one example per group; exits
1 on any FAIL. --source DIR serves another checkout (a worktree) with this virtualenv;
--keep-log keeps gunicorn's log; --budget and --write-budget bound the seconds spent on the
read and the write probes.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import json
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

try:
    from run import held_connections  # bench/run.py, shared with bench/servers.py
except ImportError as _error:  # run.py imports generate.py, which imports the app's internals
    _RUN_IMPORT_ERROR: str | None = repr(_error)

    @contextmanager
    def held_connections(port: int, partial: int, idle: int):
        """bench/run.py's helper, used when run.py does not import: `partial` connections
        whose request headers never end and `idle` ones that send nothing; yields a count of
        those the server has answered or closed so far."""
        held: list[socket.socket] = []

        def answered_or_closed() -> int:
            count = 0
            for sock in held:
                sock.setblocking(False)
                try:
                    sock.recv(1, socket.MSG_PEEK)
                    count += 1
                except BlockingIOError:
                    pass
                except OSError:
                    count += 1
            return count

        try:
            for index in range(partial + idle):
                sock = socket.create_connection((LOCALHOST, port), timeout=5)
                if index < partial:
                    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                held.append(sock)
            yield answered_or_closed
        finally:
            for sock in held:
                sock.close()

else:
    _RUN_IMPORT_ERROR = None

PROJECT_DIR = Path(__file__).resolve().parent.parent
VENV_BIN = PROJECT_DIR / ".venv" / "bin"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
API = "/api/v1"
DOCS_PAGE = f"{API}/docs"
LOCALHOST = "127.0.0.1"
TIMEOUT = 10.0  # no complete response within this: a hang
SLOW_LIMIT = 1.0  # /healthz while slow clients hold connections
# The longest valid writes: the write schemas' limits (schemas/facts.py, schemas/writes.py).
MAX_SUMMARY = 20_000  # characters of a summary
MAX_SOURCES = 100  # citations of one record
JSON_TYPES = ("application/problem+json", "application/json")
TRACEBACK = re.compile(rb"Traceback \(most recent call last\)|File \"/[^\"]+\.py\", line \d+")


# HTTP over raw sockets ---------------------------------------------------------------------


@dataclass
class Response:
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    seconds: float = 0.0
    error: str | None = None  # "hang", "no response", "truncated", "connect: ..."

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    def decoded_body(self) -> bytes:
        encoding = self.headers.get("content-encoding", "").strip().lower()
        try:
            if encoding == "gzip":
                return gzip.decompress(self.body)
            if encoding == "deflate":
                return zlib.decompress(self.body)
            if encoding == "br":
                import brotli

                return brotli.decompress(self.body)
        except Exception:  # an undecodable body is reported as it came
            return self.body
        return self.body


class _Reader:
    """Buffered reads from a socket against one deadline (TimeoutError when it passes)."""

    def __init__(self, sock: socket.socket, deadline: float):
        self.sock, self.deadline, self.eof = sock, deadline, False
        self.data, self.pos = bytearray(), 0

    @property
    def buffer(self) -> bytes:
        return bytes(self.data[self.pos :])

    def _fill(self) -> bool:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        self.sock.settimeout(remaining)
        chunk = self.sock.recv(262144)
        if not chunk:
            self.eof = True
            return False
        if self.pos > 1 << 20:
            del self.data[: self.pos]
            self.pos = 0
        self.data += chunk
        return True

    def until(self, marker: bytes) -> bytes | None:
        start = self.pos
        while (found := self.data.find(marker, start)) < 0:
            # Where to search next, relative to pos: _fill may move the buffer's start.
            searched = max(0, len(self.data) - len(marker) + 1 - self.pos)
            if self.eof or not self._fill():
                return None
            start = self.pos + searched
        head = bytes(self.data[self.pos : found])
        self.pos = found + len(marker)
        return head

    def exactly(self, size: int) -> bytes | None:
        while len(self.data) - self.pos < size:
            if self.eof or not self._fill():
                return None
        chunk = bytes(self.data[self.pos : self.pos + size])
        self.pos += size
        return chunk

    def rest(self) -> bytes:
        while not self.eof and self._fill():
            pass
        chunk = self.buffer
        self.pos = len(self.data)
        return chunk


def _read_body(reader: _Reader, headers: dict[str, str]) -> tuple[bytes, bool]:
    """The body and whether it was complete."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        parts: list[bytes] = []
        for _ in range(1_000_000):
            line = reader.until(b"\r\n")
            if line is None:
                return b"".join(parts), False
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                return b"".join(parts), False
            if size == 0:
                reader.until(b"\r\n")  # trailers are not expected
                return b"".join(parts), True
            chunk = reader.exactly(size + 2)
            if chunk is None:
                return b"".join(parts), False
            parts.append(chunk[:-2])
        return b"".join(parts), False
    if "content-length" in headers:
        try:
            size = int(headers["content-length"])
        except ValueError:
            return reader.rest(), False
        data = reader.exactly(size)
        return (data, True) if data is not None else (reader.rest(), False)
    return reader.rest(), True


def exchange(port: int, data: bytes, method: str = "GET", timeout: float = TIMEOUT) -> Response:
    """Send bytes as they are and read one response (skipping 1xx interim ones)."""
    started = time.monotonic()
    response = Response()
    try:
        sock = socket.create_connection((LOCALHOST, port), timeout=timeout)
    except OSError as error:
        response.error = f"connect: {error}"
        return response
    with sock:
        try:
            sock.sendall(data)
        except OSError:
            pass  # the server may answer (and close) before reading everything
        reader = _Reader(sock, started + timeout)
        try:
            for _ in range(5):
                head = reader.until(b"\r\n\r\n")
                if head is None:
                    response.error = "truncated" if reader.buffer else "no response"
                    response.body = reader.buffer[:2000]
                    break
                status_line, *lines = head.decode("latin-1").split("\r\n")
                parts = status_line.split(" ", 2)
                try:
                    response.status = int(parts[1])
                except (IndexError, ValueError):
                    response.error = f"bad status line {status_line[:80]!r}"
                    break
                response.headers = {}
                for line in lines:
                    name, _, value = line.partition(":")
                    key = name.strip().lower()
                    value = value.strip()
                    previous = response.headers.get(key)
                    response.headers[key] = f"{previous}, {value}" if previous else value
                if 100 <= response.status < 200:
                    continue
                if method == "HEAD" or response.status in (204, 304):
                    break
                response.body, complete = _read_body(reader, response.headers)
                if not complete:
                    response.error = "truncated"
                break
        except TimeoutError:
            response.error = "hang"
        except OSError as error:  # reset by peer
            response.error = "truncated" if response.status else f"no response ({error})"
    response.seconds = time.monotonic() - started
    return response


def request_bytes(
    method: str,
    target: str | bytes,
    port: int,
    headers: list[tuple[str, str | bytes]] = (),
    body: bytes = b"",
    version: str = "HTTP/1.1",
    host: str | bytes | None = "default",
) -> bytes:
    """One request; Host and Connection: close are added unless given (host=None: no Host)."""
    target = target.encode("latin-1") if isinstance(target, str) else target
    lines = [method.encode("latin-1") + b" " + target + b" " + version.encode()]
    names = {name.lower() for name, _ in headers}
    if host == "default":
        host = f"{LOCALHOST}:{port}"
    if host is not None and "host" not in names:
        lines.append(b"Host: " + (host.encode("latin-1") if isinstance(host, str) else host))
    if "connection" not in names:
        lines.append(b"Connection: close")
    for name, value in headers:
        value = value.encode("latin-1") if isinstance(value, str) else value
        lines.append(name.encode("latin-1") + b": " + value)
    if body and "content-length" not in names and "transfer-encoding" not in names:
        lines.append(f"Content-Length: {len(body)}".encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def get(port: int, target: str, headers=(), timeout: float = TIMEOUT) -> Response:
    return exchange(port, request_bytes("GET", target, port, list(headers)), timeout=timeout)


# Checking responses ------------------------------------------------------------------------


@dataclass
class Probe:
    group: str  # the operation ("GET /api/v1/events/{fact_id}") or the probe family
    label: str  # what is hostile about it ("fact_id=nul", "method=PUT", "raw:no-version")
    method: str
    target: str  # for the report
    data: bytes
    tier: int = 0  # sent in tiers (0 first) so that a short budget skips the least telling
    may_close: bool = False  # no line ever ends: closing without a word is an answer too


def problems(probe: Probe, response: Response) -> list[str]:
    """The FAIL kinds of one response (empty: it passed)."""
    if response.error:
        kind = response.error.split(" (")[0]
        if probe.may_close and kind == "no response":
            return []
        return [{"hang": "hang", "truncated": "truncated response"}.get(kind, "no response")]
    found = []
    status, ctype = response.status, response.content_type.split(";")[0].strip().lower()
    body = response.decoded_body()
    if status >= 500:
        found.append("5xx")
    if status >= 400:
        json_ok = ctype in JSON_TYPES
        if json_ok and probe.method != "HEAD":
            try:
                json.loads(body)
            except ValueError:
                json_ok = False
        if not json_ok:
            found.append("non-JSON error")
    if 200 <= status < 300 and ctype == "text/html":
        path = urlsplit(probe.target).path.rstrip("/")
        if path != DOCS_PAGE:
            found.append("HTML 200")
    if TRACEBACK.search(body):
        found.append("traceback in body")
    location = response.headers.get("location", "")
    if 300 <= status < 400 and location and FOREIGN not in probe.data.split(b"\r\n\r\n")[0]:
        parts = urlsplit(location.replace("\\", "/"))
        if location.startswith(("//", "/\\", "\\")) or parts.hostname not in (None, LOCALHOST):
            found.append("open redirect")
    return found


FOREIGN = b"evil.example"  # the host that odd Host and forwarding headers name


def notes(probe: Probe, response: Response) -> list[str]:
    """Things worth knowing that the brief does not count as FAILs."""
    found = []
    reflected = response.headers.get("link", "") + response.headers.get("location", "")
    if FOREIGN.decode() in reflected:
        found.append("a foreign Host/X-Forwarded-Host/absolute URI is echoed in Link or Location")
    if probe.label in ("raw:HTTP/1.1 without Host", "Host: twice") and response.status == 200:
        found.append("HTTP/1.1 without Host, or with two, answered 200 (RFC 9112: 400)")
    if response.status and 300 <= response.status < 400 and "html" in response.content_type:
        found.append("a redirect carries an HTML body")
    return found


def abbreviate(text: str, size: int = 200) -> str:
    return text if len(text) <= size else text[: size - 15] + f"…(+{len(text) - size + 15})"


class Tally:
    """Counts of every response and one example of each class of FAIL."""

    def __init__(self):
        self.lock = threading.Lock()
        self.total = 0
        self.by_class: Counter[str] = Counter()
        self.by_kind: Counter[str] = Counter()
        self.classes: dict[tuple, dict] = {}
        self.notes: Counter[str] = Counter()
        self.note_examples: dict[str, str] = {}

    def record(self, probe: Probe, response: Response, kinds: list[str] | None = None) -> None:
        kinds = problems(probe, response) if kinds is None else kinds
        remarks = notes(probe, response)
        with self.lock:
            self.total += 1
            for remark in remarks:
                self.notes[remark] += 1
                self.note_examples.setdefault(
                    remark, f"{probe.method} {abbreviate(probe.target, 120)} -> {response.status}"
                )
            status_class = f"{response.status // 100}xx" if response.status else response.error
            self.by_class[(status_class or "?").split(" (")[0]] += 1
            for kind in kinds:
                self.by_kind[kind] += 1
                ctype = response.content_type.split(";")[0]
                key = (kind, response.status, ctype, probe.label)
                entry = self.classes.get(key)
                if entry is None:
                    self.classes[key] = entry = {
                        "kind": kind,
                        "status": response.status,
                        "content_type": response.content_type,
                        "label": probe.label,
                        "count": 0,
                        "_probe": probe,
                        "operations": [],
                        "example": {
                            "method": probe.method,
                            "url": abbreviate(probe.target),
                            "status": response.status,
                            "error": response.error,
                            "content_type": response.content_type,
                            "body": response.decoded_body()[:200].decode("utf-8", "replace"),
                            "seconds": round(response.seconds, 3),
                            "request": abbreviate(probe.data[:2000].decode("latin-1"), 700),
                        },
                    }
                entry["count"] += 1
                if probe.group not in entry["operations"]:
                    entry["operations"].append(probe.group)

    def fail_count(self) -> int:
        return sum(self.by_kind.values())

    def note(self, remark: str, example: str) -> None:
        with self.lock:
            self.notes[remark] += 1
            self.note_examples.setdefault(remark, example)


# Hostile values ----------------------------------------------------------------------------


def b64(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# (label, value as it goes into the URL, already percent-encoded)
GENERIC = [
    ("empty", ""),
    ("long-10k", "A" * 10240),
    ("long-4k", "A" * 4000),
    ("nul", "%00"),
    ("nul-inside", "a%00b"),
    ("control-chars", "%01%02%1B%7F"),
    ("crlf-injection", "%0D%0AX-Injected:%201"),
    ("tab", "%09"),
    ("invalid-utf8-ff", "%FF"),
    ("invalid-utf8-c328", "%C3%28"),
    ("overlong-utf8-2", "%C0%AF"),
    ("overlong-utf8-3", "%E0%80%AF"),
    ("utf8-surrogate", "%ED%A0%80"),
    ("arabic-digit", quote("٣")),
    ("fullwidth-digit", quote("５")),
    ("plus-5", "%2B5"),
    ("raw-plus-5", "+5"),
    ("space-5", "%205"),
    ("underscore-int", "1_000"),
    ("1e999", "1e999"),
    ("-1", "-1"),
    ("0", "0"),
    ("huge-int", "99999999999999999999"),
    ("huge-negative", "-99999999999999999999"),
    ("int64-overflow", "9223372036854775808"),
    ("NaN", "NaN"),
    ("inf", "inf"),
    ("-Infinity", "-Infinity"),
    ("float", "1.5"),
    ("hex", "0x10"),
    ("bool-TRUE", "TRUE"),
    ("bool-yes", "yes"),
    ("bool-on", "on"),
    ("bool-1", "1"),
    ("bool-tRuE", "tRuE"),
    ("bool-null", "null"),
    ("json-list", "[]"),
    ("json-object", "{}"),
    ("sql-or", quote("' OR 1=1--")),
    ("sql-drop", quote("1; DROP TABLE decrees;--")),
    ("single-quote", "%27"),
    ("double-quote", "%22"),
    ("backslash", "%5C"),
    ("like-wildcards", "%25_%25"),
    ("bare-percent", "%"),
    ("bad-escape", "%zz"),
    ("html", quote("<script>alert(1)</script>")),
    ("traversal", "../../../../etc/passwd"),
    ("traversal-encoded", "..%2F..%2F..%2Fetc%2Fpasswd"),
    ("encoded-slash", "a%2Fb"),
    ("format-string", "%25s%25n%7B0%7D"),
    ("emoji", quote("💥")),
    ("rtl-override", quote("\u202e")),
    ("zero-width", quote("\u200b")),
    ("bom", quote("\ufeff") + "5"),
    ("spaces", "%20%20"),
]
NUMBERS = [
    ("1e3", "1e3"),
    ("1e308", "1e308"),
    ("1e-999", "1e-999"),
    ("denormal", "4.9e-324"),
    ("-0", "-0"),
    ("leading-zeros", "00001"),
    ("thousands-comma", "1,000"),
    ("octal", "0o7"),
    ("int64-max", "9223372036854775807"),
    ("int64-min-1", "-9223372036854775809"),
    ("int32-overflow", "2147483648"),
    ("100-digits", "9" * 100),
]
DATES = [
    ("month-13", "2022-13"),
    ("feb-30", "2022-02-30"),
    ("year-0000", "0000"),
    ("year-0001", "0001"),
    ("year-0001-01-01", "0001-01-01"),
    ("year-9999", "9999"),
    ("year-9999-12", "9999-12"),
    ("year-9999-12-31", "9999-12-31"),
    ("year-10000", "10000"),
    ("negative-year", "-2022"),
    ("short-month", "2022-1"),
    ("datetime", "2022-01-01T00:00"),
    ("slashes", "2022%2F01%2F01"),
    ("arabic-year", quote("٢٠٢٢")),
    ("devanagari-year", quote("२०२२-०९")),
]
SEARCHES = [
    ("fts-quote", "%22"),
    ("fts-empty-phrase", "%22%22"),
    ("fts-unterminated", "%22mobilisation"),
    ("fts-star", "*"),
    ("fts-leading-star", "*a"),
    ("fts-double-star", "a**"),
    ("fts-AND", "AND"),
    ("fts-OR", "a%20OR"),
    ("fts-NOT", "NOT%20a"),
    ("fts-near", "NEAR(a%20b)"),
    ("fts-column", "title:a"),
    ("fts-colon", "a:"),
    ("fts-caret", "%5Ea"),
    ("fts-minus", "-a"),
    ("fts-parens", "(a"),
    ("fts-close-paren", "a)"),
    ("fts-braces", "%7Ba%7D"),
    ("fts-plus", "a%2Bb"),
    ("tsquery-amp", "a%20%26%20b"),
    ("tsquery-pipe", "a%20%7C%20b"),
    ("tsquery-bang", "!a"),
    ("tsquery-follows", "a%20%3C-%3E%20b"),
    ("tsquery-prefix", "a:*"),
    ("tsquery-weight", "a:A"),
    ("apostrophe-word", "a%27b"),
    ("stopwords-only", "the%20a%20of"),
    ("cjk", quote("中文")),
    ("cyrillic", quote("мобилизация")),
    ("many-words", "+".join(["word"] * 120)),
    ("500-chars", "a" * 500),
    ("501-chars", "a" * 501),
    ("many-prefixes", "+".join(["a*"] * 100)),
    ("many-phrases", "+".join(["%22a+b%22"] * 60)),
]
SORTS = [
    ("sort-dash", "-"),
    ("sort-comma", ","),
    ("sort-trailing-comma", "id,"),
    ("sort-leading-comma", ",id"),
    ("sort-double-dash", "--id"),
    ("sort-plus", "%2Bid"),
    ("sort-twice", "-id,-id"),
    ("sort-case", "ID"),
    ("sort-space", "%20id"),
    ("sort-all", "-updated_at,title,kind,date,id"),
]
LISTS = [
    ("list-empty-item", "decree,,penalty"),
    ("list-comma", ","),
    ("list-twice", "decree,decree"),
    ("list-case", "DECREE"),
    ("list-all-facets", "type,kind,year,article,actor"),
    ("list-facet-twice", "year,year"),
    ("list-space", "decree,%20event"),
]
FORMATS = [
    ("format-upper", "CSV"),
    ("format-two", "json,csv"),
    ("format-xml", "xml"),
    ("format-trailing-space", "csv%20"),
]
IDS = [
    ("dot", "."),
    ("dotdot", ".."),
    ("encoded-dotdot", "%2E%2E"),
    ("encoded-dotdot-slash", "..%2Fhealthz"),
    ("upper-case", "DECREE-PARTIAL-MOBILISATION"),
    ("slug-with-space", "a%20b"),
]


def cursor_values(real: str | None) -> list[tuple[str, str]]:
    shapes = {
        "deep-list": "[" * 3000,
        "deep-object": '{"k":' * 1500,
        "deep-valid-json": "[" * 1200 + "]" * 1200,
        "json-object-empty": "{}",
        "json-list": "[]",
        "json-null": "null",
        "json-string": '"x"',
        "json-number": "1",
        "k-null": '{"k":null,"b":false,"s":"id"}',
        "k-empty": '{"k":[],"b":false,"s":"id"}',
        "k-three": '{"k":["a","b","c"],"b":false,"s":"id"}',
        "k-number": '{"k":[1],"b":false,"s":"id"}',
        "k-huge-number": '{"k":[99999999999999999999],"b":false,"s":"id"}',
        "k-nested": '{"k":[["a"]],"b":false,"s":"id"}',
        "k-nul": '{"k":["a\\u0000"],"b":false,"s":"id"}',
        "k-lone-surrogate": '{"k":["\\ud800"],"b":false,"s":"id"}',
        "k-long": '{"k":["' + "a" * 3000 + '"],"b":false,"s":"id"}',
        "b-string": '{"k":["a"],"b":"false","s":"id"}',
        "s-unknown": '{"k":["a"],"b":false,"s":"bogus"}',
        "s-empty": '{"k":["a"],"b":false,"s":""}',
        "s-null": '{"k":["a"],"b":false,"s":null}',
        "missing-b": '{"k":["a"],"s":"id"}',
        "extra-key": '{"k":["a"],"b":false,"s":"id","x":1}',
        "duplicate-key": '{"k":["a"],"k":["b"],"b":false,"s":"id"}',
        "offset-negative": '{"o":-1}',
        "offset-huge": '{"o":99999999999999999999}',
        "offset-big": '{"o":999999999}',
        "offset-float": '{"o":1e308}',
        "offset-string": '{"o":"5"}',
        "offset-bool": '{"o":true}',
    }
    values = [(f"cursor-{label}", b64(text)) for label, text in shapes.items()]
    values += [
        ("cursor-invalid-utf8", b64(b"\xff\xfe{}")),
        ("cursor-json-then-nul", b64(b'{"k":["a"],"b":false,"s":"id"}\x00')),
        ("cursor-not-base64", "!!!"),
        ("cursor-padding-only", "===="),
        ("cursor-one-char", "a"),
        ("cursor-std-base64", base64.b64encode(b'{"k":["a?>"],"b":false,"s":"id"}').decode()),
    ]
    values += mutated_cursors(real)
    if real:
        values += [("cursor-real-plus-char", real + "A"), ("cursor-real-truncated", real[:-3])]
    return values


def decode_cursor(token: str):
    try:
        return json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except ValueError:
        return None


KEY_VALUES = [  # what a cursor's list of keys is filled with
    ("garbage", "not-a-date"),
    ("empty", ""),
    ("nul", "\u0000"),
    ("control", "\u0001\u001b"),
    ("surrogate", "\ud800"),
    ("date-like", "9999-99-99"),
    ("year-0", "0000-01-01"),
    ("number", 1),
    ("huge-number", 10**20),
    ("float", 1e308),
    ("null", None),
    ("nested", ["x"]),
    ("long", "a" * 2000),
]


def mutated_cursors(real: str | None, keys_only: bool = False) -> list[tuple[str, str]]:
    """A real cursor with each of its fields changed in turn (its shape is read, not assumed)."""
    raw = decode_cursor(real) if real else None
    if not isinstance(raw, dict):
        return []
    out: list[tuple[str, object]] = []
    for key, value in raw.items():
        if isinstance(value, list):
            size = max(len(value), 1)
            out += [(f"{key}-{label}", {**raw, key: [item] * size}) for label, item in KEY_VALUES]
            out += [(f"{key}-shorter", {**raw, key: value[:-1]})]
            out += [(f"{key}-longer", {**raw, key: value + (value[-1:] or ["x"])})]
        if keys_only:
            continue
        out.append((f"drop-{key}", {k: v for k, v in raw.items() if k != key}))
        if isinstance(value, bool):
            out += [
                (f"{key}-flipped", {**raw, key: not value}),
                (f"{key}-string", {**raw, key: "true"}),
            ]
        elif isinstance(value, int):
            out += [
                (f"{key}-{label}", {**raw, key: item})
                for label, item in (
                    ("negative", -1),
                    ("huge", 10**20),
                    ("float", 1e308),
                    ("string", "5"),
                )
            ]
        elif isinstance(value, str):
            out += [
                (f"{key}-{label}", {**raw, key: item})
                for label, item in (
                    ("empty", ""),
                    ("other", "zzz"),
                    ("nul", "\u0000"),
                    ("number", 1),
                    ("null", None),
                    ("descending", "-" + value),
                    ("list", [value]),
                )
            ]
    if not keys_only:
        out.append(("extra-key", {**raw, "zz": 1}))
    return [(f"cursor-mut-{label}", b64(json.dumps(obj))) for label, obj in out]


# Building the probes from the served spec ---------------------------------------------------


@dataclass
class Operation:
    path: str  # template
    params: list[dict]
    concrete: str = ""  # the template with real ids
    good: dict[str, str] = field(default_factory=dict)  # a valid value of each parameter
    required: list[str] = field(default_factory=list)
    sort_fields: list[str] = field(default_factory=list)
    cursor: str | None = None
    sort_cursors: dict[str, str] = field(default_factory=dict)  # a real cursor for each sort
    etag: str | None = None

    @property
    def name(self) -> str:
        return f"GET {self.path}"


def _resolve(spec: dict, item: dict) -> dict:
    while "$ref" in item:
        node = spec
        for part in item["$ref"].lstrip("#/").split("/"):
            node = node[part]
        item = node
    return item


def _good_value(param: dict) -> str:
    schema = param.get("schema", {})
    name = param["name"]
    known = {"q": "mobilisation", "page_size": "1", "format": "json"}
    if name in known:
        return known[name]
    for candidate in (param.get("example"), schema.get("example"), schema.get("default")):
        if candidate is not None:
            return str(candidate).lower() if isinstance(candidate, bool) else str(candidate)
    if schema.get("enum"):
        return str(schema["enum"][0])
    return {"integer": "1", "number": "1", "boolean": "true"}.get(schema.get("type"), "x")


def _first_id(body: bytes) -> str | None:
    """The id of the first record of a list (bare, or inside an envelope)."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if isinstance(data, dict):
        data = next((value for value in data.values() if isinstance(value, list)), None)
    if isinstance(data, list) and data and isinstance(data[0], dict):
        return data[0].get("id")
    return None


def operations(port: int) -> list[Operation]:
    spec = json.loads(get(port, f"{API}/openapi.json").body)
    found, ids = [], {}
    for path, item in sorted(spec["paths"].items()):
        if "get" not in item:
            continue
        params = [_resolve(spec, p) for p in item.get("parameters", [])]
        params += [_resolve(spec, p) for p in item["get"].get("parameters", [])]
        op = Operation(path, params)
        concrete = path
        for param in params:
            if param["in"] == "path" and param.get("schema", {}).get("type") == "integer":
                number = str(param.get("example") or param["schema"].get("minimum") or 1)
                concrete = concrete.replace("{" + param["name"] + "}", number)  # a revision
            elif param["in"] == "path":
                collection = path.split("{")[0].rstrip("/")
                if not ids.get(collection):
                    listing = get(port, f"{collection}?page_size=1")
                    ids[collection] = _first_id(listing.body) or param.get("example") or "x"
                concrete = concrete.replace("{" + param["name"] + "}", ids[collection])
            elif param["in"] == "query":
                op.good[param["name"]] = _good_value(param)
                if param.get("required"):
                    op.required.append(param["name"])
                if param["name"] == "sort":
                    pattern = param.get("schema", {}).get("pattern", "")
                    match = re.search(r"\^-\?\(([^)]*)\)", pattern)
                    op.sort_fields = match.group(1).split("|") if match else ["id"]
        op.concrete = concrete
        base = "&".join(f"{name}={op.good[name]}" for name in op.required)
        if any(p["name"] == "cursor" for p in params):
            target = f"{concrete}?{base}&page_size=1" if base else f"{concrete}?page_size=1"
            link = get(port, target).headers.get("link", "")
            match = re.search(r"[?&]cursor=([^&>]+)[^>]*>;\s*rel=\"next\"", link)
            op.cursor = match.group(1) if match else None
            if op.cursor:
                op.good["cursor"] = op.cursor
            for name in op.sort_fields:
                for sort in (name, f"-{name}"):
                    link = get(port, f"{target}&sort={sort}").headers.get("link", "")
                    match = re.search(r"[?&]cursor=([^&>]+)[^>]*>;\s*rel=\"next\"", link)
                    if match:
                        op.sort_cursors[sort] = match.group(1)
        first = get(port, f"{concrete}?{base}" if base else concrete)
        op.etag = first.headers.get("etag")
        found.append(op)
    return found


def _query(op: Operation, overrides: list[tuple[str, str]], skip: str | None = None) -> str:
    pairs = [(n, op.good[n]) for n in op.required if n != skip]
    pairs += overrides
    return "&".join(f"{name}={value}" if value is not None else name for name, value in pairs)


def _target(op: Operation, query: str, path: str | None = None) -> str:
    path = path or op.concrete
    return f"{path}?{query}" if query else path


# The values sent for a parameter already probed in full on FULL_REPEATS operations.
FULL_REPEATS = 1
REDUCED = set(
    "empty long-4k nul invalid-utf8-ff arabic-digit huge-int 1e999 NaN sql-or cursor-deep-list "
    "cursor-k-nul cursor-offset-huge star garbage real-etag weak-real-etag".split()
)
REDUCED_EXTRAS = 3  # and this many of the values specific to the parameter


def parameter_probes(op: Operation, port: int, seen: Counter) -> list[Probe]:
    """Hostile values for each parameter, in full the first FULL_REPEATS times it is seen."""
    probes = []

    tier = 1

    def add(label: str, target: str, headers=()):
        data = request_bytes("GET", target, port, list(headers))
        probes.append(Probe(op.name, label, "GET", target, data, tier))

    for param in op.params:
        name, where = param["name"], param["in"]
        kind = param.get("schema", {}).get("type")
        extras = []
        if kind in ("integer", "number"):
            extras += NUMBERS
        if name.startswith("date_"):
            extras += DATES
        if name == "q":
            extras += SEARCHES
        if name == "sort":
            extras += SORTS
        if name in ("type", "facets"):
            extras += LISTS
        if name == "format":
            extras += FORMATS
        if name == "cursor":
            extras += cursor_values(op.cursor)
        if where == "path":
            extras += IDS
        signature = (name, where, json.dumps(param.get("schema"), sort_keys=True))
        seen[signature] += 1
        values = GENERIC + extras
        full = seen[signature] <= FULL_REPEATS
        tier = 1 if full else 2
        if not full:
            values = [(label, value) for label, value in values if label in REDUCED]
            values += [v for v in extras[:REDUCED_EXTRAS] if v[0] not in REDUCED]
        if where == "header":
            for label, value in header_values(op):
                if full or label in REDUCED:
                    add(f"{name}: {label}", _target(op, _query(op, [])), [(name, value)])
            continue
        for label, value in values:
            if where == "path":
                real = op.concrete.split("/")
                template = op.path.split("/")
                index = template.index("{" + name + "}")
                real[index] = value
                add(f"{name}={label}", _target(op, _query(op, []), "/".join(real)))
            else:
                add(f"{name}={label}", _target(op, _query(op, [(name, value)], skip=name)))
        if where == "query":
            good = op.good[name]
            add(f"{name}=repeated", _target(op, _query(op, [(name, good), (name, good)], name)))
            if not full:
                continue
            add(
                f"{name}=repeated-different",
                _target(op, _query(op, [(name, good), (name, "x")], name)),
            )
            add(f"{name}=no-equals", _target(op, _query(op, [(name, None)], name)))
            add(f"{name}=upper-case-name", _target(op, _query(op, [(name.upper(), good)], name)))
            add(f"{name}=bracket-name", _target(op, _query(op, [(name + "[]", good)], name)))
    # Formats combined with the values most likely to break a stream.
    names = {p["name"] for p in op.params}
    shape = _shape(op)
    seen[("shape", shape)] += 1
    first_of_shape = seen[("shape", shape)] == 1
    tier = 1 if first_of_shape else 2
    if "format" in names:
        count = 12 if first_of_shape else 3
        for fmt in ("csv", "ndjson"):
            for name, values in (("q", SEARCHES), ("cursor", cursor_values(None))):
                if name in names:
                    for label, value in values[:count]:
                        query = _query(op, [("format", fmt), (name, value)], skip=name)
                        add(f"format={fmt}&{name}={label}", _target(op, query))
            add(
                f"format={fmt}&page_size=500",
                _target(op, _query(op, [("format", fmt), ("page_size", "500")])),
            )
    if op.sort_cursors:
        seen[("sort fields", *op.sort_fields)] += 1
        full = seen[("sort fields", *op.sort_fields)] <= FULL_REPEATS
        tier = 1 if full else 2
        for sort, real in list(op.sort_cursors.items())[: None if full else 2]:
            for label, cursor in mutated_cursors(real, keys_only=True):
                add(
                    f"sort={sort}&{label}",
                    _target(op, _query(op, [("sort", sort), ("cursor", cursor)])),
                )
        if op.cursor:
            for name in op.sort_fields:
                add(
                    f"sort={name}&cursor-from-other-sort",
                    _target(op, _query(op, [("sort", name), ("cursor", op.cursor)])),
                )
    # Unknown and odd parameter names.
    odd = [
        ("unknown-param", "zzz=1"),
        ("empty-name", "=1"),
        ("ampersands", "&&&"),
        ("semicolon", "a=1;b=2"),
        ("nul-name", "%00=1"),
        ("invalid-utf8-name", "%FF=1"),
        ("long-name", "n" * 4000 + "=1"),
        ("500-params", "&".join(f"p{i}=1" for i in range(500))),
        ("nested-name", "a[b][c]=1"),
        ("question-mark-only", ""),
    ]
    for label, query in odd if first_of_shape else odd[:3]:
        base = _query(op, [])
        add(f"query:{label}", f"{op.concrete}?{base + '&' if base else ''}{query}")
    return probes


def header_values(op: Operation) -> list[tuple[str, str | bytes]]:
    """Odd If-None-Match values."""
    values = [
        ("weak-x", 'W/"x"'),
        ("star", "*"),
        ("garbage", "garbage"),
        ("unquoted", "abc"),
        ("empty", ""),
        ("list", '"a", "b", W/"c", *'),
        ("long", '"' + "a" * 6000 + '"'),
        ("non-ascii", '"\xe9t\xe9"'.encode("latin-1")),
        ("utf8", '"мобилизация"'.encode()),
    ]
    if op.etag:
        values += [("real-etag", op.etag), ("weak-real-etag", "W/" + op.etag)]
    return values


def _shape(op: Operation) -> str:
    if op.path.endswith("}"):
        return "detail"
    if op.path.endswith("/facets"):
        return "facets"
    return "list" if any(p["name"] == "cursor" for p in op.params) else op.path


def request_probes(op: Operation, port: int, seen: Counter) -> list[Probe]:
    """Methods and headers on a valid URL of the operation (all headers once per shape)."""
    target = _target(op, _query(op, []))
    probes = []
    for method in ("OPTIONS", "HEAD", "PUT", "DELETE", "PATCH", "PROPFIND", "TRACE", "get"):
        body = b'{"x": 1}' if method in ("PUT", "PATCH") else b""
        headers = [("Content-Type", "application/json")] if body else []
        data = request_bytes(method, target, port, headers, body)
        probes.append(Probe(op.name, f"method={method}", method, target, data))
    headers: list[tuple[str, list[tuple[str, str | bytes]], str | None]] = [
        ("Accept: text/html", [("Accept", "text/html")], "default"),
        ("Accept: */*;q=0", [("Accept", "*/*;q=0")], "default"),
        ("Accept: application/xml", [("Accept", "application/xml")], "default"),
        ("Accept: garbage", [("Accept", "garbage;;;q=x,/")], "default"),
        ("Accept: all q=0", [("Accept", "application/json;q=0, text/csv;q=0")], "default"),
        ("Accept: text/csv", [("Accept", "text/csv")], "default"),
        ("Accept-Encoding: gzip;q=nan", [("Accept-Encoding", "gzip;q=nan")], "default"),
        ("Accept-Encoding: identity;q=0", [("Accept-Encoding", "identity;q=0, *;q=0")], "default"),
        ("Accept-Encoding: br", [("Accept-Encoding", "br")], "default"),
        ("Host: empty", [], ""),
        ("Host: foreign", [], "evil.example"),
        ("Host: bad port", [], "127.0.0.1:99999"),
        ("Host: with space", [], "a b"),
        ("Host: bracket", [], "[::1"),
        ("Host: non-ascii", [], "h\xf6st".encode("latin-1")),
        ("Host: twice", [("Host", "evil.example")], "default"),
        ("X-Forwarded-Host: foreign", [("X-Forwarded-Host", "evil.example")], "default"),
        ("X-Forwarded-Host: garbage", [("X-Forwarded-Host", "a b\x01")], "default"),
        ("X-Forwarded-Proto: gopher", [("X-Forwarded-Proto", "gopher")], "default"),
        ("X-Forwarded-Proto: list", [("X-Forwarded-Proto", "https, http")], "default"),
        ("X-Forwarded-For: garbage", [("X-Forwarded-For", "not-an-ip, ::::")], "default"),
        ("X-Forwarded-Port: abc", [("X-Forwarded-Port", "abc")], "default"),
        ("Forwarded: odd", [("Forwarded", 'for="_x";proto=ftp;host=evil.example')], "default"),
        ("Range: bytes=0-0", [("Range", "bytes=0-0")], "default"),
        ("Range: garbage", [("Range", "bytes=z-")], "default"),
        ("If-Modified-Since: garbage", [("If-Modified-Since", "yesterday")], "default"),
        ("If-Match: garbage", [("If-Match", "garbage")], "default"),
        ("Content-Type on GET", [("Content-Type", "application/json; charset=nope")], "default"),
        ("Origin: foreign", [("Origin", "http://evil.example")], "default"),
        ("Cookie: 6 KB", [("Cookie", "a=" + "b" * 6000)], "default"),
        ("Authorization: garbage", [("Authorization", "Bearer \x7f")], "default"),
        ("Expect: 100-continue", [("Expect", "100-continue")], "default"),
        ("Connection: keep-alive", [("Connection", "keep-alive")], "default"),
    ]
    seen[("headers", _shape(op))] += 1
    if seen[("headers", _shape(op))] > 1:
        headers = [h for h in headers if h[0].startswith(("Accept:", "Host: foreign", "X-Forw"))]
    for label, extra, host in headers:
        data = request_bytes("GET", target, port, extra, host=host)
        probes.append(Probe(op.name, label, "GET", target, data))
    return probes


def raw_probes(port: int) -> list[Probe]:
    """Malformed requests and odd URLs that no HTTP library would send."""
    host = f"Host: {LOCALHOST}:{port}".encode()
    events = f"{API}/events".encode()
    raw: list[tuple[str, bytes]] = [
        ("garbage bytes", bytes(range(256)) * 4),
        ("tls client hello", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64),
        ("text garbage", b"hello there\r\n\r\n"),
        ("no HTTP version", b"GET /healthz\r\n\r\n"),
        ("no HTTP version, API", b"GET " + events + b"\r\n\r\n"),
        ("HTTP/1.0 without Host", b"GET " + events + b" HTTP/1.0\r\n\r\n"),
        ("HTTP/1.1 without Host", b"GET " + events + b" HTTP/1.1\r\nConnection: close\r\n\r\n"),
        ("HTTP/2.0", b"GET " + events + b" HTTP/2.0\r\n" + host + b"\r\n\r\n"),
        ("HTTP/9.9", b"GET " + events + b" HTTP/9.9\r\n" + host + b"\r\n\r\n"),
        ("lowercase version", b"GET " + events + b" http/1.1\r\n" + host + b"\r\n\r\n"),
        ("version garbage", b"GET " + events + b" HTTP/1.1x\r\n" + host + b"\r\n\r\n"),
        ("h2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
        ("asterisk OPTIONS", b"OPTIONS * HTTP/1.1\r\n" + host + b"\r\nConnection: close\r\n\r\n"),
        ("asterisk GET", b"GET * HTTP/1.1\r\n" + host + b"\r\nConnection: close\r\n\r\n"),
        ("CONNECT", b"CONNECT 127.0.0.1:1 HTTP/1.1\r\n" + host + b"\r\nConnection: close\r\n\r\n"),
        (
            "absolute-form URI",
            b"GET http://evil.example"
            + events
            + b" HTTP/1.1\r\n"
            + host
            + b"\r\nConnection: close\r\n\r\n",
        ),
        ("tabs in request line", b"GET\t" + events + b"\tHTTP/1.1\r\n" + host + b"\r\n\r\n"),
        ("extra spaces", b"GET  " + events + b"  HTTP/1.1\r\n" + host + b"\r\n\r\n"),
        ("LF line endings", b"GET " + events + b" HTTP/1.1\n" + host + b"\nConnection: close\n\n"),
        (
            "header without colon",
            b"GET " + events + b" HTTP/1.1\r\n" + host + b"\r\nNoColon\r\n\r\n",
        ),
        ("space before colon", b"GET " + events + b" HTTP/1.1\r\n" + host + b"\r\nX-A : 1\r\n\r\n"),
        (
            "obs-fold",
            b"GET "
            + events
            + b" HTTP/1.1\r\n"
            + host
            + b"\r\nX-A: 1\r\n  2\r\nConnection: close\r\n\r\n",
        ),
        ("NUL in header", b"GET " + events + b" HTTP/1.1\r\n" + host + b"\r\nX-A: a\x00b\r\n\r\n"),
        (
            "bad header name",
            b"GET " + events + b" HTTP/1.1\r\n" + host + b"\r\nBad Name: 1\r\n\r\n",
        ),
        (
            "raw non-ASCII URL",
            b"GET " + events + b"/\xff\xfe HTTP/1.1\r\n" + host + b"\r\nConnection: close\r\n\r\n",
        ),
        (
            "raw space in URL",
            b"GET " + events + b"/a b HTTP/1.1\r\n" + host + b"\r\nConnection: close\r\n\r\n",
        ),
        (
            "fragment in URL",
            b"GET " + events + b"#x HTTP/1.1\r\n" + host + b"\r\nConnection: close\r\n\r\n",
        ),
        ("long method", b"G" * 5000 + b" " + events + b" HTTP/1.1\r\n" + host + b"\r\n\r\n"),
        ("NUL in method", b"G\x00T " + events + b" HTTP/1.1\r\n" + host + b"\r\n\r\n"),
        ("empty request line", b"\r\n\r\n"),
        ("only CRLFs", b"\r\n" * 50),
    ]
    probes = [
        Probe("raw", f"raw:{label}", "GET", label, data, may_close=b"\n" not in data)
        for label, data in raw
    ]

    def add(label: str, method: str, target: str | bytes, headers=(), body=b"", **kw):
        data = request_bytes(method, target, port, list(headers), body, **kw)
        shown = target if isinstance(target, str) else target.decode("latin-1")
        probes.append(Probe("raw", f"raw:{label}", method, shown, data))

    add("body on GET", "GET", f"{API}/events", body=b'{"page_size": 1}')
    add(
        "body on GET, form",
        "GET",
        f"{API}/events",
        [("Content-Type", "application/x-www-form-urlencoded")],
        b"page_size=0",
    )
    add(
        "chunked body on GET",
        "GET",
        f"{API}/events",
        [("Transfer-Encoding", "chunked")],
        b"5\r\nhello\r\n0\r\n\r\n",
    )
    add(
        "bad chunk size",
        "GET",
        f"{API}/events",
        [("Transfer-Encoding", "chunked")],
        b"zz\r\nhello\r\n0\r\n\r\n",
    )
    add("Content-Length: abc", "GET", f"{API}/events", [("Content-Length", "abc")], b"x")
    add("Content-Length: -1", "GET", f"{API}/events", [("Content-Length", "-1")], b"x")
    add(
        "Content-Length twice",
        "GET",
        f"{API}/events",
        [("Content-Length", "1"), ("Content-Length", "2")],
        b"xy",
    )
    add(
        "Content-Length and chunked",
        "GET",
        f"{API}/events",
        [("Content-Length", "3"), ("Transfer-Encoding", "chunked")],
        b"0\r\n\r\n",
    )
    add("Transfer-Encoding: gzip", "GET", f"{API}/events", [("Transfer-Encoding", "gzip")], b"x")
    add("100 KB header", "GET", f"{API}/events", [("X-Big", "a" * 102400)])
    add("200 headers", "GET", f"{API}/events", [(f"X-H{i}", "1") for i in range(200)])
    add("URL path over 9 KB", "GET", f"{API}/events/" + "a" * 9300)
    add("URL query over 9 KB", "GET", f"{API}/events?q=" + "a" * 9300)
    add("URL just under the limit", "GET", f"{API}/events?q=" + "a" * 8100)
    for path in (
        "//",
        f"{API}//events",
        f"/{API}/events",
        f"{API}/events/",
        f"{API}/./events",
        f"{API}/events/..",
        f"{API}/%2e%2e/healthz",
        f"{API}/events%2F",
        f"{API}%2Fevents",
        f"{API}/EVENTS",
        f"{API}/events;jsessionid=1",
        f"{API}/docs/assets/../../../../etc/passwd",
        f"{API}/docs/assets/%2e%2e/%2e%2e/%2e%2e/api/config.py",
        f"{API}/docs/assets/..%2F..%2F..%2Fapi%2Fconfig.py",
        f"{API}/docs/assets/",
        f"{API}/docs/assets/%00",
        f"{API}/docs/",
        f"{API}/docs?x=%FF",
        f"{API}/openapi.json?x=1",
        f"{API}/",
        f"{API}",
        "/api",
        "/nope",
        "/healthz?x=1",
        "/readyz",
        "/metrics",
        "/?%FF",
        "//evil.example/",
        "//evil.example/%2e%2e",
        "/%2F%2Fevil.example",
        "/%5Cevil.example",
        "/\\evil.example",
        "///evil.example//",
        "/%00",
        "/%FF",
    ):
        add(f"path {path}", "GET", path)
    for method in ("HEAD", "OPTIONS", "DELETE", "TRACE"):
        add(f"{method} unknown path", method, "/nope")
    add(
        "HTTP/1.0 keep-alive",
        "GET",
        f"{API}/events",
        [("Connection", "keep-alive")],
        version="HTTP/1.0",
    )
    return probes


# The server --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOCALHOST, 0))
        return sock.getsockname()[1]


class PrivatePostgres:
    """A throwaway cluster in a temporary directory, on its own port and socket directory."""

    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="hostile-pg-"))
        self.data, self.log = self.root / "data", self.root / "postgres.log"
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
        self.url = f"postgresql://postgres@{LOCALHOST}:{self.port}/postgres"
        self.running = False

    def _run(self, *command: str, timeout: float = 60) -> None:
        argv = [str(PG_BIN / command[0]), *command[1:]]
        if self.as_root:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        subprocess.run(argv, check=True, capture_output=True, timeout=timeout, cwd=self.root)

    def init(self) -> None:
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses={LOCALHOST} -c fsync=off "
            "-c max_connections=60"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
            "-w",
            "-t",
            "30",
            "start",
        )
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")
        self.running = False

    def cleanup(self) -> None:
        if self.running:
            try:
                self.stop("immediate")
            except (subprocess.SubprocessError, OSError):
                pass
        shutil.rmtree(self.root, ignore_errors=True)


class Server:
    """gunicorn with the shipped gunicorn.conf.py, 2 workers, on a free port."""

    def __init__(self, database_url: str, log: Path, source: Path = PROJECT_DIR):
        self.port, self.log, self.source = free_port(), log, source
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "HOST": LOCALHOST,
            "PORT": str(self.port),
            "WEB_CONCURRENCY": "2",
        }
        self.process: subprocess.Popen | None = None

    def load_data(self) -> None:
        subprocess.run(
            [str(VENV_BIN / "flask"), "--app", "api", "data", "load"],
            cwd=self.source,
            env=self.env,
            check=True,
            capture_output=True,
            timeout=300,
        )

    def start(self) -> None:
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [str(VENV_BIN / "gunicorn"), "api:create_app()"],
                cwd=self.source,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        for _ in range(150):
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{self.log.read_text()[-3000:]}")
            if get(self.port, "/healthz", timeout=2).status == 200:
                return
            time.sleep(0.2)
        raise RuntimeError(f"/healthz never answered 200:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def log_size(self) -> int:
        return self.log.stat().st_size

    def log_since(self, offset: int, end: int | None = None) -> str:
        with self.log.open("rb") as log:
            log.seek(offset)
            data = log.read() if end is None else log.read(max(0, end - offset))
        return data.decode("utf-8", "replace")

    def log_findings(self) -> dict:
        """Exceptions the app logged (chains, innermost first) and worker deaths."""
        text = self.log_since(0)
        chains = Counter(" -> ".join(chain) for _, chain in exception_chains(text))
        errors = logged_errors(text)
        deaths = len(re.findall(r"was sent SIG|exited with code|WORKER TIMEOUT", text))
        return {
            "exceptions": [(abbreviate(chain, 400), n) for chain, n in chains.most_common()],
            "worker_deaths": deaths,
            "errors": errors.most_common(20),
        }


LOG_RECORD = re.compile(r"^(\[\d{4}-\d\d-\d\d|\d{1,3}(\.\d{1,3}){3} - |\{)")


def json_records(text: str) -> list[dict]:
    """The JSON log lines of the text (the app logs JSON lines; gunicorn may too)."""
    records = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                records.append(record)
    return records


def logged_errors(text: str) -> Counter:
    """ERROR and CRITICAL log records, as 'logger: message' with varying values masked."""
    found: Counter[str] = Counter()
    for record in json_records(text):
        if str(record.get("level", "")).upper() in ("ERROR", "CRITICAL"):
            message = (
                str(record.get("message", "")).splitlines()[0] if record.get("message") else ""
            )
            found[f"{record.get('logger', '?')}: {normalise(abbreviate(message, 200))}"] += 1
    for line in text.splitlines():
        match = re.search(r"\[(ERROR|CRITICAL)\] (.*)", line)
        if match and not line.startswith("{"):
            found[f"gunicorn: {normalise(abbreviate(match.group(2), 200))}"] += 1
    return found


def exception_chains(text: str) -> list[tuple[str, list[str]]]:
    """For each logged error: its log record and its exceptions' lines, innermost first.

    Tracebacks come as plain text (gunicorn, gevent) or inside JSON log lines (exc_info).
    """
    chains = []
    for record in json_records(text):
        if record.get("exc_info"):
            found = _plain_chains(str(record["exc_info"]))
            chains += [(str(record.get("message", "")), chain) for _, chain in found]
    plain = [line for line in text.splitlines() if not line.startswith("{")]
    return chains + _plain_chains("\n".join(plain))


def _plain_chains(text: str) -> list[tuple[str, list[str]]]:
    chains, record, chain, in_traceback = [], "", [], False
    for line in text.splitlines():
        if line.startswith("Traceback (most recent call last)"):
            in_traceback = True
        elif in_traceback:
            if line.strip() and line[0] not in " \t":
                chain.append(abbreviate(line.strip(), 160))
                in_traceback = False
        elif LOG_RECORD.match(line):
            if chain:
                chains.append((record, chain))
                chain = []
            record = line
    if chain:
        chains.append((record, chain))
    return chains


def normalise(line: str) -> str:
    """An exception line without the values that vary from request to request."""
    name, _, message = line.partition(": ")
    if message.startswith("{"):  # marshmallow: {'field': [messages naming the value]}
        fields = re.findall(r"[{,] ?'([^']+)': \[", message)
        return f"{name}: {{{', '.join(fields[:3]) if len(fields) <= 3 else 'many fields'}}}"
    message = re.sub(r"'[^']{0,200}'|\"[^\"]{0,200}\"", "'…'", message)
    return f"{name}: {re.sub(r'\d{3,}', 'N', message)[:120]}"


# The passes --------------------------------------------------------------------------------


def in_tiers(probes: list[Probe]) -> list[Probe]:
    """Tier by tier; within a tier, round robin over the operations."""
    rank: Counter[tuple[int, str]] = Counter()
    keyed = []
    for probe in probes:
        rank[probe.tier, probe.group] += 1
        keyed.append(((probe.tier, rank[probe.tier, probe.group]), probe))
    return [probe for _, probe in sorted(keyed, key=lambda item: item[0])]


def run_probes(port: int, probes: list[Probe], tally: Tally, budget: float) -> int:
    """Send every probe from 4 threads; returns how many were skipped for lack of time."""
    deadline = time.monotonic() + budget
    skipped = 0
    lock = threading.Lock()

    def one(probe: Probe) -> None:
        nonlocal skipped
        if time.monotonic() > deadline:
            with lock:
                skipped += 1
            return
        tally.record(probe, exchange(port, probe.data, probe.method))

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(one, probes))
    return skipped


ATTRIBUTED = ("5xx", "hang", "no response", "truncated response", "traceback in body")


def attribute(server: Server, tally: Tally, budget: float = 40, hangs: int = 3) -> int:
    """Send one example of each FAIL class again, alone, and note the exceptions it logged.

    Classes are taken round robin over the parameters, so that a short budget still covers
    each parameter's causes.
    """
    queues: dict[tuple, list[dict]] = defaultdict(list)
    for entry in tally.classes.values():
        if entry["kind"] in ATTRIBUTED and entry["_probe"].data and "cause" not in entry:
            queues[entry["kind"], re.split(r"[=:&]", entry["label"])[0]].append(entry)
    order = [
        q[i]
        for i in range(max(map(len, queues.values()), default=0))
        for q in queues.values()
        if i < len(q)
    ]
    deadline, sent = time.monotonic() + budget, 0
    for entry in order:
        if time.monotonic() > deadline:
            break
        if entry["kind"] == "hang":
            if hangs <= 0:
                continue
            hangs -= 1
        probe = entry["_probe"]
        offset = server.log_size()
        exchange(server.port, probe.data, probe.method)
        sent += 1
        chains = []
        for _ in range(5):
            time.sleep(0.01)
            chains = exception_chains(server.log_since(offset))
            if chains:
                break
        if chains:
            chain = list(dict.fromkeys(max((c for _, c in chains), key=len)))
            entry["exception_chain"] = chain
            root, final = normalise(chain[0]), normalise(chain[-1])
            # Grouped by the first exception's type and the last one (what made it fail).
            entry["cause"] = root if root == final else f"{root.split(':')[0]} -> {final}"
            entry["root_cause"] = root
        elif errors := logged_errors(server.log_since(offset)):  # an error logged, no traceback
            line = errors.most_common(1)[0][0]
            entry["exception_chain"], entry["cause"], entry["root_cause"] = [line], line, line
    return sent


def slow_clients(port: int, tally: Tally) -> dict:
    """50 half-open and 50 idle connections held while /healthz is timed 20 times."""
    with held_connections(port, partial=50, idle=50) as answered_or_closed:
        time.sleep(0.5)
        latencies = []
        for _ in range(20):
            response = get(port, "/healthz", timeout=TIMEOUT)
            latencies.append(response.seconds)
            probe = Probe("slow clients", "slow:/healthz", "GET", "/healthz", b"")
            kinds = problems(probe, response)
            if response.status != 200 and not kinds:
                kinds = ["slow clients: /healthz not 200"]
            if response.seconds > SLOW_LIMIT:
                kinds.append("slow clients: /healthz over 1 s")
            tally.record(probe, response, kinds)
        closed = answered_or_closed()
    return {
        "max_seconds": round(max(latencies), 3),
        "median_seconds": round(sorted(latencies)[len(latencies) // 2], 3),
        "held_connections_closed_by_server": closed,
    }


def quiet_restart(server: Server, pg: PrivatePostgres, urls: list[str], tally: Tally) -> dict:
    """Restart the database while no request runs: the pooled connections all go stale, unseen.

    The first requests after it must not fail on them (the pool pre-pings).
    """
    targets = [url for url in urls if url.startswith(API)][:20]
    for url in targets:  # both workers hold pooled connections now
        get(server.port, url)
    try:
        pg.stop("fast")
        pg.start()
    except subprocess.SubprocessError as error:
        return {"error": repr(error)}
    statuses: Counter[str] = Counter()
    for url in targets:
        response = get(server.port, url)
        statuses[str(response.status or response.error)] += 1
        probe = Probe("db quiet restart", "db-quiet-restart", "GET", url, b"")
        kinds = problems(probe, response)
        if response.status not in (200, 304) and not kinds:
            kinds = [f"db quiet restart: {response.status}"]
        tally.record(probe, response, kinds)
    return dict(statuses)


def db_outage(server: Server, pg: PrivatePostgres, ops: list[Operation], tally: Tally) -> dict:
    """GETs from 4 threads while the database is stopped (fast) and started again."""
    urls = ["/healthz", "/readyz"]
    for op in ops:
        if not op.path.endswith(("openapi.json", "/export")):
            urls.append(_target(op, _query(op, [])))
    urls += [f"{API}/events?page_size=3&q=mobilisation", f"{API}/search?q=putin&page_size=2"]
    port = server.port
    marks: dict[str, float] = {}
    offsets = {"before": server.log_size()}  # where each phase's log starts
    records: list[tuple[float, str, Response]] = []
    lock, done = threading.Lock(), threading.Event()

    def client(index: int) -> None:
        for n in range(20_000):
            if done.is_set():
                return
            url = urls[(index * 7 + n) % len(urls)]
            sent = time.monotonic()
            response = get(port, url)
            with lock:
                records.append((sent, url, response))
            time.sleep(0.01)

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(4)]
    for thread in threads:
        thread.start()
    stop_error = start_error = None
    try:
        time.sleep(2)
        marks["stop_begin"] = time.monotonic()
        offsets["stopping"] = server.log_size()
        try:
            pg.stop("fast")
        except subprocess.SubprocessError as error:
            stop_error = repr(error)
        marks["stop_end"] = time.monotonic()
        offsets["down"] = server.log_size()
        time.sleep(4)
        marks["start_begin"] = time.monotonic()
        offsets["starting"] = server.log_size()
        try:
            pg.start()
        except subprocess.SubprocessError as error:
            start_error = repr(error)
        marks["start_end"] = time.monotonic()
        offsets["after"] = server.log_size()
        time.sleep(4)
    finally:
        done.set()
        for thread in threads:
            thread.join(timeout=TIMEOUT + 5)
    offsets["end"] = server.log_size()
    logged = {}
    names = list(offsets)
    for name, following in zip(names, names[1:], strict=False):
        text = server.log_since(offsets[name], offsets[following])
        chains = Counter(
            " -> ".join(dict.fromkeys(normalise(line) for line in chain))
            for _, chain in exception_chains(text)
        )
        logged[name] = chains.most_common(5) + logged_errors(text).most_common(5)

    def phase(sent: float, done: float) -> str:
        if done < marks["stop_begin"]:
            return "before"
        if sent < marks["stop_begin"]:
            return "stopping"  # in flight when the database went away
        if sent < marks["stop_end"]:
            return "stopping"
        if sent < marks["start_begin"]:
            return "down"
        if sent < marks["start_end"]:
            return "starting"
        return "after"

    statuses: dict[str, Counter] = defaultdict(Counter)
    down_by_url: dict[str, Counter] = defaultdict(Counter)
    first_after = []
    for sent, url, response in sorted(records, key=lambda r: r[0]):
        name = phase(sent, sent + response.seconds)
        shown = response.status if response.status else response.error.split(" (")[0]
        statuses[name][str(shown)] += 1
        probe = Probe(f"db {name}", f"db-{name}", "GET", url, b"")
        kinds = problems(probe, response)
        # Outside "before", a status the phase does not allow replaces the generic "5xx".
        if name in ("stopping", "down", "starting"):
            down_by_url[url][str(shown)] += 1
            kinds = [k for k in kinds if k != "5xx"]
            if response.status and response.status not in (200, 304, 503):
                kinds.insert(0, f"db down: {response.status} instead of 503")
        elif name == "after":
            if len(first_after) < 12:
                first_after.append(f"{url} -> {shown} ({response.seconds:.3f} s)")
            kinds = [k for k in kinds if k != "5xx"]
            if response.status and response.status not in (200, 304):
                kinds.insert(0, f"db back: {response.status} after the restart")
        tally.record(probe, response, kinds)
    final = {}
    for url in ("/readyz", "/healthz"):
        response = get(port, url)
        probe = Probe("db back", f"db-back:{url}", "GET", url, b"")
        kinds = problems(probe, response)
        if response.status != 200 and not kinds:
            kinds = [f"db back: {url} not 200"]
        tally.record(probe, response, kinds)
        final[url] = response.status
    quiet = quiet_restart(server, pg, urls, tally)
    return {
        "quiet_restart": quiet,
        "statuses_by_phase": {k: dict(v) for k, v in statuses.items()},
        "down_statuses_by_url": {k: dict(v) for k, v in down_by_url.items()},
        "first_after_restart": first_after,
        "logged_by_phase": logged,
        "after_restart": final,
        "stop_error": stop_error,
        "start_error": start_error,
        "stop_seconds": round(marks["stop_end"] - marks["stop_begin"], 2),
        "start_seconds": round(marks["start_end"] - marks["start_begin"], 2),
    }


# Writes: hostile bodies and headers, races, slow bodies, the database stopped mid-write -----

MERGE_PATCH = "application/merge-patch+json"
FACT_TYPES = ("decree", "campaign", "penalty", "event")
WRITE_BUDGET = 120.0  # seconds for the hostile write probes (the other write tests are bounded)
SLOW_BODIES = 60  # partial bodies held at once: more than the pools of both workers hold
WRITE_CATEGORIES = (
    "malformed-json",
    "invalid-utf8",
    "nul",
    "surrogate",
    "oversize",
    "wide",
    "wrong-types",
    "huge-numbers",
    "start",
    "ids",
    "content-type",
    "authorization",
    "if-match",
    "edit-summary",
    "methods",
    "setup",
    "race-same-record",
    "race-different-records",
    "race-create",
    "race-contradictions",
    "slow-body",
    "db-outage-writes",
    "integrity",
)


@dataclass
class WriteProbe(Probe):
    category: str = ""
    must_fail: bool = False  # a 2xx is a FAIL: the request is malformed or not allowed
    expect: tuple[int, ...] = ()  # the statuses due; another 4xx is noted (not a FAIL)


@dataclass(frozen=True)
class Raw:
    """Bytes that go into a serialised body as they are (invalid JSON, lone surrogates...)."""

    data: bytes


_RAW_MARK = "\u0001raw{}\u0001"


def encode_body(value: Any) -> bytes:
    """JSON, with every Raw inside (a value or a key) replaced by its bytes."""
    raws: list[bytes] = []

    def mark(raw: Raw) -> str:
        raws.append(raw.data)
        return _RAW_MARK.format(len(raws) - 1)

    def walk(item):
        if isinstance(item, Raw):
            return mark(item)
        if isinstance(item, dict):
            return {(mark(k) if isinstance(k, Raw) else k): walk(v) for k, v in item.items()}
        if isinstance(item, list):
            return [walk(v) for v in item]
        return item

    if isinstance(value, Raw):
        return value.data
    data = json.dumps(walk(value), ensure_ascii=False).encode()
    for index, raw in enumerate(raws):
        data = data.replace(json.dumps(_RAW_MARK.format(index)).encode(), raw, 1)
    return data


@dataclass
class WriteOp:
    method: str  # POST, PUT, PATCH, DELETE
    path: str  # the template, as the spec names it
    media_type: str | None  # of the request body (None: DELETE)
    schema: dict | None  # the body's schema (a $ref)

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}"


@dataclass
class Collection:
    name: str  # "events"
    record_type: str  # "event"
    list_url: str
    ops: dict[str, WriteOp] = field(default_factory=dict)
    victim: str = ""  # hostile PUT and PATCH bodies go to this record
    victim_body: dict = field(default_factory=dict)  # as GET first showed it
    post_body: dict = field(default_factory=dict)  # a body that POST accepts
    deletable: str = ""  # hostile DELETEs go to this record, made for them
    spares: list[str] = field(default_factory=list)  # records made for the races
    others: list[str] = field(default_factory=list)  # records that no probe writes to

    def url(self, record_id: str) -> str:
        return f"{self.list_url}/{record_id}"

    @property
    def is_fact(self) -> bool:
        return self.record_type in FACT_TYPES


class WriteStats:
    """Requests, FAILs and statuses by category; inputs that a write accepted."""

    def __init__(self):
        self.lock = threading.Lock()
        self.sent: Counter[str] = Counter()
        self.fails: Counter[str] = Counter()
        self.statuses: dict[str, Counter] = defaultdict(Counter)
        self.accepted: dict[str, list[str]] = defaultdict(list)  # category -> "op label -> 2xx"
        self.slow: list[tuple[float, str]] = []  # (seconds, "op label") over 2 s
        self.unexpected: dict[str, Counter] = defaultdict(Counter)  # category -> "label: got"
        self.seconds: Counter[str] = Counter()  # summed over the category's requests
        self.label_seconds: Counter[str] = Counter()

    def record(self, tally: Tally, probe: Probe, response: Response, kinds: list[str]) -> None:
        category = getattr(probe, "category", "") or probe.group
        tally.record(probe, response, kinds)
        if response.status == 204 and response.content_type:
            tally.note(
                f"a 204 No Content carries Content-Type: {response.content_type}",
                f"{probe.method} {abbreviate(probe.target, 100)}",
            )
        shown = str(response.status) if response.status else response.error.split(" (")[0]
        with self.lock:
            self.seconds[category] += response.seconds
            self.label_seconds[f"{probe.group} {probe.label}"] += response.seconds
            self.sent[category] += 1
            self.statuses[category][shown] += 1
            if kinds:
                self.fails[category] += 1
            if response.status and 200 <= response.status < 300 and probe.method != "OPTIONS":
                entry = f"{probe.group} {probe.label} -> {response.status}"
                if len(self.accepted[category]) < 400:
                    self.accepted[category].append(entry)
            expect = getattr(probe, "expect", ())
            if expect and response.status and response.status not in expect:
                key = f"{probe.label} -> {response.status} (expected {'/'.join(map(str, expect))})"
                self.unexpected[category][key] += 1
            if response.seconds > 2:
                self.slow.append((round(response.seconds, 2), f"{probe.group} {probe.label}"))


def write_problems(probe: Probe, response: Response) -> list[str]:
    """problems(), and what a write's answer must be: a 2xx for a malformed request is a FAIL,
    a 201 names its record (Location), and a 200 or 201 is the record as JSON with its ETag."""
    kinds = problems(probe, response)
    status = response.status
    if status == 204 and "HTML 200" in kinds and not response.body:
        kinds.remove("HTML 200")  # no page: a header only (noted in write_section)
    if not status or not 200 <= status < 300 or probe.method in ("OPTIONS", "HEAD", "TRACE"):
        return kinds
    if getattr(probe, "must_fail", False):
        kinds.append("write accepted where an error is due")
    if status == 201 and not response.headers.get("location"):
        kinds.append("201 without Location")
    if status in (200, 201) and probe.method in ("POST", "PUT", "PATCH"):
        try:
            json.loads(response.decoded_body())
        except ValueError:
            kinds.append("2xx write without a JSON body")
        if not response.headers.get("etag"):
            kinds.append("2xx write without an ETag")
    return kinds


class Writer:
    """Write requests on raw sockets, with a token."""

    def __init__(self, port: int, token: str):
        self.port, self.token = port, token

    def data(
        self,
        method: str,
        target: str,
        body: Any = None,
        *,
        media_type: str | None = None,
        auth: str | bytes | None = "default",
        if_match: str | bytes | None = None,
        summary: str | bytes | None = None,
        headers=(),
    ) -> bytes:
        sent: list[tuple[str, str | bytes]] = []
        if auth == "default":
            sent.append(("Authorization", f"Bearer {self.token}"))
        elif auth is not None:
            sent.append(("Authorization", auth))
        if media_type is not None:
            sent.append(("Content-Type", media_type))
        if if_match is not None:
            sent.append(("If-Match", if_match))
        if summary is not None:
            sent.append(("Edit-Summary", summary))
        sent += list(headers)
        data = body if isinstance(body, bytes) else b"" if body is None else encode_body(body)
        names = {name.lower() for name, _ in sent}
        if not data and method in ("POST", "PUT", "PATCH") and "content-length" not in names:
            sent.append(("Content-Length", "0"))
        return request_bytes(method, target, self.port, sent, data)

    def send(self, method: str, target: str, body: Any = None, **kw) -> Response:
        return exchange(self.port, self.data(method, target, body, **kw), method)


class Store:
    """Read-only queries on the served database, for the integrity checks (no pool: the
    database may be stopped between two queries)."""

    def __init__(self, url: str):
        from sqlalchemy import create_engine
        from sqlalchemy.pool import NullPool

        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                url = "postgresql+psycopg://" + url[len(prefix) :]
        self.engine = create_engine(url, poolclass=NullPool)

    def rows(self, sql: str, **params) -> list[tuple]:
        from sqlalchemy import text

        with self.engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(sql), params)]

    def dispose(self) -> None:
        self.engine.dispose()


def _as_json(value):
    return json.loads(value) if isinstance(value, str | bytes) else value


def create_token(server: Server, name: str, role: str) -> str:
    """`flask tokens create`: the token is alone on the last line of its output."""
    done = subprocess.run(
        [
            str(VENV_BIN / "flask"),
            "--app",
            "api",
            "tokens",
            "create",
            "--name",
            name,
            "--role",
            role,
        ],
        cwd=server.source,
        env=server.env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    return done.stdout.decode().strip().splitlines()[-1].strip()


def revoke_token(server: Server, name: str) -> None:
    subprocess.run(
        [str(VENV_BIN / "flask"), "--app", "api", "tokens", "revoke", name],
        cwd=server.source,
        env=server.env,
        check=True,
        capture_output=True,
        timeout=120,
    )


def write_collections(spec: dict) -> list[Collection]:
    """The write operations of the served spec, by collection."""
    found: dict[str, Collection] = {}
    for path, item in sorted(spec["paths"].items()):
        for method in ("post", "put", "patch", "delete"):
            if method not in item:
                continue
            operation = item[method]
            content = operation.get("requestBody", {}).get("content", {})
            media_type, body = next(iter(content.items()), (None, {}))
            list_url = path.split("/{")[0]
            singular = re.sub(r"^(create|replace|update|delete)", "", operation["operationId"])
            collection = found.setdefault(
                list_url,
                Collection(
                    list_url.rsplit("/", 1)[1], singular[0].lower() + singular[1:], list_url
                ),
            )
            collection.ops[method.upper()] = WriteOp(
                method.upper(), path, media_type, body.get("schema")
            )
    return list(found.values())


# Fixtures: the records the probes write to ---------------------------------------------------


class Passages:
    """Windows of the articles' texts that no record cites: each clone of a fact cites one
    more (given with `start`), so that no two records cite exactly the same passages."""

    def __init__(self, texts: dict[str, str]):
        self.texts, self.next = texts, Counter()

    def take(self, article_id: str) -> dict:
        text = self.texts[article_id]
        length = 48
        start = (101 + 61 * self.next[article_id]) % max(1, len(text) - length)
        self.next[article_id] += 1
        return {"article_id": article_id, "quote": text[start : start + length], "start": start}


def _richness(record: dict) -> int:
    return sum(1 for value in record.values() if value not in (None, [], "", {}))


def _clone(record: dict, passages: Passages, title: str, record_id: str | None) -> dict:
    body = json.loads(json.dumps(record))
    for key in ("url", "type", "disputed", "created_at", "updated_at"):
        body.pop(key, None)
    body["id"] = record_id
    body["title"] = title[:300]
    body["contradicts"] = []
    body["sources"] = [
        {k: v for k, v in c.items() if k in ("article_id", "quote", "start", "end")}
        for c in body["sources"]
    ] + [passages.take(body["sources"][0]["article_id"])]
    return body


def prepare_collections(
    port: int, writer: Writer, cols: list[Collection], tally: Tally, stats: WriteStats
) -> None:
    """Pick a victim in each collection and create the records the probes and races need."""
    articles = json.loads(get(port, f"{API}/articles?page_size=500").body)
    texts = {}
    for article in articles:
        detail = json.loads(get(port, f"{API}/articles/{article['id']}").body)
        texts[article["id"]] = detail["text"]
    passages = Passages(texts)

    def setup(method: str, target: str, body: Any, label: str) -> Response:
        data = writer.data(method, target, body, media_type="application/json")
        response = exchange(port, data, method)
        probe = WriteProbe("setup", f"setup:{label}", method, target, data, category="setup")
        kinds = write_problems(probe, response)
        if response.status not in (200, 201) and not kinds:
            kinds = [f"setup: {method} answered {response.status}"]
        stats.record(tally, probe, response, kinds)
        return response

    for col in cols:
        listing = json.loads(get(port, f"{col.list_url}?page_size=500").body)
        victim = max(listing, key=_richness)
        col.victim = victim["id"]
        col.victim_body = json.loads(get(port, col.url(col.victim)).body)
        col.others = [r["id"] for r in listing if r["id"] != col.victim]
        spares = 8 if col.record_type == "event" else 1  # events: races, contradictions, locks
        if col.is_fact:
            col.post_body = _clone(col.victim_body, passages, "Hostile probe base", None)
            made = []
            for n in range(1 + spares):
                record_id = f"hostile-{col.record_type}-{n}"
                body = _clone(col.victim_body, passages, f"Hostile clone {n}", record_id)
                if setup("POST", col.list_url, body, f"{col.name}-{n}").status == 201:
                    made.append(record_id)
        elif col.record_type == "actor":
            kind = col.victim_body["kind"]
            col.post_body = {"name": "Hostile actor", "kind": kind, "variants": []}
            made = []
            for n in range(1 + spares):
                record_id = f"hostile-actor-{n}"
                body = {"id": record_id, "name": f"Hostile actor {n}", "kind": kind}
                if setup("POST", col.list_url, body, f"{col.name}-{n}").status == 201:
                    made.append(record_id)
        else:
            published = {
                "text": None,
                "value": None,
                "precision": "unknown",
                "inferred": False,
                "inference": None,
            }
            col.post_body = {
                "title": "Hostile article",
                "language": "en",
                "published": published,
                "text": "A hostile article's text.",
            }
            made = []
            for n in range(1 + spares):
                record_id = f"hostile-article-{n}"
                body = {**col.post_body, "id": record_id, "title": f"Hostile article {n}"}
                body["text"] = f"Hostile article number {n}."
                if setup("POST", col.list_url, body, f"{col.name}-{n}").status == 201:
                    made.append(record_id)
        col.deletable = made[0] if made else "hostile-missing"
        col.spares = made[1:]


# Hostile values ------------------------------------------------------------------------------


def _resolve_all(spec: dict, node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        node = _resolve(spec, node)
    return node


def json_types(spec: dict, prop: dict) -> set[str]:
    """The JSON types a schema allows ('integer' implies 'number' is not allowed)."""
    prop = _resolve_all(spec, prop)
    types: set[str] = set()
    for option in prop.get("anyOf", []) + prop.get("oneOf", []):
        types |= json_types(spec, option)
    declared = prop.get("type")
    if isinstance(declared, list):
        types |= set(declared)
    elif declared:
        types.add(declared)
    if not declared and "properties" in prop:
        types.add("object")
    return types or {"any"}


def object_schema(spec: dict, prop: dict) -> dict | None:
    prop = _resolve_all(spec, prop)
    if "properties" in prop:
        return prop
    for option in prop.get("anyOf", []) + prop.get("oneOf", []):
        found = object_schema(spec, option)
        if found:
            return found
    return None


def body_fields(spec: dict, schema: dict, prefix: tuple = (), depth: int = 0) -> list:
    """(path, schema) of every field a client writes, nested objects and first items too."""
    out = []
    schema = _resolve_all(spec, schema)
    for name, prop in schema.get("properties", {}).items():
        resolved = _resolve_all(spec, prop)
        if resolved.get("readOnly"):
            continue
        path = (*prefix, name)
        out.append((path, resolved))
        if depth >= 2:
            continue
        inner = object_schema(spec, resolved)
        if inner:
            out += body_fields(spec, inner, path, depth + 1)
        items = resolved.get("items")
        if items and object_schema(spec, items):
            out += body_fields(spec, object_schema(spec, items), (*path, 0), depth + 1)
    return out


def skeleton(spec: dict, schema: dict) -> Any:
    """A plausible value of a schema, from its examples (for a nested field to live in)."""
    schema = _resolve_all(spec, schema)
    inner = object_schema(spec, schema)
    if inner:
        return {
            name: skeleton(spec, prop)
            for name, prop in inner.get("properties", {}).items()
            if not _resolve_all(spec, prop).get("readOnly")
        }
    if "example" in schema and schema["example"] not in (None, []):
        return schema["example"]
    if schema.get("enum"):
        return schema["enum"][0]
    types = json_types(spec, schema)
    if "array" in types:
        items = schema.get("items")
        return [skeleton(spec, items)] if items else []
    for name, value in (("string", "x"), ("integer", 1), ("number", 1), ("boolean", False)):
        if name in types:
            return value
    return None


def with_value(spec: dict, base: Any, schema: dict, path: tuple, value: Any) -> Any:
    """A copy of `base` with `value` at `path`, nested objects made from the schema if absent."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    schema = _resolve_all(spec, schema)
    if isinstance(head, int):
        items = schema.get("items", {})
        current = list(base) if isinstance(base, list) and base else [skeleton(spec, items)]
        current[0] = with_value(spec, current[0], items, rest, value)
        return current
    inner = object_schema(spec, schema) or {}
    prop = inner.get("properties", {}).get(head, {})
    current = dict(base) if isinstance(base, dict) else skeleton(spec, inner) or {}
    existing = current.get(head)
    if rest and (existing is None or existing == []):
        existing = skeleton(spec, prop)
    current[head] = with_value(spec, existing, prop, rest, value)
    return current


def path_text(path: tuple) -> str:
    return "".join(
        f"[{p}]" if isinstance(p, int) else (f".{p}" if i else p) for i, p in enumerate(path)
    )


# (label, value, the JSON types it is of)
WRONG_VALUES = [
    ("null", None, {"null"}),
    ("true", True, {"boolean"}),
    ("zero", 0, {"integer", "number"}),
    ("float", 1.5, {"number"}),
    ("string", "x", {"string"}),
    ("numeric-string", "5", {"string"}),
    ("bool-string", "true", {"string"}),
    ("array", [None], {"array"}),
    ("object", {"a": 1}, {"object"}),
]
FIELD_RULES = ("enum", "pattern", "minLength", "maxLength", "minimum", "maximum", "minItems")
NESTED_STRING_EDGES = ("empty", "10k", "escaped-nul", "lone-high")  # in nested objects
# Edge values of a field's own type: (category, label, value)
STRING_EDGES = [
    ("wrong-types", "empty", ""),
    ("wrong-types", "spaces", "   "),
    ("oversize", "10k", "A" * 10240),
    ("nul", "escaped-nul", "a\u0000b"),
    ("nul", "raw-nul", Raw(b'"a\x00b"')),
    ("surrogate", "lone-high", Raw(b'"\\ud800"')),
    ("surrogate", "lone-low", Raw(b'"\\udc00"')),
    ("surrogate", "reversed-pair", Raw(b'"\\udc00\\ud800"')),
    ("surrogate", "valid-pair", Raw(b'"\\ud83d\\udca5"')),
    ("invalid-utf8", "ff", Raw(b'"\xff"')),
    ("invalid-utf8", "cesu-surrogate", Raw(b'"\xed\xa0\x80"')),
    ("wrong-types", "control-chars", "\u0001\u001b[31m\u007f"),
    ("wrong-types", "rtl-override", "\u202eabc"),
]
NUMBER_EDGES = [
    ("1e400", Raw(b"1e400")),
    ("-1e400", Raw(b"-1e400")),
    ("10**40", Raw(str(10**40).encode())),
    ("-10**40", Raw(str(-(10**40)).encode())),
    ("2**64", Raw(str(2**64).encode())),
    ("2**63", Raw(str(2**63).encode())),
    ("2**31", Raw(str(2**31).encode())),
    ("1e308", Raw(b"1e308")),
    ("-1e308", Raw(b"-1e308")),
    ("1e20", Raw(b"1e20")),
    ("1e-400", Raw(b"1e-400")),
    ("-1", -1),
    ("-0", Raw(b"-0")),
    ("0", 0),
    ("1.5", 1.5),
    ("1.0", Raw(b"1.0")),
    ("4.9e-324", Raw(b"4.9e-324")),
    ("NaN", Raw(b"NaN")),
]
ID_VALUES = [
    ("upper", "UPPER-CASE"),
    ("underscore", "a_b"),
    ("leading-hyphen", "-a"),
    ("trailing-hyphen", "a-"),
    ("double-hyphen", "a--b"),
    ("empty", ""),
    ("space", "a b"),
    ("slash", "a/b"),
    ("traversal", "../x"),
    ("unicode", "мобилизация"),
    ("101-chars", "a" * 101),
    ("10k-chars", "a" * 10240),
    ("100-chars", "b" * 100),
    ("number", 5),
    ("list", ["a"]),
    ("nul", "a\u0000"),
    ("existing", None),  # filled in: the victim's id
]
URL_IDS = [
    ("101-chars", "a" * 101),
    ("5000-chars", "a" * 5000),
    ("100-chars-unknown", "c" * 100),
    ("upper", "UPPER"),
    ("nul", "%00"),
    ("space", "a%20b"),
    ("dotdot", ".."),
    ("encoded-dotdot", "%2E%2E"),
    ("double-hyphen", "a--b"),
    ("unicode", quote("мобилизация")),
    ("invalid-utf8", "%FF"),
    ("trailing-slash", "{victim}/"),
    ("revisions-suffix", "{victim}/revisions"),
]
MALFORMED = [  # (label, body, must_fail)
    ("empty", b"", True),
    ("whitespace", b"   \r\n", True),
    ("open-brace", b"{", True),
    ("unterminated-string", b'{"title": "abc', True),
    ("trailing-comma", b'{"title": "a",}', True),
    ("single-quotes", b"{'title': 'a'}", True),
    ("unquoted-key", b"{title: 1}", True),
    ("NaN", b'{"title": NaN}', True),
    ("Infinity", b'{"title": Infinity}', True),
    ("comment", b'{"title": "a" /* x */}', True),
    ("trailing-garbage", b"{}x", True),
    ("two-documents", b"{}{}", True),
    ("bom", b"\xef\xbb\xbf{}", True),
    ("utf16", "{}".encode("utf-16"), True),
    ("hex-number", b'{"title": 0x10}', True),
    ("leading-zero", b'{"title": 01}', True),
    ("raw-control-char", b'{"title": "a\x01b"}', True),
    ("raw-newline", b'{"title": "a\nb"}', True),
    ("bad-escape", b'{"title": "\\x41"}', True),
    ("short-unicode-escape", b'{"title": "\\u12"}', True),
    ("form-encoded", b"title=x&kind=y", True),
    ("xml", b"<record/>", True),
    ("binary", bytes(range(256)), True),
    ("unbalanced-50", b"[" * 50, True),
    ("null", b"null", False),
    ("string", b'"x"', False),
    ("number", b"1", False),
    ("array", b"[]", False),
    ("array-of-object", b"[{}]", False),
    ("true", b"true", False),
    ("empty-object", b"{}", False),
    ("unknown-field", b'{"zzz": 1}', False),
    ("duplicate-keys", b'{"zzz": 1, "zzz": 2}', False),
]
INVALID_UTF8 = [  # raw bytes of a string value
    ("ff", b'"\xff"'),
    ("c3-28", b'"\xc3\x28"'),
    ("overlong-slash", b'"\xc0\xaf"'),
    ("overlong-3", b'"\xe0\x80\xaf"'),
    ("cesu-surrogate", b'"\xed\xa0\x80"'),
    ("truncated-sequence", b'"\xe2\x82"'),
    ("latin1", '"Zé"'.encode("latin-1")),
    ("above-10ffff", b'"\xf4\x90\x80\x80"'),
]
NUL_BODIES = [  # (label, body maker: base -> body, must_fail)
    ("raw-nul-in-string", lambda b: {**b, "title": Raw(b'"a\x00b"')}, True),
    ("escaped-nul-in-title", lambda b: {**b, "title": "a\u0000b"}, True),
    ("escaped-nul-in-key", lambda b: {**b, "a\u0000b": 1}, True),
    ("nul-only", lambda b: Raw(b"\x00"), True),
    ("nul-after-body", lambda b: Raw(encode_body(b) + b"\x00"), True),
    ("nul-before-body", lambda b: Raw(b"\x00" + encode_body(b)), True),
    ("escaped-nul-only", lambda b: {**b, "title": "\u0000"}, True),
]
SURROGATE_BODIES = [
    ("lone-high-title", lambda b: {**b, "title": Raw(b'"\\ud800"')}, True),
    ("lone-high-key", lambda b: {**b, Raw(b'"\\ud800"'): 1}, True),
    ("lone-low-title", lambda b: {**b, "title": Raw(b'"x\\udfff"')}, True),
    ("high-then-ascii", lambda b: {**b, "title": Raw(b'"\\ud800A"')}, True),
    ("two-highs", lambda b: {**b, "title": Raw(b'"\\ud800\\ud800"')}, True),
    ("raw-surrogate-bytes", lambda b: {**b, "title": Raw(b'"\xed\xb0\x80"')}, True),
    ("valid-pair", lambda b: {**b, "title": Raw(b'"Hostile \\ud83d\\udca5"')}, False),
]
CONTENT_TYPES = [  # (label, Content-Type header or None, body transform, must_fail)
    ("missing", None, None, True),
    ("text-plain", "text/plain", None, True),
    ("multipart", "multipart/form-data; boundary=x", "multipart", True),
    ("form", "application/x-www-form-urlencoded", "form", True),
    ("latin1-charset-latin1-body", "application/json;charset=latin-1", "latin1", True),
    ("latin1-charset-ascii-body", "application/json; charset=latin-1", None, False),
    ("utf16-charset-utf16-body", "application/json; charset=utf-16", "utf16", True),
    ("upper-case", "APPLICATION/JSON", None, False),
    ("two-types", "application/json, text/plain", None, False),
    ("json-patch", "application/json-patch+json", None, True),
    ("problem-json", "application/problem+json", None, True),
    ("wildcard", "*/*", None, True),
    ("no-subtype", "application/", None, True),
    ("semicolons", "application/json;;;", None, False),
    ("4k-parameter", "application/json; x=" + "a" * 4000, None, False),
    ("non-ascii", b"application/json; x=\xff\xfe", None, False),
    ("empty", "", None, True),
    ("twice", "twice", None, False),
]
AUTHS = [  # (label, Authorization value or None; "{t}" is the token, must_fail)
    ("missing", None, True),
    ("bearer-alone", "Bearer", True),
    ("bearer-space", "Bearer ", True),
    ("bearer-tab-token", "Bearer\t{t}", True),
    ("basic", "Basic dXNlcjpwYXNz", True),
    ("token-scheme", "Token {t}", True),
    ("token-alone", "{t}", True),
    ("token-plus-char", "Bearer {t}x", True),
    ("token-minus-char", "Bearer {t-}", True),
    ("prefix-only", "Bearer cft_", True),
    ("10k-token", "Bearer " + "a" * 10240, True),
    ("8k-token", "Bearer " + "a" * 8000, True),
    ("non-ascii", b"Bearer \xff\xfe\x80", True),
    ("utf8-token", "Bearer мобилизация".encode(), True),
    ("del-char", "Bearer \x7f", True),
    ("two-schemes", "Bearer {t}, Basic dXNlcjpwYXNz", True),
    ("revoked", "Bearer {revoked}", True),
    ("curator", "Bearer {curator}", False),
    ("lower-case-scheme", "bearer {t}", False),
    ("upper-case-scheme", "BEARER {t}", False),
    ("two-spaces", "Bearer  {t}", False),
    ("trailing-space", "Bearer {t} ", False),
    ("twice-good-then-bad", "twice", True),
]
IF_MATCHES = [  # (label, If-Match value or None; "{e}" is the current ETag, must_fail)
    ("missing", None, True),
    ("empty", "", True),
    ("weak-real", "W/{e}", True),
    ("w-slash-alone", "W/", True),
    ("star-star", "**", True),
    ("quoted-star", '"*"', True),
    ("unquoted-real", "{e-bare}", False),
    ("quote-alone", '"', True),
    ("empty-quoted", '""', True),
    ("weak-empty", 'W/""', True),
    ("commas", ", , ,", True),
    ("10k", '"' + "a" * 10240 + '"', True),
    ("8k", '"' + "a" * 8000 + '"', True),
    ("non-ascii", b'"\xe9t\xe9"', True),
    ("garbage-list", '"x", W/"y"', True),
    ("star", "*", False),
    ("real", "{e}", False),
    ("real-gzip-suffix", '"{e-bare}:gzip"', False),
    ("list-with-real", '"x", {e}', False),
    ("star-and-tag", '*, "x"', False),
]
SUMMARIES = [  # (label, Edit-Summary value, must_fail)
    ("control-char", "a\x01b", True),
    ("del", "a\x7fb", True),
    ("tab", "a\tb", True),
    ("escape-sequence", "\x1b[31mred", True),
    ("invalid-utf8-ff", b"\xff\xfe", True),
    ("invalid-utf8-c328", b"\xc3\x28", True),
    ("cesu-surrogate", b"\xed\xa0\x80", True),
    ("overlong", b"\xc0\xaf", True),
    ("latin1", b"caf\xe9", True),
    ("nul", b"a\x00b", True),
    ("10k", "a" * 10240, True),
    ("501-chars", "a" * 501, True),
    ("501-multibyte", ("é" * 501).encode(), True),
    ("obs-fold", b"a\r\n b", True),
    ("500-chars", "a" * 500, False),
    ("500-multibyte", ("é" * 500).encode(), False),
    ("spaces-only", "   ", False),
    ("empty", "", False),
    ("line-separator", "a\u2028b".encode(), False),
    ("c1-control-nel", "a\u0085b".encode(), False),
    ("bidi-override", "\u202eevil".encode(), False),
]


# Building the probes ------------------------------------------------------------------------


HEAVY = re.compile(r"^(wide:|oversize:(summary-900k|text-900k|description-900k))")


def _probe_adder(probes: list, writer: Writer, op: WriteOp, target: str, if_match: str | None):
    """add(category, label, body, ...): a probe of one write operation."""

    def add(category, label, body=None, *, must_fail=False, tier=0, url=None, expect=(), **kw):
        kw.setdefault("media_type", op.media_type)
        kw.setdefault("if_match", if_match)
        where = url or target
        data = writer.data(op.method, where, body, **kw)
        name = f"{category}:{label}"
        probes.append(
            WriteProbe(
                op.name,
                name,
                op.method,
                where,
                data,
                2 if HEAVY.match(name) else tier,
                category=category,
                must_fail=must_fail,
                expect=expect,
            )
        )

    return add


def write_probes(
    spec: dict, cols: list[Collection], writer: Writer, tokens: dict[str, str], port: int
) -> list[WriteProbe]:
    probes: list[WriteProbe] = []
    seen: Counter = Counter()
    victim_tags = {}
    for col in cols:
        response = get(port, col.url(col.victim))
        victim_tags[col.name] = response.headers.get("etag", '"none"')

    for col in cols:
        tag = victim_tags[col.name]
        for method, op in sorted(col.ops.items()):
            detail = method != "POST"
            target = col.url(col.deletable if method == "DELETE" else col.victim)
            if not detail:
                target = col.list_url
            add = _probe_adder(probes, writer, op, target, "*" if detail else None)

            # The body a header probe carries: one that fails validation cheaply (422: the
            # headers were accepted), or, for a PATCH that should pass, one that changes
            # nothing (200). Hostile bodies start from `full`, a body the write accepts.
            label_field = "name" if col.record_type == "actor" else "title"
            cheap = {"POST": {}, "PUT": {}, "PATCH": {label_field: ""}, "DELETE": None}[method]
            noop = {} if method != "DELETE" else None

            def quiet(must_fail: bool, cheap=cheap, noop=noop):
                return cheap if must_fail else noop

            full = {"POST": col.post_body, "PUT": col.victim_body, "PATCH": {}}.get(method)

            # Headers, on every write operation.
            for label, value, must_fail in AUTHS:
                if method == "DELETE" and not must_fail:
                    continue  # it would delete the record the other probes need
                headers = []
                if value == "twice":
                    auth = f"Bearer {writer.token}"
                    headers = [("Authorization", "Bearer garbage")]
                elif isinstance(value, str):
                    auth = (
                        value.replace("{t-}", writer.token[:-1])
                        .replace("{t}", writer.token)
                        .replace("{revoked}", tokens["revoked"])
                        .replace("{curator}", tokens["curator"])
                    )
                else:
                    auth = value
                expect = ((431,) if label == "10k-token" else (401, 400)) if must_fail else ()
                add(
                    "authorization",
                    label,
                    quiet(must_fail),
                    auth=auth,
                    must_fail=must_fail,
                    headers=headers,
                    expect=expect,
                )
            if method == "DELETE" and col.record_type in ("actor", "article"):
                add(
                    "authorization",
                    "curator-deletes-source",
                    None,
                    auth=f"Bearer {tokens['curator']}",
                    must_fail=True,
                    expect=(403,),
                )
            for label, value, must_fail in SUMMARIES:
                if method == "DELETE" and not must_fail:
                    continue
                expect = ((431,) if label == "10k" else (400,)) if must_fail else ()
                add(
                    "edit-summary",
                    label,
                    quiet(must_fail),
                    summary=value,
                    must_fail=must_fail,
                    expect=expect,
                )
            if detail:
                for label, value, must_fail in IF_MATCHES:
                    if method == "DELETE" and not must_fail:
                        continue
                    if isinstance(value, str):
                        value = value.replace("{e-bare}", tag.strip('"')).replace("{e}", tag)
                    if label == "unquoted-real":
                        expect = (412,)  # RFC 9110: an entity-tag is quoted
                    elif not must_fail:
                        expect = ()
                    elif label in ("missing", "empty", "quote-alone", "commas"):
                        expect = (428, 412)
                    else:
                        expect = (431,) if label == "10k" else (412,)
                    add(
                        "if-match",
                        label,
                        quiet(must_fail),
                        if_match=value,
                        must_fail=must_fail,
                        expect=expect,
                    )
            else:
                add("if-match", "garbage-on-post", cheap, if_match="garbage")
                add("if-match", "10k-on-post", cheap, if_match='"' + "a" * 10240 + '"')
            for label, raw_id in URL_IDS:
                if not detail:
                    continue
                own = col.deletable if method == "DELETE" else col.victim
                where = col.list_url + "/" + raw_id.replace("{victim}", own)
                must_fail = not raw_id.startswith("{victim}")
                expect = (404,) if must_fail else ()
                add("ids", f"url-{label}", cheap, url=where, must_fail=must_fail, expect=expect)
            if method == "DELETE":
                continue

            # Bodies, on POST, PUT and PATCH.
            for label, body, must_fail in MALFORMED:
                add("malformed-json", label, body, must_fail=must_fail)
            for label, raw in INVALID_UTF8:
                add("invalid-utf8", f"title-{label}", {**full, "title": Raw(raw)}, must_fail=True)
                key = {Raw(raw): 1}
                add("invalid-utf8", f"key-{label}", key, must_fail=True)
            add("invalid-utf8", "after-body", Raw(encode_body(full) + b"\xff"), must_fail=True)
            for label, make, must_fail in NUL_BODIES:
                add("nul", label, make(full), must_fail=must_fail)
            for label, make, must_fail in SURROGATE_BODIES:
                add("surrogate", label, make(full), must_fail=must_fail)
            oversize(add, full, col, method)
            wide(add, full, col, method)
            for label, ctype, transform, must_fail in CONTENT_TYPES:
                body, headers = quiet(must_fail), []
                if method == "PATCH" and ctype and "json" in str(ctype) and label != "json-patch":
                    must_fail = True  # PATCH takes application/merge-patch+json only
                if transform == "multipart":
                    body = (
                        b'--x\r\nContent-Disposition: form-data; name="title"\r\n\r\na\r\n--x--\r\n'
                    )
                elif transform == "form":
                    body = b"title=a&kind=b"
                elif transform == "latin1":
                    body = '{"title": "Zé"}'.encode("latin-1")
                elif transform == "utf16":
                    body = encode_body(cheap).decode().encode("utf-16")
                if ctype == "twice":
                    ctype, headers = op.media_type, [("Content-Type", "text/plain")]
                expect = (
                    ((400, 415) if transform in ("latin1", "utf16") else (415,))
                    if must_fail
                    else ()
                )
                add(
                    "content-type",
                    label,
                    body,
                    media_type=ctype,
                    must_fail=must_fail,
                    headers=headers,
                    expect=expect,
                )
            other = "application/json" if method == "PATCH" else MERGE_PATCH
            add(
                "content-type",
                f"other-write-type:{other}",
                cheap,
                media_type=other,
                must_fail=True,
                expect=(415,),
            )
            add(
                "content-type",
                f"{op.media_type};charset=utf-8",
                noop,
                media_type=f"{op.media_type}; charset=utf-8",
            )

            # Each field of the body: wrong types and edge values.
            for path, prop in body_fields(spec, op.schema):
                types = json_types(spec, prop)
                # The same field in another collection or method: what it accepts, not
                # how it is described (descriptions and examples differ).
                rules = {k: prop.get(k) for k in FIELD_RULES if k in prop}
                signature = (path_text(path), tuple(sorted(types)), json.dumps(rules))
                seen[signature] += 1
                reduced = seen[signature] > 1
                values: list[tuple[str, str, Any]] = []
                for label, value, value_types in WRONG_VALUES:
                    if not value_types & types:
                        values.append(("wrong-types", label, value))
                if "string" in types:
                    nested = len(path) > 1
                    values += [e for e in STRING_EDGES if not nested or e[1] in NESTED_STRING_EDGES]
                    if prop.get("enum"):
                        first = prop["enum"][0]
                        values += [
                            ("wrong-types", "enum-upper", first.upper()),
                            ("wrong-types", "enum-padded", f" {first} "),
                            ("wrong-types", "enum-unknown", "zzz"),
                        ]
                if types & {"integer", "number"}:
                    category = "start" if path[-1] in ("start", "end") else "huge-numbers"
                    values += [(category, label, value) for label, value in NUMBER_EDGES]
                    if types & {"integer"}:
                        values.append((category, "numeric-string", "5"))
                if "array" in types:
                    values += [("wrong-types", "array-of-arrays", [[]])]
                if path == ("id",):
                    if method != "POST":
                        values.append(("ids", "other-than-url", col.others[0]))
                    else:
                        for label, value in ID_VALUES:
                            values.append(
                                (
                                    "ids",
                                    f"body-{label}",
                                    col.victim if label == "existing" else value,
                                )
                            )
                if reduced:  # one wrong type, and for a number the one that breaks encoders
                    values = values[:1] + [v for v in values if v[1] in ("1e20", "1e400")]
                name = path_text(path)
                for category, label, value in values:
                    if method == "PATCH":
                        top = path[0]
                        prop0 = (object_schema(spec, op.schema) or {}).get("properties", {})
                        base = col.victim_body.get(top)
                        body = {top: with_value(spec, base, prop0.get(top, {}), path[1:], value)}
                    else:
                        body = with_value(spec, full, op.schema, path, value)
                    must = category in ("invalid-utf8", "surrogate") and label != "valid-pair"
                    must = must or (category == "nul" and label != "valid-pair")
                    add(category, f"{name}={label}", body, must_fail=must, tier=1 if reduced else 0)
    methods = method_probes(cols, writer, port)
    return probes + methods


def oversize(add, full: dict, col: Collection, method: str) -> None:
    limit = 1024 * 1024
    add("oversize", "title-10k", {**full, "title": "A" * 10240}, must_fail=True)
    add("oversize", "summary-10k", {**full, "summary": "S" * 10240})
    padded = encode_body(full)
    add("oversize", "body-2MiB", Raw(padded + b" " * (2 * limit)), must_fail=True, expect=(413,))
    add(
        "oversize",
        "body-1MiB-plus-1",
        Raw(padded + b" " * (limit + 1 - len(padded))),
        must_fail=True,
        expect=(413,),
    )
    add("oversize", "body-1MiB-exactly", Raw(padded + b" " * (limit - len(padded))))
    add(
        "oversize",
        "content-length-10GB",
        Raw(padded),
        headers=[("Content-Length", str(10 * 1024**3))],
        must_fail=True,
        expect=(413,),
    )
    add(
        "oversize",
        "content-length-short",
        Raw(padded),
        headers=[("Content-Length", str(len(padded) - 1))],
        must_fail=True,
    )
    chunk = padded + b" " * (2 * limit)
    add(
        "oversize",
        "chunked-2MiB",
        Raw(b"%x\r\n" % len(chunk) + chunk + b"\r\n0\r\n\r\n"),
        headers=[("Transfer-Encoding", "chunked")],
        must_fail=True,
        expect=(413,),
    )
    add("oversize", "deep-array-100k", Raw(b"[" * 100_000 + b"]" * 100_000), must_fail=True)
    add(
        "oversize",
        "deep-object-100k",
        Raw(b'{"a":' * 100_000 + b"1" + b"}" * 100_000),
        must_fail=True,
    )
    add("oversize", "deep-array-1000", Raw(b"[" * 1000 + b"]" * 1000))
    add("oversize", "deep-object-1000", Raw(b'{"a":' * 1000 + b"1" + b"}" * 1000))
    add("oversize", "deep-array-500", Raw(b"[" * 500 + b"]" * 500))
    deep_field = Raw(b"[" * 1000 + b"]" * 1000)
    add("oversize", "title-deep-array-1000", {**full, "title": deep_field})
    if method == "PATCH":
        nested = Raw(b'{"a":' * 990 + b"1" + b"}" * 990)
        add("oversize", "merge-patch-deep-object-990", {"notes": nested})
    if col.record_type == "event":
        # Distinct words: PostgreSQL's to_tsvector has a 1 MB limit.
        words = " ".join(f"w{i:x}" for i in range(120_000))
        add("oversize", "summary-900k-distinct-words", {**full, "summary": words})
        add("oversize", "summary-900k-one-word", {**full, "summary": "a" * 900_000})
    if col.record_type == "article":
        add("oversize", "file-260-chars", {**full, "file": "articles/" + "a" * 250 + ".txt"})
        add(
            "oversize",
            "text-900k-distinct-words",
            {**full, "text": " ".join(f"w{i:x}" for i in range(120_000))},
        )
    if col.record_type == "actor":
        add("oversize", "variants-10k-item", {**full, "variants": ["v" * 10240]})
        add("oversize", "description-900k", {**full, "description": "d" * 900_000})


def wide(add, full: dict, col: Collection, method: str) -> None:
    """Long arrays: each item is checked against the database, some against the others.
    Slow to answer: on PATCH of events and actors only."""
    if method != "PATCH" or col.record_type not in ("event", "actor"):
        return
    if not col.is_fact:
        if col.record_type == "actor":
            add("wide", "variants-50k", {**full, "variants": ["v"] * 50_000})
        return

    def fitting(item) -> int:  # how many copies fit in a 900 KB body
        return min(20_000, 900_000 // (len(encode_body(item)) + 1))

    other = col.others[0] if col.others else col.victim
    n = fitting(other)
    add("wide", f"contradicts-{n}-same", {**full, "contradicts": [other] * n})
    add(
        "wide", "contradicts-20k-unknown", {**full, "contradicts": [f"x{i}" for i in range(20_000)]}
    )
    ref = (col.victim_body.get("actors") or [{"id": "russia", "role": "place"}])[0]
    ref = {"id": ref["id"], "role": ref["role"]}
    add("wide", f"actors-{fitting(ref)}-same", {**full, "actors": [ref] * fitting(ref)})
    source = {k: col.victim_body["sources"][0][k] for k in ("article_id", "quote")}
    n = min(5_000, fitting(source))
    add("wide", f"sources-{n}-same-no-start", {**full, "sources": [source] * n})


def _method_adder(probes: list, writer: Writer, where: str, group: str):
    def add(label, method, headers=(), body=b"", must_fail=False, auth=True, query=""):
        url = where + query
        data = writer.data(method, url, body, auth="default" if auth else None, headers=headers)
        probe = WriteProbe(
            group, f"methods:{label}", method, url, data, category="methods", must_fail=must_fail
        )
        probes.append(probe)

    return add


def method_probes(cols: list[Collection], writer: Writer, port: int) -> list[WriteProbe]:
    """Odd methods and CORS preflights on the write URLs."""
    probes = []
    for col in cols:
        for where, path in (
            (col.list_url, col.list_url),
            (col.url(col.victim), col.ops["PUT"].path),
        ):
            add = _method_adder(probes, writer, where, f"methods {path}")

            for method in (
                "TRACE",
                "PROPFIND",
                "MKCOL",
                "COPY",
                "MOVE",
                "LOCK",
                "FOO",
                "HEAD",
                "OPTIONS",
            ):
                add(method, method, must_fail=method not in ("HEAD", "OPTIONS"))
            add("lower-case-put", "put", [("Content-Type", "application/json")], b"{}", True)
            for asked in ("POST", "PUT", "PATCH", "DELETE"):
                add(
                    f"preflight-{asked}",
                    "OPTIONS",
                    [
                        ("Origin", "http://evil.example"),
                        ("Access-Control-Request-Method", asked),
                        (
                            "Access-Control-Request-Headers",
                            "authorization, content-type, if-match, edit-summary",
                        ),
                    ],
                    auth=False,
                )
            add(
                "preflight-garbage-headers",
                "OPTIONS",
                [
                    ("Origin", "http://evil.example"),
                    ("Access-Control-Request-Method", "PUT"),
                    ("Access-Control-Request-Headers", "a" * 6000 + ", \xff"),
                ],
                auth=False,
            )
            if where == col.list_url:
                add(
                    "PUT-on-list",
                    "PUT",
                    [("Content-Type", "application/json"), ("If-Match", "*")],
                    b"{}",
                    True,
                )
                add(
                    "PATCH-on-list",
                    "PATCH",
                    [("Content-Type", MERGE_PATCH), ("If-Match", "*")],
                    b"{}",
                    True,
                )
                add("DELETE-on-list", "DELETE", [("If-Match", "*")], must_fail=True)
                add(
                    "method-override-delete",
                    "POST",
                    [("Content-Type", "application/json"), ("X-HTTP-Method-Override", "DELETE")],
                    b"{}",
                )
                add(
                    "query-method-delete",
                    "POST",
                    [("Content-Type", "application/json")],
                    b"{}",
                    query="?_method=DELETE",
                )
            else:
                add("POST-on-record", "POST", [("Content-Type", "application/json")], b"{}", True)
                add(
                    "method-override-delete",
                    "PATCH",
                    [
                        ("Content-Type", MERGE_PATCH),
                        ("If-Match", "*"),
                        ("X-HTTP-Method-Override", "DELETE"),
                    ],
                    b"{}",
                )
    return probes


def run_write_probes(
    port: int, probes: list[WriteProbe], tally: Tally, stats: WriteStats, budget: float
) -> int:
    """Send the probes from 4 threads (tier 0 first), then the heavy ones (tier 2: large or
    long bodies) one at a time, so that they do not slow the others down or wait on each
    other; returns how many were skipped for time."""
    light = sorted((p for p in probes if p.tier < 2), key=lambda p: p.tier)
    heavy = [p for p in probes if p.tier >= 2]
    deadline = time.monotonic() + budget
    skipped = 0
    lock = threading.Lock()

    def one(probe: WriteProbe) -> None:
        nonlocal skipped
        if time.monotonic() > deadline:
            with lock:
                skipped += 1
            return
        response = exchange(port, probe.data, probe.method)
        stats.record(tally, probe, response, write_problems(probe, response))

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(one, light))
    for probe in heavy:
        one(probe)
    return skipped


def check_preflights(port: int, cols: list[Collection]) -> list[str]:
    """What a browser needs to write: the preflight allows the method and the headers."""
    found = []
    col = cols[0]
    for where, method in (
        (col.list_url, "POST"),
        (col.url(col.victim), "PATCH"),
        (col.url(col.victim), "DELETE"),
    ):
        asked = ["authorization", "content-type", "if-match", "edit-summary"]
        data = request_bytes(
            "OPTIONS",
            where,
            port,
            [
                ("Origin", "http://example.org"),
                ("Access-Control-Request-Method", method),
                ("Access-Control-Request-Headers", ", ".join(asked)),
            ],
        )
        response = exchange(port, data, "OPTIONS")
        allowed = {
            h.strip().lower()
            for h in response.headers.get("access-control-allow-headers", "").split(",")
        }
        methods = {
            m.strip().upper()
            for m in response.headers.get("access-control-allow-methods", "").split(",")
        }
        missing = [h for h in asked if h not in allowed and "*" not in allowed]
        if method not in methods and "*" not in methods:
            missing.append(f"method {method}")
        if missing:
            found.append(f"preflight {method} {where}: not allowed: {', '.join(missing)}")
        exposed = response.headers.get("access-control-expose-headers", "")
        if "etag" not in exposed.lower():
            found.append(f"preflight {method} {where}: ETag not exposed")
    return found


# Races -----------------------------------------------------------------------------------------


def together(jobs: list[tuple[WriteProbe, bytes]], port: int) -> list[Response]:
    """Send the requests at the same moment, one thread each."""
    barrier = threading.Barrier(len(jobs))
    responses: list[Response | None] = [None] * len(jobs)

    def one(index: int) -> None:
        probe, data = jobs[index]
        try:
            barrier.wait(timeout=10)
        except threading.BrokenBarrierError:
            pass
        responses[index] = exchange(port, data, probe.method)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT + 10)
    return [r or Response(error="no response (thread)") for r in responses]


def _etag(port: int, url: str) -> tuple[int | None, str | None, dict]:
    response = get(port, url)
    try:
        body = json.loads(response.body)
    except ValueError:
        body = {}
    return response.status, response.headers.get("etag"), body


def _note_field(col: Collection) -> str:
    return {"actor": "description", "article": "note"}.get(col.record_type, "notes")


def race_same_record(
    port: int, writer: Writer, cols: list[Collection], tally: Tally, stats: WriteStats
) -> dict:
    """8 writers with the same If-Match on one record: exactly one wins, the others get 412
    (or 410 if a DELETE won). Then 8 with If-Match: * : all win, one after the other."""
    results = {"rounds": 0, "lost_updates": 0, "no_winner": 0, "star_rounds": 0, "star_missing": 0}
    for col in cols:
        if not col.spares:
            continue
        record = col.spares[0]
        url = col.url(record)
        note = _note_field(col)
        for round_no in range(3):
            status, tag, _ = _etag(port, url)
            if status != 200:
                break
            jobs = []
            for i in range(8):
                method = (
                    ("PATCH", "PUT", "DELETE")[i % 3]
                    if round_no == 2 and col.record_type == "event"
                    else "PATCH"
                )
                marker = f"race {round_no} {i}"
                if method == "PATCH":
                    body, ctype = {note: marker}, MERGE_PATCH
                elif method == "PUT":
                    _, _, current = _etag(port, url)
                    body, ctype = {**current, note: marker}, "application/json"
                else:
                    body, ctype = None, None
                data = writer.data(
                    method, url, body, media_type=ctype, if_match=tag, summary=marker
                )
                label = f"race-same:{col.name}:round{round_no}:{method}"
                jobs.append(
                    (
                        WriteProbe(
                            f"race {col.name}",
                            label,
                            method,
                            url,
                            data,
                            category="race-same-record",
                        ),
                        data,
                    )
                )
            responses = together(jobs, port)
            winners = []
            for (probe, _), response in zip(jobs, responses, strict=True):
                kinds = write_problems(probe, response)
                if response.status and 200 <= response.status < 300:
                    winners.append(probe.data)
                elif response.status not in (412, 410) and not kinds:
                    kinds = [f"race same record: {response.status} (412 or 410 expected)"]
                stats.record(tally, probe, response, kinds)
            results["rounds"] += 1
            if len(winners) > 1:
                results["lost_updates"] += 1
                probe = jobs[0][0]
                tally.record(
                    probe,
                    Response(status=200),
                    [f"race same record: {len(winners)} writers won with one If-Match"],
                )
                stats.fails["race-same-record"] += 1
            if not winners:
                results["no_winner"] += 1
                probe = jobs[0][0]
                tally.record(probe, Response(status=412), ["race same record: no writer won"])
                stats.fails["race-same-record"] += 1
        # If-Match: * : every writer's change lands, one revision each.
        status, tag, _ = _etag(port, url)
        if status != 200:
            continue
        versions = len(_revisions(port, url))
        jobs = []
        for i in range(8):
            data = writer.data(
                "PATCH",
                url,
                {note: f"star {i}"},
                media_type=MERGE_PATCH,
                if_match="*",
                summary=f"star {i}",
            )
            jobs.append(
                (
                    WriteProbe(
                        f"race {col.name}",
                        f"race-same:{col.name}:star",
                        "PATCH",
                        url,
                        data,
                        category="race-same-record",
                    ),
                    data,
                )
            )
        responses = together(jobs, port)
        ok = 0
        for (probe, _), response in zip(jobs, responses, strict=True):
            kinds = write_problems(probe, response)
            if response.status == 200:
                ok += 1
            elif not kinds:
                kinds = [f"race If-Match *: {response.status} (200 expected)"]
            stats.record(tally, probe, response, kinds)
        results["star_rounds"] += 1
        after = len(_revisions(port, url))
        if after - versions != ok:
            results["star_missing"] += 1
            tally.record(
                jobs[0][0],
                Response(status=200),
                [f"race If-Match *: {ok} answered 200 but {after - versions} revisions"],
            )
            stats.fails["race-same-record"] += 1
    return results


def _revisions(port: int, url: str) -> list[dict]:
    out, target = [], f"{url}/revisions?page_size=500"
    for _ in range(20):
        response = get(port, target)
        if response.status != 200:
            return out
        out += json.loads(response.body)
        match = re.search(r"<([^>]+)>;\s*rel=\"next\"", response.headers.get("link", ""))
        if not match:
            return out
        target = match.group(1)
    return out


def race_different_records(
    port: int, writer: Writer, cols: list[Collection], tally: Tally, stats: WriteStats
) -> dict:
    """32 writers, each on its own record with its own current ETag, at once: all must win."""
    targets = []
    for col in cols:
        for record in col.others[:8] if col.is_fact else col.others[:4]:
            targets.append((col, record))
    targets = targets[:32]
    results = {"rounds": 0, "writers": len(targets), "statuses": Counter()}
    for round_no in range(3):
        jobs = []
        for col, record in targets:
            url = col.url(record)
            status, tag, _ = _etag(port, url)
            if status != 200:
                continue
            note = _note_field(col)
            data = writer.data(
                "PATCH",
                url,
                {note: f"parallel {round_no}"},
                media_type=MERGE_PATCH,
                if_match=tag,
                summary=f"parallel {round_no}",
            )
            jobs.append(
                (
                    WriteProbe(
                        f"race different {col.name}",
                        f"race-different:{col.name}",
                        "PATCH",
                        url,
                        data,
                        category="race-different-records",
                    ),
                    data,
                )
            )
        responses = together(jobs, port)
        for (probe, _), response in zip(jobs, responses, strict=True):
            kinds = write_problems(probe, response)
            if response.status != 200 and not kinds:
                kinds = [f"race different records: {response.status} (200 expected)"]
            results["statuses"][str(response.status or response.error)] += 1
            stats.record(tally, probe, response, kinds)
        results["rounds"] += 1
    results["statuses"] = dict(results["statuses"])
    return results


def race_create(
    port: int, writer: Writer, cols: list[Collection], tally: Tally, stats: WriteStats
) -> dict:
    """8 POSTs of one new id at once: one 201, seven 409. 8 POSTs of one name (the id is
    derived from it): eight 201 with eight ids."""
    actors = next(c for c in cols if c.record_type == "actor")
    kind = actors.victim_body["kind"]
    results = {}
    for label, make in (
        ("same-id", lambda i: {"id": "hostile-twin", "name": f"Twin {i}", "kind": kind}),
        ("same-name", lambda i: {"name": "Hostile Twin Name", "kind": kind}),
    ):
        jobs = []
        for i in range(8):
            data = writer.data("POST", actors.list_url, make(i), media_type="application/json")
            jobs.append(
                (
                    WriteProbe(
                        f"race create {actors.name}",
                        f"race-create:{label}",
                        "POST",
                        actors.list_url,
                        data,
                        category="race-create",
                    ),
                    data,
                )
            )
        responses = together(jobs, port)
        statuses = Counter(str(r.status or r.error) for r in responses)
        ids = set()
        for (probe, _), response in zip(jobs, responses, strict=True):
            kinds = write_problems(probe, response)
            if response.status == 201:
                ids.add(response.headers.get("location"))
            elif not (label == "same-id" and response.status == 409) and not kinds:
                kinds = [f"race create {label}: {response.status}"]
            stats.record(tally, probe, response, kinds)
        wanted_201 = 1 if label == "same-id" else 8
        if statuses.get("201", 0) != wanted_201 or len(ids) != statuses.get("201", 0):
            tally.record(
                jobs[0][0],
                Response(status=201),
                [f"race create {label}: {dict(statuses)}, {len(ids)} ids"],
            )
            stats.fails["race-create"] += 1
        results[label] = {"statuses": dict(statuses), "distinct_locations": len(ids)}
    return results


def race_contradictions(
    port: int, writer: Writer, cols: list[Collection], tally: Tally, stats: WriteStats
) -> dict:
    """Links between the same records changed at once from both ends, and a record deleted
    while another links to it: 'contradicts' must end symmetric (checked by integrity)."""
    events = next((c for c in cols if c.record_type == "event"), None)
    if not events or len(events.spares) < 6:
        return {"skipped": "not enough event clones"}
    a, b, c, d, e = events.spares[1:6]
    plan = [
        ("PATCH", a, {"contradicts": [b, c]}),
        ("PATCH", b, {"contradicts": [a, c]}),
        ("PATCH", c, {"contradicts": [a, d]}),
        ("PATCH", d, {"contradicts": [e]}),
        ("DELETE", e, None),
        ("PATCH", a, {"contradicts": [d]}),
        ("PATCH", b, {"contradicts": []}),
        ("PATCH", e, {"contradicts": [a]}),
    ]
    statuses = Counter()
    for _ in range(2):
        jobs = []
        for method, record, body in plan:
            url = events.url(record)
            ctype = MERGE_PATCH if body is not None else None
            data = writer.data(method, url, body, media_type=ctype, if_match="*")
            jobs.append(
                (
                    WriteProbe(
                        "race contradictions",
                        f"race-contradictions:{method}",
                        method,
                        url,
                        data,
                        category="race-contradictions",
                    ),
                    data,
                )
            )
        responses = together(jobs, port)
        for (probe, _), response in zip(jobs, responses, strict=True):
            kinds = write_problems(probe, response)
            if response.status not in (200, 204, 410, 422) and not kinds:
                kinds = [f"race contradictions: {response.status}"]
            statuses[str(response.status or response.error)] += 1
            stats.record(tally, probe, response, kinds)
    return {"statuses": dict(statuses)}


# Slow bodies ---------------------------------------------------------------------------------


def slow_bodies(
    port: int,
    writer: Writer,
    cols: list[Collection],
    tally: Tally,
    stats: WriteStats,
    server: Server,
) -> dict:
    """Writes whose headers arrive and whose body stalls, held open while others are served:
    5 (fewer than a worker's pool), then SLOW_BODIES (more than both pools hold)."""
    out = {}
    events = next(c for c in cols if c.is_fact)
    actors = next(c for c in cols if c.record_type == "actor")
    for count in (5, SLOW_BODIES):
        held: list[socket.socket] = []
        offset = server.log_size()
        started = time.monotonic()
        try:
            for i in range(count):
                if i % 2:
                    head = writer.data(
                        "PATCH",
                        events.url(events.victim),
                        None,
                        media_type=MERGE_PATCH,
                        if_match="*",
                        headers=[("Content-Length", "4096")],
                    )
                else:
                    head = writer.data(
                        "POST",
                        actors.list_url,
                        None,
                        media_type="application/json",
                        headers=[("Content-Length", "4096")],
                    )
                sock = socket.create_connection((LOCALHOST, port), timeout=5)
                sock.sendall(head + b'{"notes": "stalled')
                held.append(sock)
            time.sleep(1.0)
            health = []
            for _ in range(10):
                response = get(port, "/healthz")
                health.append(response.seconds)
                probe = WriteProbe(
                    "slow bodies",
                    f"slow-body:{count}:/healthz",
                    "GET",
                    "/healthz",
                    b"",
                    category="slow-body",
                )
                kinds = problems(probe, response)
                if response.seconds > SLOW_LIMIT:
                    kinds.append("slow bodies: /healthz over 1 s")
                stats.record(tally, probe, response, kinds)
            # Others who need the database: readers and writers, at once.
            jobs = []
            for i in range(4):
                target = (
                    f"{API}/events?page_size=1&q=x{i}" if i % 2 else f"{API}/decrees?page_size=1"
                )
                data = request_bytes("GET", target, port)
                jobs.append(
                    (
                        WriteProbe(
                            "slow bodies",
                            f"slow-body:{count}:GET",
                            "GET",
                            target,
                            b"",
                            category="slow-body",
                        ),
                        data,
                    )
                )
            for col in cols[:2]:
                target = col.url(col.victim)
                data = writer.data("PATCH", target, {}, media_type=MERGE_PATCH, if_match="*")
                jobs.append(
                    (
                        WriteProbe(
                            "slow bodies",
                            f"slow-body:{count}:PATCH",
                            "PATCH",
                            target,
                            b"",
                            category="slow-body",
                        ),
                        data,
                    )
                )
            long_wait: list[Response] = []

            def patient(long_wait=long_wait) -> None:  # what a client that waits longer gets
                long_wait.append(
                    exchange(
                        port, request_bytes("GET", f"{API}/penalties?page_size=1", port), timeout=40
                    )
                )

            waiter = threading.Thread(target=patient) if count > 5 else None
            if waiter:
                waiter.start()
            responses = together(jobs, port)
            for (probe, _), response in zip(jobs, responses, strict=True):
                kinds = write_problems(probe, response)
                stats.record(tally, probe, response, kinds)
            if waiter:
                waiter.join(45)
                if long_wait:
                    probe = WriteProbe(
                        "slow bodies",
                        f"slow-body:{count}:GET-waiting-40s",
                        "GET",
                        f"{API}/penalties?page_size=1",
                        b"",
                        category="slow-body",
                    )
                    stats.record(tally, probe, long_wait[0], write_problems(probe, long_wait[0]))
            out[str(count)] = {
                "healthz_max_seconds": round(max(health), 3),
                "others": [
                    f"{p.method} {abbreviate(p.target, 50)} -> {r.status or r.error} "
                    f"in {r.seconds:.2f} s"
                    for (p, _), r in zip(jobs, responses, strict=True)
                ],
                "waiting_client": (
                    f"{long_wait[0].status or long_wait[0].error} after "
                    f"{long_wait[0].seconds:.1f} s"
                    if long_wait
                    else None
                ),
            }
        finally:
            for sock in held:
                sock.close()
        # Once the stalled clients are gone, the server serves again.
        recovered = None
        for _ in range(30):
            response = get(port, f"{API}/events?page_size=1")
            if response.status == 200:
                recovered = round(time.monotonic() - started, 1)
                break
            time.sleep(0.5)
        out[str(count)]["served_again_after_seconds"] = recovered
        chains = Counter(
            " -> ".join(dict.fromkeys(normalise(line) for line in chain))
            for _, chain in exception_chains(server.log_since(offset))
        )
        out[str(count)]["logged"] = chains.most_common(3)
        if recovered is None:
            probe = WriteProbe(
                "slow bodies",
                f"slow-body:{count}:recovery",
                "GET",
                f"{API}/events",
                b"",
                category="slow-body",
            )
            stats.record(
                tally,
                probe,
                response,
                ["slow bodies: not served again after the stalled clients left"],
            )
    return out


# Integrity -----------------------------------------------------------------------------------


def integrity(
    port: int, store: Store, cols: list[Collection], tally: Tally, stats: WriteStats, when: str
) -> dict:
    """The history and the records agree: revisions numbered 1..N without gaps (and the
    dataset's revision is N), each record's versions 1..V, every record as GET shows it equal
    to its last revision's record, deleted ones 410, contradictions symmetric, lists readable."""
    by_type = {c.record_type: c for c in cols}
    found: list[str] = []

    def fail(kind: str, detail: str, url: str = "", response: Response | None = None) -> None:
        found.append(f"{kind}: {detail}")
        probe = WriteProbe(
            "integrity", f"integrity:{when}:{kind}", "GET", url or detail, b"", category="integrity"
        )
        tally.record(probe, response or Response(status=200), [f"corruption: {kind}"])
        with stats.lock:
            stats.fails["integrity"] += 1

    revisions = store.rows(
        "SELECT seq, record_type, record_id, version, action, record FROM revisions ORDER BY seq"
    )
    state_rows = store.rows("SELECT revision FROM dataset_state WHERE id = 1")
    state = state_rows[0][0] if state_rows else None
    seqs = [r[0] for r in revisions]
    if seqs != list(range(1, len(seqs) + 1)):
        gaps = sorted(set(range(1, (max(seqs) if seqs else 0) + 1)) - set(seqs))[:10]
        fail(
            "revision seq not gap-free",
            f"{len(seqs)} revisions, max {max(seqs, default=0)}, missing {gaps}",
        )
    if state != len(seqs):
        fail("dataset revision", f"dataset_state.revision {state}, {len(seqs)} revisions")
    last: dict[tuple[str, str], tuple] = {}
    versions: dict[tuple[str, str], list[int]] = defaultdict(list)
    for seq, record_type, record_id, version, action, record in revisions:
        key = (record_type, record_id)
        versions[key].append(version)
        last[key] = (version, action, record, seq)
    for key, numbers in versions.items():
        if numbers != list(range(1, len(numbers) + 1)):
            fail("record versions not 1..V", f"{key}: {numbers[:12]}")
    live = {("fact", i): (t, v) for i, t, v in store.rows("SELECT id, type, version FROM facts")}
    live |= {("actor", i): ("actor", v) for i, v in store.rows("SELECT id, version FROM actors")}
    live |= {
        ("article", i): ("article", v) for i, v in store.rows("SELECT id, version FROM articles")
    }
    contradicts: dict[str, set[str]] = {}
    disputed: dict[str, bool] = {}
    checked = 0
    for (_, record_id), (record_type, version) in sorted(live.items()):
        col = by_type.get(record_type)
        url = col.url(record_id) if col else f"{API}/?/{record_id}"
        entry = last.get((record_type, record_id))
        if entry is None:
            fail("record without a revision", f"{record_type} {record_id}", url)
            continue
        if entry[1] == "deleted":
            fail("deleted record still stored", f"{record_type} {record_id}", url)
        if entry[0] != version:
            fail(
                "record version is not its last revision's",
                f"{record_type} {record_id}: row {version}, revision {entry[0]}",
                url,
            )
        response = get(port, url)
        checked += 1
        if response.status != 200:
            fail(
                "record unreadable",
                f"GET {url} -> {response.status or response.error}: {response.body[:120]!r}",
                url,
                response,
            )
            continue
        body = json.loads(response.decoded_body())
        if body != _as_json(entry[2]):
            stored = _as_json(entry[2]) or {}
            keys = sorted(k for k in set(body) | set(stored) if body.get(k) != stored.get(k))
            fail(
                "record is not its last revision's record",
                f"{record_type} {record_id}: fields {keys[:8]}",
                url,
            )
        if record_type in FACT_TYPES:
            contradicts[record_id] = set(body.get("contradicts", []))
            disputed[record_id] = bool(body.get("disputed"))
    for (record_type, record_id), (_, action, _, _) in last.items():
        if action != "deleted":
            if ("fact" if record_type in FACT_TYPES else record_type, record_id) not in live:
                fail("last revision not deleted, record missing", f"{record_type} {record_id}")
            continue
        col = by_type.get(record_type)
        if col and (response := get(port, col.url(record_id))).status != 410:
            fail(
                "deleted record does not answer 410",
                f"{record_type} {record_id} -> {response.status}",
                col.url(record_id),
                response,
            )
    for record_id, others in contradicts.items():
        for other in others:
            if other not in contradicts:
                fail("contradicts a record that is not there", f"{record_id} -> {other}")
            elif record_id not in contradicts[other]:
                fail("contradiction not symmetric", f"{record_id} -> {other}, not back")
        if disputed[record_id] != bool(others):
            fail(
                "disputed flag wrong",
                f"{record_id}: disputed {disputed[record_id]}, contradicts {sorted(others)}",
            )
    pairs = set(store.rows("SELECT fact_id, other_id FROM contradictions"))
    for a, b in pairs:
        if (b, a) not in pairs:
            fail("contradictions table not symmetric", f"{a} -> {b}")
    for col in cols:
        response = get(port, f"{col.list_url}?page_size=500")
        if response.status != 200:
            fail(
                "list unreadable",
                f"GET {col.list_url}?page_size=500 -> {response.status}",
                col.list_url,
                response,
            )
    return {
        "revisions": len(seqs),
        "records_checked": checked,
        "deleted_records": sum(1 for v in last.values() if v[1] == "deleted"),
        "problems": found,
    }


def repair(port: int, writer: Writer, store: Store, cols: list[Collection]) -> list[str]:
    """Records that no longer answer (a write left them unreadable): a victim gets its first
    body back, any other is deleted, so that the later tests do not trip on them."""
    by_type = {c.record_type: c for c in cols}
    done = []
    rows = [(t, i) for i, t in store.rows("SELECT id, type FROM facts")]
    rows += [("actor", i) for (i,) in store.rows("SELECT id FROM actors")]
    rows += [("article", i) for (i,) in store.rows("SELECT id FROM articles")]
    for record_type, record_id in rows:
        col = by_type[record_type]
        url = col.url(record_id)
        if (status := get(port, url).status) and status < 500:
            continue
        if record_id == col.victim:
            response = writer.send(
                "PUT", url, col.victim_body, media_type="application/json", if_match="*"
            )
        else:
            response = writer.send("DELETE", url, None, if_match="*")
        how = "PUT" if record_id == col.victim else "DELETE"
        done.append(f"{record_type} {record_id}: GET {status}; {how} -> {response.status}")
    return done


# The database stopped during a burst of writes ---------------------------------------------


def write_outage(
    server: Server,
    pg: PrivatePostgres,
    writer: Writer,
    store: Store,
    cols: list[Collection],
    tally: Tally,
    stats: WriteStats,
) -> dict:
    """6 writers (PATCHes of their own records, POSTs of new actors, each with a unique
    Edit-Summary) while the database is stopped and started again. Every write answered 2xx
    must be there, every write answered otherwise must not be (a 503 that committed is a
    half-applied write), and every record's state must be its last revision's."""
    port = server.port
    facts = [(c, r) for c in cols if c.is_fact for r in c.others[8:]]
    facts = facts or [(c, r) for c in cols if c.is_fact for r in c.others]
    if not facts:
        return {"skipped": "no fact records to write to"}
    actors = next(c for c in cols if c.record_type == "actor")
    kind = actors.victim_body["kind"]
    writers = 6
    mine = [facts[i % len(facts)] for i in range(writers)]
    before = store.rows("SELECT count(*) FROM revisions")[0][0]
    records: list[tuple[float, str, str, str, Response]] = []  # sent, marker, method, url, response
    lock, done = threading.Lock(), threading.Event()
    marks: dict[str, float] = {}

    def client(index: int) -> None:
        col, record = mine[index]
        for n in range(100_000):
            if done.is_set():
                return
            marker = f"outage-{index}-{n}"
            if n % 2:
                url = actors.list_url
                body = {
                    "id": f"hostile-outage-{index}-{n}",
                    "name": f"Outage {index} {n}",
                    "kind": kind,
                }
                data = writer.data("POST", url, body, media_type="application/json", summary=marker)
                method = "POST"
            else:
                url = col.url(record)
                data = writer.data(
                    "PATCH",
                    url,
                    {"notes": marker},
                    media_type=MERGE_PATCH,
                    if_match="*",
                    summary=marker,
                )
                method = "PATCH"
            sent = time.monotonic()
            response = exchange(port, data, method)
            with lock:
                records.append((sent, marker, method, url, response))
            time.sleep(0.02)

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(writers)]
    for thread in threads:
        thread.start()
    errors = []
    try:
        time.sleep(1.5)
        marks["stop_begin"] = time.monotonic()
        try:
            pg.stop("fast")
        except subprocess.SubprocessError as error:
            errors.append(repr(error))
        marks["stop_end"] = time.monotonic()
        time.sleep(3)
        marks["start_begin"] = time.monotonic()
        try:
            pg.start()
        except subprocess.SubprocessError as error:
            errors.append(repr(error))
        marks["start_end"] = time.monotonic()
        time.sleep(3)
    finally:
        done.set()
        for thread in threads:
            thread.join(TIMEOUT + 5)

    def phase(sent: float, seconds: float) -> str:
        if sent + seconds < marks["stop_begin"]:
            return "before"
        if sent < marks["stop_end"]:
            return "stopping"
        if sent < marks["start_begin"]:
            return "down"
        if sent < marks["start_end"]:
            return "starting"
        return "after"

    applied: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
    for seq, summary, record_type, record_id in store.rows(
        "SELECT seq, summary, record_type, record_id FROM revisions WHERE summary LIKE 'outage-%'"
    ):
        applied[summary].append((seq, record_type, record_id))
    after = store.rows("SELECT count(*) FROM revisions")[0][0]
    by_phase: dict[str, Counter] = defaultdict(Counter)
    ambiguous = Counter()
    last_applied: dict[str, tuple[int, str]] = {}  # url -> (seq, marker) of the last PATCH applied
    for sent, marker, method, url, response in sorted(records, key=lambda r: r[0]):
        name = phase(sent, response.seconds)
        shown = str(response.status) if response.status else response.error.split(" (")[0]
        by_phase[name][shown] += 1
        probe = WriteProbe(
            "db outage writes",
            f"db-outage-writes:{name}:{method}",
            method,
            url,
            b"",
            category="db-outage-writes",
        )
        kinds = [k for k in write_problems(probe, response) if k != "5xx"]
        ok = bool(response.status and 200 <= response.status < 300)
        landed = marker in applied
        if response.status and not ok:
            if name in ("before", "after") or response.status != 503:
                kinds.insert(0, f"db outage writes: {response.status} while {name}")
        if ok and not landed:
            kinds.insert(0, "corruption: write answered 2xx is not in the history")
        if response.status and not ok and landed:
            kinds.insert(0, f"corruption: write answered {response.status} was applied")
        if not response.status:
            ambiguous[f"{shown}, applied" if landed else f"{shown}, not applied"] += 1
        if len(applied.get(marker, [])) > 1:
            kinds.insert(0, "corruption: one write, several revisions")
        if landed and method == "PATCH":
            seq = max(s for s, _, _ in applied[marker])
            if seq > last_applied.get(url, (0, ""))[0]:
                last_applied[url] = (seq, marker)
        stats.record(tally, probe, response, kinds)
    expected = sum(len(v) for v in applied.values())
    states = []
    for url, (_, marker) in sorted(last_applied.items()):
        response = get(port, url)
        notes = json.loads(response.body).get("notes") if response.status == 200 else None
        if notes != marker:
            probe = WriteProbe(
                "db outage writes",
                "db-outage-writes:final-state",
                "GET",
                url,
                b"",
                category="db-outage-writes",
            )
            stats.record(
                tally,
                probe,
                response,
                [f"corruption: record state {notes!r}, its last revision says {marker!r}"],
            )
        states.append(f"{url.rsplit('/', 1)[1]} notes={notes!r}")
    if after - before != expected:
        probe = WriteProbe(
            "db outage writes",
            "db-outage-writes:revision-count",
            "GET",
            "revisions",
            b"",
            category="db-outage-writes",
        )
        stats.record(
            tally,
            probe,
            Response(status=200),
            [f"corruption: {after - before} new revisions, {expected} from the writes"],
        )
    return {
        "writes": len(records),
        "answered_2xx": sum(1 for r in records if r[4].status and 200 <= r[4].status < 300),
        "applied": len(applied),
        "revisions_before": before,
        "revisions_after": after,
        "statuses_by_phase": {k: dict(v) for k, v in by_phase.items()},
        "no_answer": dict(ambiguous),
        "pg_ctl_errors": errors,
        "stop_seconds": round(marks["stop_end"] - marks["stop_begin"], 2),
        "start_seconds": round(marks["start_end"] - marks["start_begin"], 2),
    }


def poison_check(
    port: int, writer: Writer, store: Store, cols: list[Collection], tally: Tally, stats: WriteStats
) -> dict:
    """A whole number of 2**64 or more (1e20) in a quantity: refused, or stored? If stored,
    can the record, its list, its history still be read? Then the record is put back."""
    out = {}
    for col in cols:
        if not col.is_fact:
            continue
        url = col.url(col.victim)
        current = json.loads(get(port, url).body)
        patch, where = None, ""
        for key, value in current.items():
            if isinstance(value, dict) and "unit" in value and "value" in value:
                patch, where = {key: {"value": Raw(b"1e20")}}, f"{key}.value"
            elif isinstance(value, list) and value and isinstance(value[0], dict):
                if "unit" in value[0] and "value" in value[0]:
                    items = [{**value[0], "value": Raw(b"1e20")}, *value[1:]]
                    patch, where = {key: items}, f"{key}[0].value"
            if patch:
                break
        if patch is None:
            continue

        def count(col: Collection = col) -> int:
            sql = "SELECT count(*) FROM revisions WHERE record_type = :t AND record_id = :i"
            return store.rows(sql, t=col.record_type, i=col.victim)[0][0]

        before = count()
        data = writer.data("PATCH", url, patch, media_type=MERGE_PATCH, if_match="*")
        response = exchange(port, data, "PATCH")
        applied = count() - before
        probe = WriteProbe(
            col.ops["PATCH"].name,
            f"huge-numbers:poison:{where}=1e20",
            "PATCH",
            url,
            data,
            category="huge-numbers",
        )
        kinds = write_problems(probe, response)
        if response.status and response.status >= 500 and applied:
            kinds.insert(0, "corruption: write answered 5xx was applied")
        stats.record(tally, probe, response, kinds)
        reads = {}
        for name, target in (
            ("record", url),
            ("list", f"{col.list_url}?page_size=500"),
            ("revisions", f"{url}/revisions"),
            ("export", f"{API}/export"),
        ):
            read = get(port, target)
            reads[name] = read.status or read.error
            probe = WriteProbe(
                f"GET {target}",
                f"huge-numbers:poison-read:{name}",
                "GET",
                target,
                b"",
                category="huge-numbers",
            )
            found = problems(probe, read)
            if applied and read.status and read.status >= 500:
                found.insert(0, "record unreadable after a write it accepted")
            stats.record(tally, probe, read, found)
        put = writer.send("PUT", url, col.victim_body, media_type="application/json", if_match="*")
        out[col.name] = {
            "request": abbreviate(data.decode("latin-1"), 700),
            "status": response.status or response.error,
            "revisions_added": applied,
            "reads_after": reads,
            "put_back": put.status,
            "record_after_put_back": get(port, url).status,
        }
    return out


def heavy_writers(
    port: int,
    writer: Writer,
    cols: list[Collection],
    tally: Tally,
    stats: WriteStats,
    seconds: float = 6.0,
    writers: int = 8,
) -> dict:
    """Writers that each send the longest summaries a record may have (MAX_SUMMARY
    characters) to their own record for a few seconds, while /healthz and a small write are
    timed: no 5xx, no hang, and how long the others wait."""
    facts = [(c, r) for c in cols if c.is_fact for r in c.others[:8]][:writers]
    actors = next(c for c in cols if c.record_type == "actor")
    stop = time.monotonic() + seconds
    statuses: Counter[str] = Counter()
    slowest = [0.0]
    lock = threading.Lock()

    def client(index: int) -> None:
        col, record = facts[index]
        for n in range(10_000):
            if time.monotonic() > stop:
                return
            words = " ".join(f"h{index}x{n}y{j:x}" for j in range(3_000))
            words = words[:MAX_SUMMARY].rsplit(" ", 1)[0]
            url = col.url(record)
            data = writer.data(
                "PATCH", url, {"summary": words}, media_type=MERGE_PATCH, if_match="*"
            )
            response = exchange(port, data, "PATCH")
            probe = WriteProbe(
                "heavy writers",
                "race-different:heavy-summary",
                "PATCH",
                url,
                b"",
                category="race-different-records",
            )
            kinds = write_problems(probe, response)
            if response.status != 200 and not kinds:
                kinds = [f"heavy writers: {response.status} (200 expected)"]
            stats.record(tally, probe, response, kinds)
            with lock:
                statuses[str(response.status or response.error)] += 1
                slowest[0] = max(slowest[0], response.seconds)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(facts))]
    for thread in threads:
        thread.start()
    health, small = [], []
    small_url = actors.url(actors.others[0])
    while any(thread.is_alive() for thread in threads):
        response = get(port, "/healthz")
        health.append(response.seconds)
        probe = WriteProbe(
            "heavy writers",
            "race-different:heavy-healthz",
            "GET",
            "/healthz",
            b"",
            category="race-different-records",
        )
        stats.record(tally, probe, response, problems(probe, response))
        data = writer.data("PATCH", small_url, {}, media_type=MERGE_PATCH, if_match="*")
        response = exchange(port, data, "PATCH")
        small.append(response.seconds)
        probe = WriteProbe(
            "heavy writers",
            "race-different:heavy-small-write",
            "PATCH",
            small_url,
            b"",
            category="race-different-records",
        )
        kinds = write_problems(probe, response)
        if response.status != 200 and not kinds:
            kinds = [f"heavy writers: small write {response.status}"]
        stats.record(tally, probe, response, kinds)
        time.sleep(0.25)
    for thread in threads:
        thread.join(TIMEOUT + 5)
    if health and max(health) > SLOW_LIMIT:
        tally.note(
            "/healthz over 1 s while large writes run (the worker is busy)",
            f"max {max(health):.2f} s with {len(facts)} writers of "
            f"{MAX_SUMMARY:,}-character summaries",
        )
    return {
        "writers": len(facts),
        "statuses": dict(statuses),
        "slowest_write_seconds": round(slowest[0], 2),
        "healthz_max_seconds": round(max(health), 2) if health else None,
        "small_write_max_seconds": round(max(small), 2) if small else None,
    }


def long_write(
    port: int, writer: Writer, cols: list[Collection], tally: Tally, stats: WriteStats
) -> dict:
    """The longest valid writes (a record citing MAX_SOURCES passages, its last one's parts
    among them), 2 at once on 2 records, and 4 small writes to other records
    meanwhile: they may wait, but must not fail (or wait over 10 s)."""
    events = next((c for c in cols if c.record_type == "event" and len(c.spares) > 7), None)
    actors = next(c for c in cols if c.record_type == "actor")
    if not events:
        return {"skipped": "no event clones"}
    longs = []
    for record_id in events.spares[6:8]:  # made for this; 1..5 are the contradictions' ones
        url = events.url(record_id)
        response = get(port, url)
        if response.status != 200:
            return {"skipped": f"GET {url} -> {response.status}"}
        record = json.loads(response.body)
        # Its citations as they are (the clone's own passage among them: no two records cite
        # the same passages), then parts of its last one.
        kept = [{k: c[k] for k in ("article_id", "quote", "start")} for c in record["sources"]]
        last = kept[-1]
        spans = [
            (i, j)
            for j in range(1, len(last["quote"]) + 1)
            for i in range(j)
            if (i, j) != (0, len(last["quote"]))  # the passage itself is cited already
        ]
        parts = [
            {**last, "quote": last["quote"][i:j], "start": last["start"] + i}
            for i, j in spans[: MAX_SOURCES - len(kept)]
        ]
        count = len(parts)
        body = {"sources": kept + parts}
        data = writer.data("PATCH", url, body, media_type=MERGE_PATCH, if_match="*")
        label = f"race-different:long-write-{count + len(kept)}-citations"
        probe = WriteProbe(
            "long write", label, "PATCH", url, b"", category="race-different-records"
        )
        longs.append((probe, data))
    result: dict[str, Any] = {"long_writes": len(longs), "body_bytes": len(longs[0][1])}
    answers: list[Response] = []

    def send_long(job: tuple[WriteProbe, bytes]) -> Response:
        return exchange(port, job[1], "PATCH", timeout=60)

    pool = ThreadPoolExecutor(max_workers=len(longs))
    sender = threading.Thread(target=lambda: answers.extend(pool.map(send_long, longs)))
    sender.start()
    time.sleep(0.5)
    small = []
    for index, record_id in enumerate(actors.others[1:5]):
        target = actors.url(record_id)
        body = {"description": f"written during a long write {index}"}
        small_data = writer.data("PATCH", target, body, media_type=MERGE_PATCH, if_match="*")
        probe = WriteProbe(
            "long write",
            "race-different:small-write-during-long-writes",
            "PATCH",
            target,
            b"",
            category="race-different-records",
        )
        small.append((probe, small_data))
    small_answers = together(small, port)
    sender.join(80)
    for (probe, _), response in [
        *zip(small, small_answers, strict=True),
        *zip(longs, answers, strict=False),
    ]:
        kinds = write_problems(probe, response)
        if response.status != 200 and not kinds:
            kinds = [f"write during long writes: {response.status}"]
        stats.record(tally, probe, response, kinds)
    pool.shutdown()
    result["long"] = [f"{r.status or r.error} in {r.seconds:.1f} s" for r in answers]
    result["small"] = [f"{r.status or r.error} in {r.seconds:.1f} s" for r in small_answers]
    result["quiet_after_seconds"] = quiesce(port, writer, actors)
    return result


def quiesce(port: int, writer: Writer, actors: Collection, limit: float = 60) -> float | None:
    """Wait until a small write is answered within a second again (the server has finished
    what clients gave up on), so that the next test starts on an idle server."""
    started = time.monotonic()
    url = actors.url(actors.others[0])
    while time.monotonic() - started < limit:
        response = writer.send("PATCH", url, {}, media_type=MERGE_PATCH, if_match="*")
        if response.status == 200 and response.seconds < 1:
            return round(time.monotonic() - started, 1)
    return None


COVERAGE_PROBLEMS = ("no record cites this article", "no record involves this actor")


def export_round_trip(server: Server, out_dir: Path, tally: Tally, stats: WriteStats) -> dict:
    """`flask data export` of what the writes left, then `flask data check` of the export:
    every write keeps the rules of data/ (the export must load again)."""
    flask = [str(VENV_BIN / "flask"), "--app", "api", "data"]
    exported = subprocess.run(
        [*flask, "export", str(out_dir)],
        cwd=server.source,
        env=server.env,
        capture_output=True,
        timeout=300,
    )
    result = {"export": exported.stdout.decode(errors="replace").strip()[-300:]}

    def fail(kind: str, detail: str) -> None:
        probe = WriteProbe("export round trip", f"integrity:{kind}", "CLI", detail, b"")
        probe.category = "integrity"
        stats.record(tally, probe, Response(status=200), [f"export round trip: {kind}"])

    if exported.returncode:
        message = exported.stderr.decode(errors="replace").strip()[-400:]
        result["export_error"] = message
        fail("export failed", message)
        return result
    checked = subprocess.run(
        [*flask, "check"],
        cwd=server.source,
        env={**server.env, "DATA_DIR": str(out_dir)},
        capture_output=True,
        timeout=300,
    )
    lines = (checked.stdout + checked.stderr).decode(errors="replace").splitlines()
    problems_found: Counter[str] = Counter()
    examples: dict[str, str] = {}
    for line in lines:
        match = re.match(r"^([\w.]+): ([^:]+): (.*)$", line.strip())
        if match:
            key = f"{match.group(1)}: {re.sub(r'[0-9a-f]{6,}|\d+', 'N', match.group(3))}"
            problems_found[key] += 1
            examples.setdefault(key, line.strip()[:300])
    result["check_exit"] = checked.returncode
    result["check_problems"] = {k: (n, examples[k]) for k, n in problems_found.most_common()}
    # An article nothing cites yet, an actor nothing involves: `data check` asks a review of
    # data/ to explain them, but the export loads again (dataset.coverage_problems). Unless
    # the export lost links: the served record must have none either.
    for key in problems_found:
        if not key.endswith(COVERAGE_PROBLEMS):
            fail("export fails data check", examples[key])
    for line in lines:
        match = re.match(r"^(articles|actors)\.yaml: ([^:]+): (.*)$", line.strip())
        if match and match.group(3).endswith(COVERAGE_PROBLEMS):
            linked = get(server.port, f"/api/v1/{match.group(1)}/{match.group(2)}/facts")
            if linked.status != 200 or linked.headers.get("x-total-count") != "0":
                fail("export lost links", f"{line.strip()}; served: {linked.status}")
    if checked.returncode and not problems_found:
        fail("data check failed", "\n".join(lines[-5:]))
    return result


def write_section(
    server: Server, pg: PrivatePostgres | None, url: str, tally: Tally, budget: float
) -> dict:
    """Every write operation of the spec, attacked; then races, slow bodies, an outage."""
    port = server.port
    stats = WriteStats()
    out: dict[str, Any] = {}
    admin = create_token(server, "hostile-admin", "admin")
    tokens = {
        "curator": create_token(server, "hostile-curator", "curator"),
        "revoked": create_token(server, "hostile-revoked", "admin"),
    }
    revoke_token(server, "hostile-revoked")
    writer = Writer(port, admin)
    store = Store(url)
    try:
        spec = json.loads(get(port, f"{API}/openapi.json").body)
        cols = write_collections(spec)
        out["operations"] = sorted(op.name for c in cols for op in c.ops.values())
        prepare_collections(port, writer, cols, tally, stats)
        out["victims"] = {c.name: c.victim for c in cols}
        probes = write_probes(spec, cols, writer, tokens, port)
        out["probes"] = len(probes)
        out["probes_by_category"] = dict(Counter(p.category for p in probes))
        started = time.monotonic()
        out["skipped"] = run_write_probes(port, probes, tally, stats, budget)
        out["probe_seconds"] = round(time.monotonic() - started, 1)
        # A hostile DELETE that should work, last: with a 500-character summary.
        for col in cols:
            data = writer.data(
                "DELETE", col.url(col.deletable), None, if_match="*", summary=("é" * 500).encode()
            )
            probe = WriteProbe(
                col.ops["DELETE"].name,
                "edit-summary:valid-delete-500-multibyte",
                "DELETE",
                col.url(col.deletable),
                data,
                category="edit-summary",
            )
            response = exchange(port, data, "DELETE")
            kinds = write_problems(probe, response)
            if response.status != 204 and not kinds:
                kinds = [f"valid DELETE answered {response.status}"]
            stats.record(tally, probe, response, kinds)
            gone = get(port, col.url(col.deletable))
            probe = WriteProbe(
                col.ops["DELETE"].name,
                "edit-summary:gone-after-delete",
                "GET",
                col.url(col.deletable),
                b"",
                category="edit-summary",
            )
            kinds = problems(probe, gone)
            reason = (
                json.loads(gone.body).get("reason")
                if gone.content_type.startswith("application/problem")
                else None
            )
            if gone.status != 410 or reason != "é" * 500:
                kinds.append(
                    f"deleted record: {gone.status}, reason {abbreviate(str(reason), 40)!r}"
                )
            stats.record(tally, probe, gone, kinds)
        out["cors"] = check_preflights(port, cols)
        out["integrity_after_probes"] = integrity(port, store, cols, tally, stats, "after-probes")
        out["repaired_after_probes"] = repair(port, writer, store, cols)
        out["poison"] = poison_check(port, writer, store, cols, tally, stats)
        out["race_same_record"] = race_same_record(port, writer, cols, tally, stats)
        out["race_different_records"] = race_different_records(port, writer, cols, tally, stats)
        out["race_create"] = race_create(port, writer, cols, tally, stats)
        out["race_contradictions"] = race_contradictions(port, writer, cols, tally, stats)
        out["heavy_writers"] = heavy_writers(port, writer, cols, tally, stats)
        out["long_write"] = long_write(port, writer, cols, tally, stats)
        out["slow_bodies"] = slow_bodies(port, writer, cols, tally, stats, server)
        out["integrity_after_races"] = integrity(port, store, cols, tally, stats, "after-races")
        out["attribution_requests"] = attribute(server, tally)
        out["repaired_after_attribution"] = repair(port, writer, store, cols)
        if pg:
            out["db_outage"] = write_outage(server, pg, writer, store, cols, tally, stats)
            out["integrity_after_outage"] = integrity(
                port, store, cols, tally, stats, "after-outage"
            )
        # One write that data/'s rules refuse (a file name over 200 characters), left in place.
        articles = next(c for c in cols if c.record_type == "article")
        body = {
            **articles.post_body,
            "id": "hostile-long-file",
            "title": "Hostile long file name",
            "text": "A text in a file with a long name.",
            "file": "articles/" + "c" * 250 + ".txt",
        }
        data = writer.data("POST", articles.list_url, body, media_type="application/json")
        probe = WriteProbe(
            articles.ops["POST"].name,
            "oversize:file-260-chars-kept",
            "POST",
            articles.list_url,
            data,
            category="oversize",
        )
        response = exchange(port, data, "POST")
        stats.record(tally, probe, response, write_problems(probe, response))
        export_dir = server.log.parent / "export"
        out["export_round_trip"] = export_round_trip(server, export_dir, tally, stats)
    finally:
        store.dispose()
    out["sent_by_category"] = {k: stats.sent[k] for k in WRITE_CATEGORIES if stats.sent[k]}
    out["fails_by_category"] = {k: stats.fails[k] for k in WRITE_CATEGORIES if stats.fails[k]}
    out["statuses_by_category"] = {
        k: dict(stats.statuses[k]) for k in WRITE_CATEGORIES if k in stats.statuses
    }
    out["accepted"] = {k: v for k, v in stats.accepted.items()}
    out["slow_writes"] = sorted(stats.slow, reverse=True)[:20]
    out["unexpected"] = {k: dict(v) for k, v in stats.unexpected.items() if v}
    out["seconds_by_category"] = {k: round(v, 1) for k, v in stats.seconds.items()}
    out["slowest_inputs"] = [(k, round(v, 2)) for k, v in stats.label_seconds.most_common(40)]
    return out


# Report ------------------------------------------------------------------------------------


def report(results: dict, tally: Tally, verbose: bool = False) -> None:
    print(f"\n== hostile pass: backend {results['backend']}, {results['seconds']} s ==")
    code = results["code"]
    print(
        f"code: {code['source']} at {code['head'] or '?'}, {code['changed_app_files']} app files "
        f"changed (diff {code['app_diff_sha1']})"
    )
    if _RUN_IMPORT_ERROR:
        print(f"note: bench/run.py does not import ({_RUN_IMPORT_ERROR}); used a local copy")
    if "operations" in results:
        print(
            f"read operations: {results['operations']}  probes: {results['probes']}  "
            f"skipped for time: {results['skipped']}"
        )
    print(f"total requests: {tally.total}")
    print("by status class: " + ", ".join(f"{k} {v}" for k, v in sorted(tally.by_class.items())))
    kinds = tally.by_kind
    print(
        f"5xx: {kinds['5xx']}  non-JSON errors: {kinds['non-JSON error']}  "
        f"hangs: {kinds['hang']}  no response: {kinds['no response']}  "
        f"truncated: {kinds['truncated response']}  HTML 200: {kinds['HTML 200']}  "
        f"tracebacks: {kinds['traceback in body']}"
    )
    if slow := results.get("slow_clients"):
        print(
            f"slow clients: /healthz max {slow['max_seconds']} s, median "
            f"{slow['median_seconds']} s (100 held connections, "
            f"{slow['held_connections_closed_by_server']} closed by server)"
        )
    if results.get("db_outage"):
        outage = results["db_outage"]
        print(
            "db outage: statuses by phase (by send time; in flight at the stop counts as stopping):"
        )
        for name in ("before", "stopping", "down", "starting", "after"):
            print(f"  {name:9} {outage['statuses_by_phase'].get(name, {})}")
        print("  during the outage, by URL:")
        for url, counts in sorted(outage["down_statuses_by_url"].items()):
            print(f"    {abbreviate(url, 70):70} {counts}")
        print("  first after restart: " + "; ".join(outage["first_after_restart"][:6]))
        print("  logged exceptions by phase (most common):")
        for name, chains in outage["logged_by_phase"].items():
            for chain, count in chains[:3]:
                print(f"    {name:9} {count:4} x {abbreviate(chain, 300)}")
        print(f"  after restart: {outage['after_restart']}")
        print(
            "  quiet restart (no traffic while down), then one request to each of 20 URLs: "
            f"{outage['quiet_restart']}"
        )
        if outage["stop_error"] or outage["start_error"]:
            print(f"  pg_ctl errors: {outage['stop_error']} {outage['start_error']}")
    if results.get("writes"):
        report_writes(results["writes"])
    other = {
        k: v
        for k, v in kinds.items()
        if k
        not in (
            "5xx",
            "non-JSON error",
            "hang",
            "no response",
            "truncated response",
            "HTML 200",
            "traceback in body",
        )
    }
    if other:
        print("other FAILs: " + ", ".join(f"{k} {v}" for k, v in sorted(other.items())))
    log = results["server_log"]
    print(
        f"server log: {log['worker_deaths']} worker deaths, "
        f"{sum(n for _, n in log['exceptions'])} logged exceptions"
    )
    for line, count in log["exceptions"][:10]:
        print(f"  {count:5} x {abbreviate(line, 300)}")
    if log["errors"]:
        print(f"logged ERROR records: {sum(n for _, n in log['errors'])}")
        for line, count in log["errors"][:10]:
            print(f"  {count:5} x {abbreviate(line, 300)}")
    if results["notes"]:
        print("notes (not FAILs):")
        for remark, (count, example) in results["notes"].items():
            print(f"  {count:5} x {remark}; e.g. {example}")
    print(
        f"\nFAIL groups: {len(results['fail_groups'])} from {len(results['fails'])} classes "
        "(one group: same kind, status, content type and logged exception chain)"
    )
    for number, group in enumerate(results["fail_groups"], 1):
        example = group["example"]
        print(
            f"\n{number}. [{group['kind']}] {group['status']} {group['content_type'] or '-'}"
            f"  x{group['count']} responses, {len(group['labels'])} inputs, "
            f"{len(group['operations'])} operations"
        )
        if group["exception_chain"]:
            print(f"   cause: {group['cause']}")
            print("   e.g. logged: " + abbreviate(" -> ".join(group["exception_chain"]), 500))
            if len(group["root_causes"]) > 1:
                roots = group["root_causes"]
                print(f"   first exceptions ({len(roots)}): " + abbreviate(" | ".join(roots), 600))
        print("   inputs: " + abbreviate(compress_labels(group["labels"]), 900))
        print("   operations: " + abbreviate(", ".join(group["operations"]), 400))
        print(f"   e.g. {example['method']} {example['url']}")
        if example.get("request"):
            print(f"     request: {example['request']!r}")
        print(
            f"     -> {example['status'] or example['error']} {example['content_type']!r} "
            f"{example['body']!r}"
        )
    if verbose:
        print(f"\nFAIL classes: {len(results['fails'])}")
        for entry in results["fails"]:
            example = entry["example"]
            print(
                f"- [{entry['kind']}] {entry['status'] or example['error']} "
                f"{entry['content_type'] or '-'} | {entry['label']} | x{entry['count']} | "
                f"{abbreviate(', '.join(entry['operations']), 200)}"
            )
            print(f"    {example['method']} {example['url']}")
            print(f"    -> {example['content_type']!r} {example['body']!r}")


def report_writes(writes: dict) -> None:
    print(
        f"\nwrite section: {len(writes['operations'])} write operations, "
        f"{writes.get('probes', 0)} hostile probes in {writes.get('probe_seconds', '?')} s, "
        f"skipped for time: {writes.get('skipped', 0)}"
    )
    print("  requests, FAILs and statuses by category:")
    for category, sent in writes["sent_by_category"].items():
        fails = writes["fails_by_category"].get(category, 0)
        statuses = writes["statuses_by_category"].get(category, {})
        shown = ", ".join(f"{k} {v}" for k, v in sorted(statuses.items()))
        seconds = writes.get("seconds_by_category", {}).get(category, 0)
        print(
            f"    {category:24} {sent:6}  FAILs {fails:5}  {seconds:7.1f} s  "
            f"{abbreviate(shown, 100)}"
        )
    for category in writes["fails_by_category"]:
        if category not in writes["sent_by_category"]:
            print(f"    {category:24}      -  FAILs {writes['fails_by_category'][category]:5}")
    if writes.get("cors"):
        print("  CORS: " + "; ".join(writes["cors"]))
    for name in ("integrity_after_probes", "integrity_after_races", "integrity_after_outage"):
        if check := writes.get(name):
            print(
                f"  {name}: {check['revisions']} revisions, {check['records_checked']} records "
                f"read, {check['deleted_records']} deleted, {len(check['problems'])} problems"
            )
            for problem in check["problems"][:8]:
                print(f"    - {abbreviate(problem, 200)}")
    for name in ("repaired_after_probes", "repaired_after_attribution"):
        if writes.get(name):
            print(f"  {name}: " + abbreviate("; ".join(writes[name]), 600))
    for name in (
        "poison",
        "race_same_record",
        "race_different_records",
        "race_create",
        "race_contradictions",
        "heavy_writers",
        "long_write",
        "export_round_trip",
    ):
        if name in writes:
            print(f"  {name}: {writes[name]}")
    for count, phase in writes.get("slow_bodies", {}).items():
        print(
            f"  slow bodies ({count} held): /healthz max {phase['healthz_max_seconds']} s; "
            f"a client waiting 40 s: {phase['waiting_client']}; served again after "
            f"{phase['served_again_after_seconds']} s"
        )
        for line in phase["others"]:
            print(f"    {line}")
        for chain, n in phase["logged"]:
            print(f"    logged {n} x {abbreviate(chain, 250)}")
    if outage := writes.get("db_outage"):
        print(
            f"  db outage during writes: {outage.get('writes')} writes, "
            f"{outage.get('answered_2xx')} answered 2xx, {outage.get('applied')} applied; "
            f"revisions {outage.get('revisions_before')} -> {outage.get('revisions_after')}; "
            f"no answer: {outage.get('no_answer')}"
        )
        for name, counts in outage.get("statuses_by_phase", {}).items():
            print(f"    {name:9} {counts}")
    if writes.get("slow_writes"):
        print(
            "  slowest writes (over 2 s): "
            + abbreviate("; ".join(f"{s} s {label}" for s, label in writes["slow_writes"][:8]), 700)
        )
    if writes.get("unexpected"):
        print("  statuses other than the due ones (not FAILs):")
        for category, entries in writes["unexpected"].items():
            shown = "; ".join(f"{k} x{n}" for k, n in list(entries.items())[:12])
            print(f"    {category}: {abbreviate(shown, 900)}")
    accepted = {k: v for k, v in writes.get("accepted", {}).items() if v}
    if accepted:
        print("  accepted (2xx) hostile inputs, by category (not FAILs unless listed above):")
        for category, entries in accepted.items():
            print(f"    {category} ({len(entries)}): {abbreviate('; '.join(entries), 500)}")


def compress_labels(labels: list[str]) -> str:
    """'actor=-1', 'actor=NaN', 'q=x' -> 'actor=[-1, NaN]; q=[x]'."""
    by_name: dict[str, list[str]] = defaultdict(list)
    for label in labels:
        match = re.match(r"^([\w-]+)=(.*)$", label)
        name, value = match.groups() if match else (label, "")
        by_name[name].append(value)
    return "; ".join(
        f"{name}=[{', '.join(values)}]" if any(values) else name for name, values in by_name.items()
    )


def fail_groups(classes: list[dict]) -> list[dict]:
    groups: dict[tuple, dict] = {}
    for entry in classes:
        status = entry["status"] or entry["example"]["error"]
        ctype = entry["content_type"].split(";")[0]
        key = (entry["kind"], str(status), ctype, entry.get("cause", "not re-sent"))
        group = groups.setdefault(
            key,
            {
                "kind": entry["kind"],
                "status": status,
                "content_type": ctype,
                "cause": entry.get("cause", "not re-sent (attribution budget)"),
                "exception_chain": entry.get("exception_chain", []),
                "root_causes": [],
                "count": 0,
                "labels": [],
                "operations": [],
                "example": entry["example"],
            },
        )
        group["count"] += entry["count"]
        group["labels"].append(entry["label"])
        if entry.get("root_cause") and entry["root_cause"] not in group["root_causes"]:
            group["root_causes"].append(entry["root_cause"])
        group["operations"] += [op for op in entry["operations"] if op not in group["operations"]]
    return list(groups.values())


def code_state(source: Path) -> dict:
    """Which code was served: the commit and a digest of uncommitted changes to the app."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=source, capture_output=True, timeout=30)
        return done.stdout.decode(errors="replace")

    paths = ["api", "schemas", "gunicorn.conf.py"]
    changed = git("status", "--porcelain", "--", *paths).splitlines()
    digest = hashlib.sha1(git("diff", "HEAD", "--", *paths).encode()).hexdigest()[:12]
    return {
        "source": str(source),
        "head": git("rev-parse", "--short", "HEAD").strip(),
        "changed_app_files": len(changed),
        "app_diff_sha1": digest,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--json", metavar="PATH", help="also write the results here")
    parser.add_argument("--budget", type=float, default=100, help="seconds for the probes")
    parser.add_argument(
        "--write-budget",
        type=float,
        default=WRITE_BUDGET,
        help="seconds for the hostile write probes",
    )
    parser.add_argument("--skip-reads", action="store_true", help="only the write section")
    parser.add_argument("--skip-writes", action="store_true", help="only the read section")
    parser.add_argument("--verbose", action="store_true", help="print every FAIL class too")
    parser.add_argument("--keep-log", metavar="PATH", help="copy gunicorn's log here")
    parser.add_argument(
        "--source",
        type=Path,
        default=PROJECT_DIR,
        help="serve the app from this checkout instead (with this project's virtualenv)",
    )
    args = parser.parse_args(argv)

    started = time.monotonic()
    tally = Tally()
    results: dict = {"backend": args.backend, "code": code_state(args.source.resolve())}
    with tempfile.TemporaryDirectory(prefix="hostile-") as tmp:
        pg = PrivatePostgres() if args.backend == "postgresql" else None
        server = None
        try:
            if pg:
                pg.init()
                pg.start()
                url = pg.url
            else:
                url = f"sqlite:///{tmp}/h.sqlite3"
            server = Server(url, Path(tmp) / "gunicorn.log", args.source.resolve())
            server.load_data()
            server.start()
            port = server.port
            if not args.skip_reads:
                ops = operations(port)
                probes, seen = raw_probes(port), Counter()
                for op in ops:
                    probes += request_probes(op, port, seen)
                for op in ops:
                    probes += parameter_probes(op, port, seen)
                probes = in_tiers(probes)
                results["operations"] = len(ops)
                results["probes"] = len(probes)
                results["skipped"] = run_probes(port, probes, tally, args.budget)
                results["slow_clients"] = slow_clients(port, tally)
                results["attribution_requests"] = attribute(server, tally)
                if pg:
                    results["db_outage"] = db_outage(server, pg, ops, tally)
            if not args.skip_writes:
                results["writes"] = write_section(server, pg, url, tally, args.write_budget)
        finally:
            if server:
                server.stop()
            if pg:
                pg.cleanup()
        results["server_log"] = server.log_findings() if server else {}
        if server and args.keep_log:
            shutil.copyfile(server.log, args.keep_log)
    results["seconds"] = round(time.monotonic() - started, 1)
    results["total_requests"] = tally.total
    results["by_status_class"] = dict(tally.by_class)
    results["fail_counts"] = dict(tally.by_kind)
    results["notes"] = {k: (n, tally.note_examples[k]) for k, n in tally.notes.most_common()}
    order = {"5xx": 0, "non-JSON error": 1, "hang": 2, "no response": 3, "truncated response": 4}
    results["fails"] = sorted(
        tally.classes.values(),
        key=lambda e: (order.get(e["kind"], 9), e["kind"], str(e["status"]), e["label"]),
    )
    for entry in results["fails"]:
        entry.pop("_probe", None)
    results["fail_groups"] = fail_groups(results["fails"])
    report(results, tally, args.verbose)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, ensure_ascii=False))
    failed = tally.fail_count()
    print(
        f"\n{'FAIL' if failed else 'PASS'}: {failed} failing responses in "
        f"{len(results['fails'])} classes"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

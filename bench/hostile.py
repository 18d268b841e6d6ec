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

One example of each class of FAIL is then sent again, alone, to read the exceptions it logged,
so that the summary groups the FAILs by cause. Prints counts and one example per group; exits
1 on any FAIL. --source DIR serves another checkout (a worktree) with this virtualenv;
--keep-log keeps gunicorn's log; --budget bounds the seconds spent on the probes.
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
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

import run  # bench/run.py: held_connections

PROJECT_DIR = Path(__file__).resolve().parent.parent
VENV_BIN = PROJECT_DIR / ".venv" / "bin"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
API = "/api/v1"
DOCS_PAGE = f"{API}/docs"
LOCALHOST = "127.0.0.1"
TIMEOUT = 10.0  # no complete response within this: a hang
SLOW_LIMIT = 1.0  # /healthz while slow clients hold connections
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
            start = max(self.pos, len(self.data) - len(marker) + 1)
            if self.eof or not self._fill():
                return None
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
                        },
                    }
                entry["count"] += 1
                if probe.group not in entry["operations"]:
                    entry["operations"].append(probe.group)

    def fail_count(self) -> int:
        return sum(self.by_kind.values())


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
            if param["in"] == "path":
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
        if entry["kind"] in ATTRIBUTED and entry["_probe"].data:
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
    return sent


def slow_clients(port: int, tally: Tally) -> dict:
    """50 half-open and 50 idle connections held while /healthz is timed 20 times."""
    with run.held_connections(port, partial=50, idle=50) as answered_or_closed:
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


# Report ------------------------------------------------------------------------------------


def report(results: dict, tally: Tally, verbose: bool = False) -> None:
    print(f"\n== hostile pass: backend {results['backend']}, {results['seconds']} s ==")
    code = results["code"]
    print(
        f"code: {code['source']} at {code['head'] or '?'}, {code['changed_app_files']} app files "
        f"changed (diff {code['app_diff_sha1']})"
    )
    print(
        f"operations: {results['operations']}  probes: {results['probes']}  "
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
    slow = results["slow_clients"]
    print(
        f"slow clients: /healthz max {slow['max_seconds']} s, median {slow['median_seconds']} s "
        f"(100 held connections, {slow['held_connections_closed_by_server']} closed by server)"
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

"""Real requests and responses for the README, written into it by cog.

README.md holds `[[[cog ... ]]]` blocks (inside HTML comments) that call these functions;
`cog -r README.md` fills in their output and `cog --check README.md` (in `make lint`) fails
when the README no longer shows what the app answers. Each block prints what you would see
with curl (or the `flask` command) against `make run`:

    cog.out(console(curl("/api/v1/decrees?page_size=1", headers=["Link"], items=1)))

Each example database is made once per cog run: a fresh temporary SQLite file, seeded with
the shipped data/ through the CLI (`flask data load`), exactly as tests/conftest.py does, and
queried with Flask's test client, so no server or network is involved. `curl` and `etag`
read the shipped dataset, which no example changes; the examples that write (a token, then
POST, PATCH, DELETE...; loads and exports) work on databases of their own, such as
`database("curation")` or the unseeded `database("fresh", seeded=False)`, so that the read
examples show exactly what `make run` serves, whatever order the README puts them in:

    desk = database("curation")
    cog.out(console(desk.flask("tokens", "create", "--name", "alice", token="TOKEN")))
    cog.out(console(desk.curl("/api/v1/events", method="POST", token="TOKEN", json_body={...})))

What would change from one run to the next is made stable or left out, so that the check
passes on any fresh clone:
- headers are shown only when asked for by name (no Date, no Server);
- request ids are generated per request: a `request_id` in a body, or an `X-Request-Id`
  header, is shown only when it is the id the example itself sent, else as `…`;
- the app's clock (api.models.utcnow, behind every stored time: revisions, new records'
  `created_at` and `updated_at`, tokens, tombstones) reads SEED_TIME while a database is
  seeded, then the time an example gives with `at=`; the shipped records keep the times
  data/timestamps.yaml gives them;
- tokens are random: each is shown as `cft_…` and sent as `$TOKEN` (or the shell variable
  it was given);
- a revision's JSON Patch is made by api.records.diff, in the record's own key order, the same
  in every process: the change feed shows it as stored; the History example sorts its
  operations by path (`tidy=patches_by_path`), which reads more easily (they touch different
  paths, so any order applies alike);
- the rest is deterministic on a fresh database: the dataset's revision is the number of
  changes made to it, one per record imported by the seeding load (then one more per record
  each write changes), and a record's ETag derives from its type, id and version.

A mirror is a database of its own, served at another base URL (`database("mirror",
seeded=False, base_url=MIRROR_URL, env=...)`); its `flask mirror pull BASE_URL` reaches the
origin through api.mirror's own code, whose urllib.request.urlopen (and only that module's)
asks the origin database's app instead of the network (Database.flask's `origin=`):

    cog.out(console(mirror.flask("mirror", "pull", BASE_URL, origin=origin)))
"""

import atexit
import datetime as dt
import hashlib
import io
import json
import os
import re
import shlex
import shutil
import sys
import tempfile
import types
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from functools import cache, cached_property
from pathlib import Path
from typing import Any

from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
# This checkout's packages, before any other install of them (an editable install elsewhere).
sys.path.insert(0, str(ROOT))

import api  # noqa: E402
import api.mirror  # noqa: E402
import api.models  # noqa: E402
from api import create_app  # noqa: E402

if Path(api.__file__).resolve().parent.parent != ROOT:
    raise ImportError(f"api was imported from {api.__file__}, not from this checkout, {ROOT}")

BASE_URL = "http://127.0.0.1:8000"  # where `make run` serves
MIRROR_URL = "http://127.0.0.1:8001"  # where the README's mirror serves
FLASK = [".venv/bin/flask", "--app", "api"]  # the command line the examples show
SEED_TIME = dt.datetime(2026, 12, 3, 8, 0, tzinfo=dt.UTC)  # when the example databases are seeded
ELLIPSIS = "…"
TOKEN_SHOWN = "cft_" + ELLIPSIS
JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
WIDTH = 100  # JSON lists and objects that fit in this many characters stay on one line
_MARK = "\x00elided\x00"  # stands for elided content until the JSON is written out
_COLLAPSED_LIST = "\x00[…]\x00"  # a list, and an object, nested too deep to show
_COLLAPSED_DICT = "\x00{…}\x00"


class _Clock(dt.datetime):
    """The datetime class the app's utcnow() sees: now() is the examples' time."""

    time = SEED_TIME

    @classmethod
    def now(cls, tz=None):
        return cls.time.astimezone(tz) if tz else cls.time.replace(tzinfo=None)


def _install_clock() -> None:
    """api.models.utcnow() calls `dt.datetime.now(dt.UTC)`: give that module a `dt` whose
    datetime is _Clock (only api.models' name is rebound, not the standard library)."""
    shim = types.ModuleType("datetime")
    shim.__dict__.update(vars(dt))
    shim.datetime = _Clock
    api.models.dt = shim


_install_clock()


def _set_clock(at: str | None) -> None:
    if at is not None:
        when = dt.datetime.fromisoformat(at)
        if when.tzinfo is None:
            raise ValueError(f"at={at!r}: give a time zone (e.g. +00:00)")
        _Clock.time = when


class Database:
    """One example database, seeded with the shipped dataset when first used, and the
    tokens created in it (shell variable -> token).

    base_url: where its app is shown to serve (and what its Link headers are relative to).
    env: the environment its `flask` commands are shown with (`DATABASE_URL=...`).
    """

    def __init__(
        self,
        name: str,
        seeded: bool = True,
        own_data: bool = False,
        base_url: str = BASE_URL,
        env: str = "",
    ):
        self.name, self.seeded, self.own_data = name, seeded, own_data
        self.base_url, self.env = base_url, env
        self.tokens: dict[str, str] = {}

    @cached_property
    def tmp(self) -> Path:
        tmp = Path(tempfile.mkdtemp(prefix=f"readme-examples-{self.name}-"))
        atexit.register(shutil.rmtree, tmp, ignore_errors=True)
        return tmp

    @cached_property
    def app(self):
        """The app on a new SQLite database, holding the shipped dataset unless not `seeded`.

        DATA_DIR is the shipped data/, or with `own_data` a copy of it, `data/` in the
        database's folder, that examples may change. Every other setting is `make run`'s
        default (PUBLIC_BASE_URL unset, CORS_ORIGINS *).
        """
        data_dir = ROOT / "data"
        if self.own_data:
            data_dir = Path(shutil.copytree(data_dir, self.tmp / "data"))
        flask_app = create_app(
            {
                "TESTING": True,
                "DATABASE_URL": f"sqlite:///{self.tmp / 'facts.sqlite3'}",
                "DATA_DIR": data_dir,
            }
        )
        atexit.register(lambda: flask_app.extensions["db"].kw["bind"].dispose())
        if not self.seeded:
            return flask_app
        time, _Clock.time = _Clock.time, SEED_TIME
        try:
            result = flask_app.test_cli_runner().invoke(args=["data", "load"])
        finally:
            _Clock.time = time
        if result.exit_code != 0:
            raise RuntimeError(f"flask data load failed:\n{result.output}")
        return flask_app

    def request(
        self,
        path: str,
        send: dict[str, str] | None = None,
        method: str = "GET",
        data: bytes | None = None,
    ):
        """The app's response to `method path` with the request headers `send` and body `data`."""
        # As a server hands them to the app: the bytes curl sends (UTF-8), read as Latin-1.
        headers = {name: value.encode().decode("latin-1") for name, value in (send or {}).items()}
        client = self.app.test_client()
        return client.open(path, method=method, headers=headers, data=data, base_url=self.base_url)

    def etag(self, path: str) -> str:
        """The ETag of a GET of `path`: what a conditional request or a write sends."""
        return self.request(path).headers["ETag"]

    def curl(self, path: str, **options) -> str:
        """curl() on this database."""
        return curl(path, db=self, **options)

    def flask(
        self,
        *args: str,
        token: str | None = None,
        at: str | None = None,
        status: int = 0,
        note: str | None = None,
        origin: "Database | None" = None,
    ) -> str:
        """A `flask --app api` command and its real output, as a terminal shows them.

        token: the command prints a new token on its last line; it is kept as the shell
        variable of that name (for curl's `token=`) and shown as `cft_…`. at: the app's
        clock while it runs; it stays there. status: the exit status it must end with.
        Relative paths in `args` are inside this database's temporary folder (`data` is
        DATA_DIR with `own_data`). note: a comment after the command.
        origin: the database that answers what the command asks of the origin's base URL
        (`mirror pull`); any other URL is refused, as by a port nobody listens on.
        """
        _set_clock(at)
        if origin is not None:
            # Its app is made (and seeded) first: its own `data load` must not run inside
            # this command, whose app context (and lock file) Flask's CLI would reuse.
            _ = origin.app
            _ORIGINS[origin.base_url] = origin
        cwd = Path.cwd()
        os.chdir(self.tmp)
        try:
            result = self.app.test_cli_runner().invoke(args=list(args))
        finally:
            os.chdir(cwd)
            _ORIGINS.clear()
        if result.exit_code != status:
            raise RuntimeError(
                f"flask {shlex.join(args)}: exit {result.exit_code}\n{result.output}"
            )
        if token is not None:
            self.tokens[token] = result.output.strip().splitlines()[-1]
        output = result.output
        for secret in self.tokens.values():
            output = output.replace(secret, TOKEN_SHOWN)
        shown = shlex.join([*FLASK, *args]) + (f"    # {note}" if note else "")
        return f"$ {self.env + ' ' if self.env else ''}{shown}\n{output}"


_ORIGINS: dict[str, Database] = {}  # base URL -> the database serving it, during a command


def _urlopen(request: urllib.request.Request, timeout: float | None = None):
    """urllib.request.urlopen as api.mirror sees it: the example database serving the URL
    answers through its test client; an error status raises HTTPError, as urlopen does."""
    url = request.full_url
    served = [(base, db) for base, db in _ORIGINS.items() if url.startswith(base + "/")]
    if not served:
        raise urllib.error.URLError(ConnectionRefusedError(111, "Connection refused"))
    base_url, origin = served[0]
    response = origin.request(url[len(base_url) :], dict(request.header_items()))
    body = response.get_data()
    if response.status_code >= 400:
        status = response.status.partition(" ")[2]
        raise urllib.error.HTTPError(url, response.status_code, status, None, io.BytesIO(body))
    answer = io.BytesIO(body)  # iterated by lines, and closed by `with`, as urlopen's answer is
    answer.headers = response.headers  # and its headers (Dataset-Seq), as urlopen's has
    return answer


def _install_network() -> None:
    """api.mirror reaches its origin with `urllib.request.urlopen`: give that module a
    `urllib` whose urlopen is _urlopen (only api.mirror's name is rebound)."""
    request = types.ModuleType("urllib.request")
    request.__dict__.update(vars(urllib.request))
    request.urlopen = _urlopen
    shim = types.ModuleType("urllib")
    shim.request, shim.error, shim.parse = request, urllib.error, urllib.parse
    api.mirror.urllib = shim


_install_network()


SHIPPED = Database("shipped")


@cache
def database(
    name: str,
    *,
    seeded: bool = True,
    own_data: bool = False,
    base_url: str = BASE_URL,
    env: str = "",
) -> Database:
    """An example database of its own, for examples that change it (see Database)."""
    return Database(name, seeded, own_data, base_url, env)


def request(path: str, send: dict[str, str] | None = None, method: str = "GET"):
    """The response of the shipped dataset's app to `method path` with the headers `send`."""
    return SHIPPED.request(path, send, method)


def etag(path: str) -> str:
    """The ETag of a GET of `path` on the shipped dataset, to show a conditional request."""
    return SHIPPED.etag(path)


def curl(
    path: str,
    *,
    headers: list[str] | None = None,
    send: dict[str, str] | None = None,
    method: str = "GET",
    json_body: Any = None,
    token: str | None = None,
    at: str | None = None,
    body: bool = True,
    items: int | None = 3,
    keys: list[str] | None = None,
    chars: int | None = None,
    levels: int | None = None,
    grep: str | None = None,
    lines: int | None = None,
    tail: int | None = None,
    width: int | None = None,
    note: str | None = None,
    tidy: Callable[[Any], Any] | None = None,
    db: Database = SHIPPED,
) -> str:
    """A curl command and the app's real answer to it, as a terminal shows them.

    headers: response headers to show, by name, after the status line; None shows the body
    only (`curl -s`), [] the status line and the body.
    send: request headers. method: GET, HEAD, POST, PUT, PATCH or DELETE.
    json_body: a request body, sent as JSON (`application/merge-patch+json` for PATCH unless
    `send` gives a Content-Type) and shown pretty-printed after `-d`.
    token: the shell variable of a token made by Database.flask(token=...): sent as
    `Authorization: Bearer <token>`, shown as `"Authorization: Bearer $TOKEN"`.
    at: the app's clock while it answers (ISO 8601 with a time zone); it stays there.
    body=False: the status line and headers only.
    JSON bodies are pretty-printed and shortened, each elision marked with `…`: at most
    `items` elements in any list, only `keys` in the record (or in each record of a list),
    strings cut after `chars` characters, lists and objects nested more than `levels` deep
    (the record is level 1) shown as `[…]` or `{…}`.
    Other bodies are shown as the shell would shorten them, and the command says so:
    `grep` (an extended regular expression) keeps the matching lines, `lines` the first ones
    (`head -n`), `tail` the last ones (`tail -n`), `width` the first characters of each
    (`cut -c`).
    note: a comment after the command.
    tidy: applied to a JSON body before it is shortened (patches_by_path, record_fields).
    db: the database that answers (the shipped dataset unless a Database.curl calls).
    """
    send = dict(send or {})
    data = None
    if json_body is not None:
        send.setdefault("Content-Type", MERGE_PATCH if method == "PATCH" else JSON)
        data = json.dumps(json_body, ensure_ascii=False).encode()
    sent = dict(send)
    if token is not None:
        sent = {"Authorization": f"Bearer {db.tokens[token]}", **send}
    _set_clock(at)
    response = db.request(path, sent, method, data)
    sent_id = send.get("X-Request-Id")

    if method == "HEAD":
        command = ["curl", "-sI"]
    elif not body:
        command = ["curl", "-s", "-D", "-", "-o", "/dev/null"]
    else:
        command = ["curl", "-s" if headers is None else "-si"]
    if method not in ("GET", "HEAD") and not (method == "POST" and data is not None):
        command += ["-X", method]  # curl -d sends a POST by itself
    options = [f'-H "Authorization: Bearer ${token}"'] if token is not None else []
    options += [shlex.join(["-H", f"{name}: {value}"]) for name, value in send.items()]
    if data is not None:
        options.append("-d " + shlex.quote(_pretty(json_body, "    ").lstrip()))
    url = shlex.quote(db.base_url + path)
    if method in ("GET", "HEAD"):
        shown = " ".join([shlex.join(command), *options, url])
    else:  # a write: one option a line
        shown = " \\\n    ".join([f"{shlex.join(command)} {url}", *options])
    if grep:
        shown += f" | grep -E {shlex.quote(grep)}"
    if lines:
        shown += f" | head -n {lines}"
    if tail:
        shown += f" | tail -n {tail}"
    if width:
        shown += f" | cut -c1-{width}"
    if note:
        shown += f"    # {note}"

    out = [f"$ {shown}"]
    if headers is not None or method == "HEAD" or not body:
        out.append(f"HTTP/1.1 {response.status}")
        for name in headers or []:
            for value in response.headers.getlist(name):
                if name.lower() == "x-request-id" and value != sent_id:
                    value = ELLIPSIS
                out.append(f"{name}: {value}")
    text = response.get_data(as_text=True) if method != "HEAD" and body else ""
    if text:
        if headers is not None:
            out.append("")
        if response.is_json:
            data = json.loads(text)
            if isinstance(data, dict) and "request_id" in data and data["request_id"] != sent_id:
                data["request_id"] = ELLIPSIS
            if tidy is not None:
                data = tidy(data)
            records = 1 if isinstance(data, list) else 0  # the depth at which `keys` applies
            max_depth = None if levels is None else records + levels - 1
            out.append(_pretty(_shorten(data, items, keys, chars, max_depth, records, depth=0)))
        else:
            shown_lines = text.splitlines()
            if grep:
                shown_lines = [line for line in shown_lines if re.search(grep, line)]
            if lines:
                shown_lines = shown_lines[:lines]
            if tail:
                shown_lines = shown_lines[-tail:]
            if width:
                shown_lines = [line[:width] for line in shown_lines]
            out += shown_lines
    return "\n".join(out) + "\n"


def patches_by_path(revisions: list[dict]) -> list[dict]:
    """Revisions with the operations of each patch in path order (see the module's notes)."""
    return [
        {**r, "patch": sorted(r["patch"], key=lambda op: op["path"])} if "patch" in r else r
        for r in revisions
    ]


def record_fields(*names: str) -> Callable[[Any], Any]:
    """A `tidy` for changes (/changes, a snapshot's lines): only the fields `names` of each
    change's `record`, the others elided (`…`); every field of the change itself is kept."""

    def tidy(changes):
        if isinstance(changes, dict):
            return tidy([changes])[0]
        shown = []
        for change in changes:
            record = change.get("record")
            if isinstance(record, dict):
                kept = {name: record[name] for name in names if name in record}
                if len(kept) < len(record):
                    kept[_MARK] = None
                change = {**change, "record": kept}
            shown.append(change)
        return shown

    return tidy


def checksum(path: str, file: str, db: Database = SHIPPED) -> str:
    """A snapshot saved with curl, and the SHA-256 of its lines but the last (the manifest),
    as `sed '$d' FILE | sha256sum` prints it, from the app's real answer to `path`."""
    body = db.request(path).get_data()
    lines = body.splitlines(keepends=True)
    digest = hashlib.sha256(b"".join(lines[:-1])).hexdigest()
    fetch = shlex.join(["curl", "-s", "-o", file, db.base_url + path])
    return f"$ {fetch}\n$ sed '$d' {file} | sha256sum\n{digest}  -\n"


def stored_bytes(
    db: Database = SHIPPED, record_type: str | None = None, seq: int | None = None
) -> tuple[int, int, int]:
    """What revisions cost: how many there are (of `record_type`, or the one numbered `seq`),
    and the bytes of JSON their records and their patches take in the SQLite database."""
    query = (
        "SELECT count(*), coalesce(sum(length(CAST(record AS BLOB))), 0),"
        " coalesce(sum(length(CAST(patch AS BLOB))), 0) FROM revisions"
        " WHERE (:type IS NULL OR record_type = :type) AND (:seq IS NULL OR seq = :seq)"
    )
    with db.app.extensions["db"]() as session:
        count, record, patch = session.execute(text(query), {"type": record_type, "seq": seq}).one()
    return count, record, patch


def console(*examples: str) -> str:
    """Examples from curl() in one fenced block, a blank line between them.

    Trailing spaces are dropped (a `cut` can leave one), so that no editor's clean-up makes
    the README differ from cog's output.
    """
    lines = "\n".join(examples).splitlines()
    return "```console\n" + "".join(line.rstrip() + "\n" for line in lines) + "```\n"


def _shorten(value, items, keys, chars, max_depth, records, depth):
    """`value` with the elisions curl() describes; `max_depth`: containers deeper collapse."""
    if isinstance(value, list | dict) and value and max_depth is not None and depth > max_depth:
        return _COLLAPSED_LIST if isinstance(value, list) else _COLLAPSED_DICT
    if isinstance(value, list):
        kept = [
            _shorten(v, items, keys, chars, max_depth, records, depth + 1) for v in value[:items]
        ]
        if items is not None and len(value) > items:
            kept.append(_MARK)
        return kept
    if isinstance(value, dict):
        record = keys is not None and depth == records
        kept = {
            k: _shorten(v, items, keys, chars, max_depth, records, depth + 1)
            for k, v in value.items()
            if not record or k in keys
        }
        if record and len(kept) < len(value):
            kept[_MARK] = None
        return kept
    if isinstance(value, str) and chars is not None and len(value) > chars:
        return value[:chars] + ELLIPSIS
    return value


def _pretty(data, indent: str = "", prefix: str = "") -> str:
    """Indented JSON; a list or object that fits on its line stays on it. `…` marks elisions."""
    if data == _MARK:
        return indent + ELLIPSIS
    inline = prefix + _inline(data)
    if not isinstance(data, list | dict) or len(indent + inline) <= WIDTH or not data:
        return indent + inline
    inner = indent + "  "
    if isinstance(data, list):
        parts = [_pretty(v, inner) for v in data]
        brackets = "[]"
    else:
        parts = [
            inner + ELLIPSIS if k == _MARK else _pretty(v, inner, json.dumps(k) + ": ")
            for k, v in data.items()
        ]
        brackets = "{}"
    body = ",\n".join(parts)
    return f"{indent}{prefix}{brackets[0]}\n{body}\n{indent}{brackets[1]}"


def _inline(data) -> str:
    if data == _MARK:
        return ELLIPSIS
    if data in (_COLLAPSED_LIST, _COLLAPSED_DICT):
        return data.strip("\x00")
    if isinstance(data, list):
        return "[" + ", ".join(_inline(v) for v in data) + "]"
    if isinstance(data, dict):
        items = (
            ELLIPSIS if k == _MARK else f"{json.dumps(k)}: {_inline(v)}" for k, v in data.items()
        )
        return "{" + ", ".join(items) + "}"
    return json.dumps(data, ensure_ascii=False)

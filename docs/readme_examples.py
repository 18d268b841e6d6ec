"""Real requests and responses for the README, written into it by cog.

README.md holds `[[[cog ... ]]]` blocks (inside HTML comments) that call these functions;
`cog -r README.md` fills in their output and `cog --check README.md` (in `make lint`) fails
when the README no longer shows what the app answers. Each block prints what you would see
with curl against `make run`:

    cog.out(console(curl("/api/v1/decrees?page_size=1", headers=["Link"], items=1)))

The app is built once per cog run: a fresh temporary SQLite database, loaded with the shipped
data/ through the CLI (`flask data load`), exactly as tests/conftest.py does, and queried with
Flask's test client, so no server or network is involved.

What would change from one run to the next is made stable or left out, so that the check
passes on any fresh clone:
- headers are shown only when asked for by name (no Date, no Server);
- request ids are generated per request: a `request_id` in a body, or an `X-Request-Id`
  header, is shown only when it is the id the example itself sent, else as `…`;
- the stored `created_at` / `updated_at` timestamps are pinned to EXAMPLE_TIME after the load
  (the dataset's revision, which ETags derive from, is 1 on a fresh database either way).
"""

import atexit
import datetime as dt
import json
import re
import shlex
import shutil
import sys
import tempfile
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# This checkout's packages, before any other install of them (an editable install elsewhere).
sys.path.insert(0, str(ROOT))

from sqlalchemy import update  # noqa: E402

import api  # noqa: E402
from api import create_app  # noqa: E402
from api.db import db  # noqa: E402
from api.models import Base, UTCDateTime  # noqa: E402

if Path(api.__file__).resolve().parent.parent != ROOT:
    raise ImportError(f"api was imported from {api.__file__}, not from this checkout, {ROOT}")

BASE_URL = "http://127.0.0.1:8000"  # where `make run` serves
EXAMPLE_TIME = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
ELLIPSIS = "…"
WIDTH = 100  # JSON lists and objects that fit in this many characters stay on one line
_MARK = "\x00elided\x00"  # stands for elided content until the JSON is written out


@cache
def app():
    """The app on a new SQLite database holding the shipped dataset (once per cog run).

    Every other setting is `make run`'s default (PUBLIC_BASE_URL unset, CORS_ORIGINS *).
    """
    tmp = Path(tempfile.mkdtemp(prefix="readme-examples-"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    flask_app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": f"sqlite:///{tmp / 'facts.sqlite3'}",
            "DATA_DIR": ROOT / "data",
        }
    )
    atexit.register(lambda: flask_app.extensions["db"].kw["bind"].dispose())
    result = flask_app.test_cli_runner().invoke(args=["data", "load"])
    if result.exit_code != 0:
        raise RuntimeError(f"flask data load failed:\n{result.output}")
    with flask_app.app_context(), db.transaction() as session:
        for table in Base.metadata.sorted_tables:
            stamps = {c.name: EXAMPLE_TIME for c in table.c if isinstance(c.type, UTCDateTime)}
            if stamps:
                session.execute(update(table).values(stamps))
    return flask_app


def request(path: str, send: dict[str, str] | None = None, method: str = "GET"):
    """The app's response to `method path` with the request headers `send`."""
    client = app().test_client()
    return client.open(path, method=method, headers=send or {}, base_url=BASE_URL)


def etag(path: str) -> str:
    """The ETag of a GET of `path`, to show a conditional request."""
    return request(path).headers["ETag"]


def curl(
    path: str,
    *,
    headers: list[str] | None = None,
    send: dict[str, str] | None = None,
    method: str = "GET",
    body: bool = True,
    items: int | None = 3,
    keys: list[str] | None = None,
    chars: int | None = None,
    grep: str | None = None,
    lines: int | None = None,
    width: int | None = None,
    note: str | None = None,
) -> str:
    """A curl command and the app's real answer to it, as a terminal shows them.

    headers: response headers to show, by name, after the status line; None shows the body
    only (`curl -s`), [] the status line and the body.
    send: request headers. method: GET or HEAD. body=False: the status line and headers only.
    JSON bodies are pretty-printed and shortened, each elision marked with `…`: at most
    `items` elements in any list, only `keys` in the record (or in each record of a list),
    strings cut after `chars` characters.
    Other bodies are shown as the shell would shorten them, and the command says so:
    `grep` (an extended regular expression) keeps the matching lines, `lines` the first ones
    (`head -n`), `width` the first characters of each (`cut -c`).
    note: a comment after the command.
    """
    response = request(path, send, method)
    sent_id = (send or {}).get("X-Request-Id")
    if method == "HEAD":
        command = ["curl", "-sI"]
    elif not body:
        command = ["curl", "-s", "-D", "-", "-o", "/dev/null"]
    else:
        command = ["curl", "-s" if headers is None else "-si"]
    for name, value in (send or {}).items():
        command += ["-H", f"{name}: {value}"]
    command.append(BASE_URL + path)
    shown = shlex.join(command)
    if grep:
        shown += f" | grep -E {shlex.quote(grep)}"
    if lines:
        shown += f" | head -n {lines}"
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
            records = 1 if isinstance(data, list) else 0  # the depth at which `keys` applies
            out.append(_pretty(_shorten(data, items, keys, chars, records, depth=0)))
        else:
            shown_lines = text.splitlines()
            if grep:
                shown_lines = [line for line in shown_lines if re.search(grep, line)]
            if lines:
                shown_lines = shown_lines[:lines]
            if width:
                shown_lines = [line[:width] for line in shown_lines]
            out += shown_lines
    return "\n".join(out) + "\n"


def console(*examples: str) -> str:
    """Examples from curl() in one fenced block, a blank line between them.

    Trailing spaces are dropped (a `cut` can leave one), so that no editor's clean-up makes
    the README differ from cog's output.
    """
    lines = "\n".join(examples).splitlines()
    return "```console\n" + "".join(line.rstrip() + "\n" for line in lines) + "```\n"


def _shorten(value, items, keys, chars, records, depth):
    if isinstance(value, list):
        kept = [_shorten(v, items, keys, chars, records, depth + 1) for v in value[:items]]
        if items is not None and len(value) > items:
            kept.append(_MARK)
        return kept
    if isinstance(value, dict):
        record = keys is not None and depth == records
        kept = {
            k: _shorten(v, items, keys, chars, records, depth + 1)
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
    if isinstance(data, list):
        return "[" + ", ".join(_inline(v) for v in data) + "]"
    if isinstance(data, dict):
        items = (
            ELLIPSIS if k == _MARK else f"{json.dumps(k)}: {_inline(v)}" for k, v in data.items()
        )
        return "{" + ", ".join(items) + "}"
    return json.dumps(data, ensure_ascii=False)

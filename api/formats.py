"""CSV and NDJSON (and JSON array) streams of any schema's records, written row by row."""

import csv
import io
import time
from collections.abc import Iterable, Iterator
from functools import cache

import marshmallow as ma
import orjson
from flask import Response, stream_with_context

from .smorest import FORMAT_MIMETYPES

CHUNK = 64 * 1024  # bytes per write of a streamed response


def csv_columns(schema: ma.Schema, prefix: str = "") -> list[str]:
    """Column names: nested objects flattened with dots (`date.value`), lists kept whole."""
    columns = []
    for name, field in schema.dump_fields.items():
        if isinstance(field, ma.fields.Nested) and not field.many:
            columns += csv_columns(field.schema, f"{prefix}{name}.")
        else:
            columns.append(prefix + name)
    return columns


@cache
def _columns(schema_class: type[ma.Schema]) -> list[str]:
    return csv_columns(schema_class())


def _cell(record: dict, column: str) -> str:
    value = record
    for part in column.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):  # lists of ids are joined; richer values stay JSON
        if all(isinstance(item, str) for item in value) and isinstance(value, list):
            return ";".join(value)
        return orjson.dumps(value).decode()
    return str(value)


def _line(cells: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(cells)
    return buffer.getvalue()


def csv_line(schema: ma.Schema, record: dict) -> str:
    """The record (as `schema` dumps it) as a line of that schema's CSV, with its line end."""
    return _line([_cell(record, column) for column in _columns(type(schema))])


def csv_header(schema: ma.Schema) -> bytes:
    return _line(_columns(type(schema))).encode()


def _csv(schema: ma.Schema, rows: Iterable) -> Iterator[bytes]:
    yield csv_header(schema)
    for row in rows:
        yield csv_line(schema, schema.dump(row)).encode()


def _ndjson(schema: ma.Schema, rows: Iterable) -> Iterator[bytes]:
    for row in rows:
        yield orjson.dumps(schema.dump(row)) + b"\n"


def _json_array(schema: ma.Schema, rows: Iterable) -> Iterator[bytes]:
    yield b"["
    for index, row in enumerate(rows):
        yield (b"," if index else b"") + orjson.dumps(schema.dump(row))
    yield b"]"


def _stored(schema: ma.Schema, forms: Iterable[str], fmt: str) -> Iterator[bytes]:
    """Records already rendered: their stored JSON, or CSV lines when fmt is csv."""
    if fmt == "csv":
        yield csv_header(schema)
        for form in forms:
            yield form.encode()
    elif fmt == "ndjson":
        for form in forms:
            yield form.encode() + b"\n"
    else:
        yield b"["
        for index, form in enumerate(forms):
            yield (b"," if index else b"") + form.encode()
        yield b"]"


def stored_body(schema: ma.Schema, forms: list[str], fmt: str) -> bytes:
    return b"".join(_stored(schema, forms, fmt))


def stored_groups(groups: dict[str, list[str]]) -> bytes:
    """A JSON object of lists of records in their stored JSON, which goes in as it is."""
    return orjson.dumps({key: list(map(orjson.Fragment, forms)) for key, forms in groups.items()})


def stored_column(fmt: str) -> str:
    """The column that holds each record as `fmt` shows it (records.store_forms)."""
    return "csv_form" if fmt == "csv" else "json_form"


def _chunked(parts: Iterator[bytes]) -> Iterator[bytes]:
    """The parts (a record each) joined into writes of about CHUNK bytes.

    One socket write per record would cost a system call each. And a stream to a client that
    reads as fast as it is written never waits: under gevent it would keep every other
    request of its worker waiting, so it lets them run after each record (a few microseconds).
    """
    pending, size = [], 0
    for part in parts:
        pending.append(part)
        size += len(part)
        if size >= CHUNK:
            yield b"".join(pending)
            pending, size = [], 0
        time.sleep(0)  # a turn for other greenlets (or threads), not a pause
    yield b"".join(pending)


_WRITERS = {"csv": _csv, "ndjson": _ndjson, "json": _json_array}


def streamed(
    schema: ma.Schema, rows: Iterable, fmt: str, filename: str, stored: bool = False
) -> Response:
    """A response that serialises `rows` one at a time while they are fetched (`stored`:
    the rows are their stored forms, already serialised)."""
    parts = _stored(schema, rows, fmt) if stored else _WRITERS[fmt](schema, rows)
    return Response(
        stream_with_context(_chunked(parts)),
        mimetype=FORMAT_MIMETYPES[fmt],  # text/csv gets its charset=utf-8 from werkzeug
        headers={"Content-Disposition": f'inline; filename="{filename}.{fmt}"'},
    )


def streamed_lines(lines: Iterable[bytes], filename: str, headers: dict[str, str]) -> Response:
    """An NDJSON response of lines already serialised, written as they come."""
    return Response(
        stream_with_context(_chunked(iter(lines))),
        mimetype=FORMAT_MIMETYPES["ndjson"],
        headers={"Content-Disposition": f'inline; filename="{filename}.ndjson"', **headers},
    )

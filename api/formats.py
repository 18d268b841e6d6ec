"""CSV and NDJSON (and JSON array) streams of any schema's records, written row by row."""

import csv
import io
import time
from collections.abc import Iterable, Iterator

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


def _csv(schema: ma.Schema, rows: Iterable) -> Iterator[bytes]:
    columns = csv_columns(schema)
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def line(cells: list) -> bytes:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(cells)
        return buffer.getvalue().encode()

    yield line(columns)
    for row in rows:
        record = schema.dump(row)
        yield line([_cell(record, column) for column in columns])


def _ndjson(schema: ma.Schema, rows: Iterable) -> Iterator[bytes]:
    for row in rows:
        yield orjson.dumps(schema.dump(row)) + b"\n"


def _json_array(schema: ma.Schema, rows: Iterable) -> Iterator[bytes]:
    yield b"["
    for index, row in enumerate(rows):
        yield (b"," if index else b"") + orjson.dumps(schema.dump(row))
    yield b"]"


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


def streamed(schema: ma.Schema, rows: Iterable, fmt: str, filename: str) -> Response:
    """A response that serialises `rows` one at a time while they are fetched."""
    return Response(
        stream_with_context(_chunked(_WRITERS[fmt](schema, rows))),
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

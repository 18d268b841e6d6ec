"""CSV and NDJSON (and JSON array) streams of any schema's records, written row by row."""

import csv
import io
from collections.abc import Iterable, Iterator

import marshmallow as ma
import orjson
from flask import Response, stream_with_context

from .smorest import FORMAT_MIMETYPES


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


def _csv(schema: ma.Schema, rows: Iterable) -> Iterator[str]:
    columns = csv_columns(schema)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for row in rows:
        record = schema.dump(row)
        writer.writerow([_cell(record, column) for column in columns])
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _ndjson(schema: ma.Schema, rows: Iterable) -> Iterator[bytes]:
    for row in rows:
        yield orjson.dumps(schema.dump(row)) + b"\n"


def _json_array(schema: ma.Schema, rows: Iterable) -> Iterator[bytes]:
    yield b"["
    for index, row in enumerate(rows):
        yield (b"," if index else b"") + orjson.dumps(schema.dump(row))
    yield b"]"


_WRITERS = {"csv": _csv, "ndjson": _ndjson, "json": _json_array}


def streamed(schema: ma.Schema, rows: Iterable, fmt: str, filename: str) -> Response:
    """A response that serialises `rows` one at a time while they are fetched."""
    mimetype = FORMAT_MIMETYPES[fmt] + ("; charset=utf-8" if fmt == "csv" else "")
    return Response(
        stream_with_context(_WRITERS[fmt](schema, rows)),
        mimetype=mimetype,
        headers={"Content-Disposition": f'inline; filename="{filename}.{fmt}"'},
    )

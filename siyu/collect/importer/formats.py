"""Reading import files as a stream of Arrow tables of a fixed number of rows.

CSV, JSON Lines and Parquet are read block by block, never whole: memory is bounded by the
batch size, not by the file. CSV cells are read as text (types are decided when the columns
are mapped, so a column that looks numeric in the first block and not later cannot fail the
reader); JSON Lines are parsed by Arrow a chunk of lines at a time; Parquet keeps its types.
Nested values (JSON objects, Parquet structs) become JSON text.

Every table carries a ``__row`` column: the 1-based number of the record in the file (data
records, the CSV header not counted), so a rejected row can be found again.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from siyu.collect.importer.errors import ImportFileError
from siyu.collect.importer.models import ImportFormat
from siyu.core.i18n import N_

ROW = "__row"
FINGERPRINT_HEAD_BYTES = 1 << 20
CSV_BLOCK_BYTES = 4 << 20
PARQUET_BUFFER_BYTES = 64 << 10  # read buffer per column of a Parquet file (pages go past it)

_EXTENSIONS = {
    ".csv": ImportFormat.csv,
    ".txt": ImportFormat.csv,
    ".jsonl": ImportFormat.jsonl,
    ".ndjson": ImportFormat.jsonl,
    ".json": ImportFormat.jsonl,
    ".parquet": ImportFormat.parquet,
    ".pq": ImportFormat.parquet,
}


@dataclass(frozen=True)
class Fingerprint:
    """What tells one file from another without reading it all: size, mtime, head hash."""

    size: int
    mtime_ns: int
    head_sha256: str


def fingerprint(path: Path) -> Fingerprint:
    stat = path.stat()
    with path.open("rb") as handle:
        head = handle.read(FINGERPRINT_HEAD_BYTES)
    return Fingerprint(stat.st_size, stat.st_mtime_ns, hashlib.sha256(head).hexdigest())


def detect_format(path: Path, given: str | None = None) -> ImportFormat:
    """The format named by ``given`` (``--format``), else by the file's extension."""
    if given:
        try:
            return ImportFormat(given.lower())
        except ValueError:
            raise ImportFileError(
                N_("Unknown import format {format!r}; use csv, jsonl or parquet"),
                path=str(path),
                format=given,
            ) from None
    found = _EXTENSIONS.get(path.suffix.lower())
    if found is None:
        raise ImportFileError(
            N_("Cannot tell the format of {path} from its extension {suffix!r}"),
            hint=N_("Name it .csv, .jsonl or .parquet, or pass --format csv|jsonl|parquet."),
            path=str(path),
            suffix=path.suffix,
        )
    return found


@dataclass
class ParserRejects:
    """Records the reader itself could not parse (a CSV line with the wrong number of cells,
    a JSON line that is no object): ``(line, reason, text)``, taken by the next batch."""

    items: list[tuple[int, str, str]] = field(default_factory=list)

    def take(self) -> list[tuple[int, str, str]]:
        taken, self.items = self.items, []
        return taken


@dataclass
class Batch:
    """One batch of the file: its index, its rows, and what the parser rejected before it."""

    index: int
    table: pa.Table
    parser_rejects: list[tuple[int, str, str]]


def read_batches(
    path: Path,
    fmt: ImportFormat,
    *,
    batch_size: int,
    encoding: str = "utf-8",
    start: int = 0,
) -> Iterator[Batch]:
    """The file as batches of ``batch_size`` records (the last may be smaller), from batch
    index ``start`` on (a resumed import). Parquet starts at the row group holding that
    batch, found in the file's metadata; CSV and JSON Lines are read up to it and discarded
    (their records have no index)."""
    rejects = ParserRejects()
    tables: Iterator[pa.Table]
    index = 0
    if fmt is ImportFormat.csv:
        tables = _numbered(_rechunk(_csv_tables(path, encoding, rejects), batch_size))
    elif fmt is ImportFormat.jsonl:
        tables = _jsonl_tables(path, batch_size, encoding, rejects)
    else:
        tables = _numbered(
            _rechunk(_parquet_tables(path, batch_size, skip=start * batch_size), batch_size),
            first=start * batch_size,
        )
        index = start
    for table in tables:
        taken = rejects.take()
        if index >= start:
            yield Batch(index, table, taken)
        index += 1
    leftover = rejects.take()
    if leftover and index >= start:
        yield Batch(index, pa.table({ROW: pa.array([], pa.int64())}), leftover)


def _numbered(tables: Iterator[pa.Table], first: int = 0) -> Iterator[pa.Table]:
    """Add the record numbers (``first`` records came before the first table)."""
    row = first
    for table in tables:
        yield table.append_column(ROW, pa.arange(row + 1, row + 1 + table.num_rows))
        row += table.num_rows


def _rechunk(tables: Iterator[pa.Table], size: int) -> Iterator[pa.Table]:
    pending: list[pa.Table] = []
    rows = 0
    for table in tables:
        if table.num_rows == 0:
            continue
        pending.append(table)
        rows += table.num_rows
        while rows >= size:
            merged = pa.concat_tables(pending, promote_options="permissive")
            yield merged.slice(0, size)
            rest = merged.slice(size)
            pending, rows = ([rest] if rest.num_rows else []), rest.num_rows
    if rows:
        yield pa.concat_tables(pending, promote_options="permissive")


# -- CSV ------------------------------------------------------------------------------------


def _csv_tables(path: Path, encoding: str, rejects: ParserRejects) -> Iterator[pa.Table]:
    def on_invalid_row(row: Any) -> str:
        reason = f"expected {row.expected_columns} cells, got {row.actual_columns}"
        rejects.items.append((int(row.number or 0), reason, str(row.text)))
        return "skip"

    read_options = pacsv.ReadOptions(
        block_size=CSV_BLOCK_BYTES, encoding=encoding, use_threads=False
    )
    parse_options = pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=on_invalid_row)
    try:
        names = pacsv.open_csv(path, read_options=read_options, parse_options=parse_options)
        columns = names.schema.names
        names.close()
        rejects.take()  # the probe above parsed the first block: its rejects come again
        convert = pacsv.ConvertOptions(
            column_types=dict.fromkeys(columns, pa.string()),
            strings_can_be_null=True,
            null_values=[""],
        )
        reader = pacsv.open_csv(
            path, read_options=read_options, parse_options=parse_options, convert_options=convert
        )
        for batch in reader:
            yield pa.Table.from_batches([batch])
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise _unreadable(path, encoding, exc) from None


def _unreadable(path: Path, encoding: str, exc: Exception) -> ImportFileError:
    line = first_undecodable_line(path, encoding)
    if line is not None:
        return ImportFileError(
            N_("{path} is not valid {encoding} text: line {line} cannot be decoded"),
            hint=N_(
                "Save the file as UTF-8, or pass its encoding, e.g. --encoding gb18030 "
                "(the usual one for Chinese Excel exports)."
            ),
            path=str(path),
            encoding=encoding,
            line=line,
        )
    return ImportFileError(
        N_("{path} cannot be read: {reason}"),
        path=str(path),
        reason=str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
    )


def first_undecodable_line(path: Path, encoding: str) -> int | None:
    """The 1-based number of the first line that is not valid ``encoding`` (error path only)."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                raw.decode(encoding)
            except UnicodeDecodeError:
                return number
            except LookupError:
                return None
    return None


# -- JSON Lines -----------------------------------------------------------------------------


def _jsonl_tables(
    path: Path, batch_size: int, encoding: str, rejects: ParserRejects
) -> Iterator[pa.Table]:
    line = 0
    with path.open("rb") as handle:
        source = _lines(handle, encoding)
        while True:
            lines = list(itertools.islice(source, batch_size))
            if not lines:
                return
            yield _jsonl_chunk(lines, line, rejects, path, encoding)
            line += len(lines)


def _lines(handle: BinaryIO, encoding: str) -> Iterator[bytes]:
    if encoding.lower().replace("-", "").replace("_", "") in ("utf8", "utf8sig"):
        yield from handle
        return
    for raw in io.TextIOWrapper(handle, encoding=encoding, newline=""):
        yield raw.encode()


def _jsonl_chunk(
    lines: list[bytes], first_line: int, rejects: ParserRejects, path: Path, encoding: str
) -> pa.Table:
    """A chunk of lines as a table, numbered by line; blank lines are skipped."""
    numbers = [first_line + offset + 1 for offset, line in enumerate(lines) if line.strip()]
    blob = b"".join(line if line.endswith(b"\n") else line + b"\n" for line in lines)
    read_options = pajson.ReadOptions(block_size=max(len(blob), 1 << 20))
    try:
        table = pajson.read_json(io.BytesIO(blob), read_options=read_options)
        inferred_times = [f for f in table.schema if pa.types.is_timestamp(f.type)]
        if inferred_times:
            # JSON has no time type: Arrow guessed one from the text and dropped any "Z" or
            # offset on the way. Read those columns again as the text they are.
            schema = pa.schema([pa.field(f.name, pa.string()) for f in inferred_times])
            parse = pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="infer")
            table = pajson.read_json(
                io.BytesIO(blob), read_options=read_options, parse_options=parse
            )
    except pa.ArrowInvalid as exc:
        if "utf8" in str(exc).lower() or "utf-8" in str(exc).lower():
            raise _unreadable(path, encoding, exc) from None
        return _jsonl_slow(lines, first_line, rejects, path, encoding)
    if table.num_rows != len(numbers):
        return _jsonl_slow(lines, first_line, rejects, path, encoding)
    return _flatten(table).append_column(ROW, pa.array(numbers, pa.int64()))


def _jsonl_slow(
    lines: list[bytes], first_line: int, rejects: ParserRejects, path: Path, encoding: str
) -> pa.Table:
    """Line by line, for a chunk Arrow refused (a broken line, or a field whose type changes
    between lines): bad lines are rejected, every value of the others becomes text."""
    records: list[dict[str, str | None]] = []
    numbers: list[int] = []
    for offset, raw in enumerate(lines):
        number = first_line + offset + 1
        try:
            value = json.loads(raw) if raw.strip() else None
        except UnicodeDecodeError:
            raise ImportFileError(
                N_("{path} is not valid {encoding} text: line {line} cannot be decoded"),
                hint=N_("Save the file as UTF-8, or pass its encoding, e.g. --encoding gb18030."),
                path=str(path),
                encoding=encoding,
                line=number,
            ) from None
        except ValueError as exc:
            rejects.items.append((number, f"invalid JSON: {exc}", _clip(raw)))
            continue
        if value is None:
            continue
        if not isinstance(value, dict):
            rejects.items.append((number, "not a JSON object", _clip(raw)))
            continue
        records.append({key: _as_text(item) for key, item in value.items()})
        numbers.append(number)
    columns = sorted({key for record in records for key in record})
    schema = pa.schema([(name, pa.string()) for name in columns])
    table = pa.Table.from_pylist(records, schema=schema) if records else schema.empty_table()
    return table.append_column(ROW, pa.array(numbers, pa.int64()))


def _clip(raw: bytes) -> str:
    return raw[:200].decode("utf-8", errors="replace").rstrip("\n")


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    return json_text(value)


def json_text(value: Any) -> str:
    """Canonical JSON text of a nested value: keys sorted, null members dropped, UTF-8 kept."""
    return json.dumps(_drop_nulls(value), ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _drop_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_drop_nulls(item) for item in value]
    return value


def _flatten(table: pa.Table) -> pa.Table:
    """Nested columns (objects, lists, maps) as JSON text; dictionary columns decoded."""
    columns: list[pa.Array | pa.ChunkedArray] = []
    for column in table.columns:
        kind = column.type
        if pa.types.is_dictionary(kind):
            column = column.cast(kind.value_type)
        elif pa.types.is_nested(kind):
            # Only nested cells take this loop; flat values stay columnar.
            column = pa.array(
                [None if item is None else json_text(item) for item in column.to_pylist()],
                type=pa.string(),
            )
        columns.append(column)
    return pa.Table.from_arrays(columns, names=table.column_names)


# -- Parquet --------------------------------------------------------------------------------


def _parquet_tables(path: Path, batch_size: int, *, skip: int = 0) -> Iterator[pa.Table]:
    """The file's rows after the first ``skip``: whole row groups before them are never
    read (their sizes are in the footer), the rest of the first one is sliced off.

    Each column is read page by page through a small buffer. Not pre-buffered: Arrow's
    pre-buffer (on by default) coalesces column chunks into reads of up to 32 MiB and keeps
    every range it has read until the reader closes, so memory grew with the file instead
    of staying at a few batches. Not unbuffered either (buffer_size 0): that reads a whole
    column chunk at once, tens of MiB per column in a file written in large row groups."""
    try:
        parquet = pq.ParquetFile(path, pre_buffer=False, buffer_size=PARQUET_BUFFER_BYTES)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ImportFileError(
            N_("{path} cannot be read as Parquet: {reason}"),
            path=str(path),
            reason=str(exc).strip().splitlines()[0],
        ) from None
    with parquet:
        first_group, drop = _row_group_at(parquet.metadata, skip)
        groups = range(first_group, parquet.metadata.num_row_groups)
        if not groups:
            return
        for batch in parquet.iter_batches(batch_size=batch_size, row_groups=groups):
            if drop >= batch.num_rows:
                drop -= batch.num_rows
                continue
            yield _flatten(pa.Table.from_batches([batch.slice(drop)]))
            drop = 0


def _row_group_at(metadata: pq.FileMetaData, row: int) -> tuple[int, int]:
    """The row group holding the 0-based ``row``, and how many of its rows come before it."""
    start = 0
    for group in range(metadata.num_row_groups):
        rows = metadata.row_group(group).num_rows
        if row < start + rows:
            return group, row - start
        start += rows
    return metadata.num_row_groups, 0

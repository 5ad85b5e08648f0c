"""The validation report: one line per problem of a refused row (JSON Lines or CSV)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import IO

import pyarrow as pa

from siyu.collect.importer.errors import ImportFileError
from siyu.collect.importer.transform import REASONS
from siyu.core.i18n import N_, gettext

FIELDS = ("row", "column", "reason", "message", "value")


def default_report_path(source: Path) -> Path:
    return source.with_name(source.name + ".import-report.jsonl")


class ReportWriter:
    """Appends problems to the report file; a new import truncates it, a resumed one appends."""

    def __init__(self, path: Path, *, append: bool) -> None:
        self.path = path
        self.csv = path.suffix.lower() == ".csv"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fresh = not append or not path.exists() or path.stat().st_size == 0
            self._handle: IO[str] = path.open("a" if append else "w", encoding="utf-8", newline="")
        except OSError as exc:
            raise ImportFileError(
                N_("The report file {path} cannot be written: {reason}"),
                hint=N_("Pass --report with a path in a directory you can write to."),
                path=str(path),
                reason=exc.strerror or str(exc),
            ) from None
        self._csv = csv.writer(self._handle) if self.csv else None
        if self._csv is not None and fresh:
            self._csv.writerow(FIELDS)

    def write(self, problems: pa.Table) -> None:
        """Write ``problems`` (row, column, reason, value); only refused rows loop here."""
        for item in problems.to_pylist():
            message = gettext(REASONS.get(item["reason"], item["reason"]))
            line = {**item, "message": message}
            if self._csv is not None:
                self._csv.writerow([line[name] for name in FIELDS])
            else:
                self._handle.write(json.dumps(line, ensure_ascii=False) + "\n")
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()


def parser_problems(items: list[tuple[int, str, str]]) -> pa.Table:
    """Records the reader could not parse, as report lines (row = line in the file)."""
    return pa.table(
        {
            "row": pa.array([line for line, _, _ in items], pa.int64()),
            "column": pa.nulls(len(items), pa.string()),
            "reason": pa.array(["malformed_record"] * len(items), pa.string()),
            "value": pa.array([f"{reason}: {text[:200]}" for _, reason, text in items]),
        }
    )

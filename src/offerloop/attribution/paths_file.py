"""Paths exported from elsewhere (GA4, a spreadsheet, ChannelAttribution's sample data): one row per distinct
path with its conversions, their value and the nulls, read with Polars into a :class:`PathSet`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from offerloop.attribution.exceptions import AttributionInputError
from offerloop.attribution.models import FloatArray, PathSet

__all__ = ["MAX_NUMBER", "PathsFileFormat", "read_paths_file"]

MAX_NUMBER = 1e15  # conversions, values and nulls above this are refused (their products would overflow)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class PathsFileFormat:
    sep: str = ","
    path_col: str = "path"
    conv_col: str = "total_conversions"
    value_col: str | None = None
    null_col: str | None = None
    path_sep: str = ">"


def _numbers(frame: pl.DataFrame, column: str) -> FloatArray:
    raw = frame[column].str.strip_chars()
    parsed = raw.cast(pl.Float64, strict=False)
    bad = parsed.is_null() | ~parsed.is_finite()
    if bad.any():
        row = int(bad.arg_true()[0])
        shown = raw[row] if raw[row] is not None else ""
        raise AttributionInputError(f"column {column!r}, data row {row + 1}: {shown!r} is not a number")
    values = parsed.to_numpy().astype(np.float64)
    if np.any(values < 0):
        row = int(np.flatnonzero(values < 0)[0])
        raise AttributionInputError(f"column {column!r}, data row {row + 1}: {raw[row]!r} is negative")
    if np.any(values > MAX_NUMBER):
        row = int(np.flatnonzero(values > MAX_NUMBER)[0])
        raise AttributionInputError(f"column {column!r}, data row {row + 1}: {raw[row]!r} is above 10^15")
    return values


def read_paths_file(path: Path, fmt: PathsFileFormat) -> PathSet:
    """Read and check a paths file; every problem is an :class:`AttributionInputError` naming the row."""
    if len(fmt.sep) != 1:
        raise AttributionInputError(f"--sep must be one character, got {fmt.sep!r}")
    if not fmt.path_sep:
        raise AttributionInputError("--path-sep must not be empty")
    try:
        if path.stat().st_size == 0:
            raise AttributionInputError(f"{path}: the file is empty")
        frame = pl.read_csv(path, separator=fmt.sep, infer_schema=False, truncate_ragged_lines=False)
    except OSError as exc:
        raise AttributionInputError(f"{path}: {exc.strerror or exc}") from exc
    except (pl.exceptions.PolarsError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AttributionInputError(f"{path}: not a readable CSV file ({first})") from exc
    wanted = [fmt.path_col, fmt.conv_col, *(c for c in (fmt.value_col, fmt.null_col) if c)]
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise AttributionInputError(
            f"{path}: no column {missing[0]!r} (columns: {', '.join(frame.columns) or 'none'})"
        )
    if frame.height == 0:
        raise AttributionInputError(f"{path}: the file has no data rows")
    conv = _numbers(frame, fmt.conv_col)
    values = _numbers(frame, fmt.value_col) if fmt.value_col else None
    nulls = _numbers(frame, fmt.null_col) if fmt.null_col else None
    paths = frame[fmt.path_col].to_list()
    for row, text in enumerate(paths, start=1):
        if text is not None and _CONTROL.search(text):
            raise AttributionInputError(
                f"column {fmt.path_col!r}, data row {row}: a control character in {text!r}"
            )
    try:
        return PathSet.from_strings(paths, fmt.path_sep, conv, values, nulls)
    except AttributionInputError as exc:
        if not isinstance(exc.details, dict):
            raise
        # Named like the numbers' errors: the column and the data row.
        row, problem = exc.details["path"], exc.details["problem"]
        raise AttributionInputError(f"column {fmt.path_col!r}, data row {row}: {problem}") from exc

"""Reading a sample column by column in chunks: memory bounded by the chunk, never the file.

Formats, by suffix: `.csv` (header row; the csv module, CHUNK rows at a time), `.parquet`
(pyarrow's record batches; only when pyarrow is installed), `.jsonl` / `.ndjson` (one JSON
object a line: serve's request log `{"inputs": {feature: value, …} or [values…] or a list of
either, "prediction": …}`, or a bare `{feature: value, …}` row). A value that is empty, not a
number or not finite (a boolean, a nested list, a number too large for a float) is *missing*:
it is counted, never compared. Lines longer than MAX_LINE bytes and profiles of more than
MAX_FEATURES features are refused, and a chunk holds at most CELLS values (rows x features), checked
row by row: the sample is production traffic, untrusted input, and memory stays bounded.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Chunk = dict[str, npt.NDArray[np.float64]]

CHUNK = 16384
CELLS = 1 << 20  # values in one chunk: a chunk has at most max(1, CELLS // features) rows
MAX_LINE = 1 << 20
MAX_FEATURES = 1024  # a 1024-feature profile is about 2 MB, well below MAX_PROFILE_BYTES
SUFFIXES = (".csv", ".parquet", ".jsonl", ".ndjson")


class SampleError(Exception):
    """Why a sample or profile cannot be used: a message naming the file, and a hint."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint


def numpy() -> Any:
    """numpy, or a SampleError naming the extra that brings it."""
    try:
        import numpy as np
    except ImportError:
        from mlspec import DISTRIBUTION, SKLEARN_EXTRA

        raise SampleError("the drift check needs numpy, which is not installed",
                          f"pip install '{DISTRIBUTION}[{SKLEARN_EXTRA}]'") from None
    return np


def columns(path: Path, shown: str) -> list[str]:
    """The column (feature) names of a sample, in file order."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with _open(path, shown) as fh:
            header = _header(csv.reader(_lines(fh, shown)), shown)
        if not header:
            raise SampleError(f"'{shown}' has no header row", "the first line names the columns")
        return header
    if suffix == ".parquet":
        return list(_parquet(path, shown).schema_arrow.names)
    if suffix in (".jsonl", ".ndjson"):
        for rows in _json_rows(path, shown):
            for row in rows:
                if isinstance(row, dict):
                    return [str(k) for k in row]
        raise SampleError(f"'{shown}' holds no row with named features",
                          "name the features of a list-valued log in `drift.features`")
    raise SampleError(f"'{shown}' is not a sample mlspec reads",
                      f"use one of {', '.join(SUFFIXES)}")


def chunks(path: Path, shown: str, features: Sequence[str],
           order: Sequence[str] | None = None) -> Iterator[Chunk]:
    """{feature: float64 array} chunks of at most CHUNK rows; missing values are NaN. `order`
    names the positions of a JSON-lines row given as a list (default: `features`)."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        yield from _csv_chunks(path, shown, features)
    elif suffix == ".parquet":
        yield from _parquet_chunks(path, shown, features)
    elif suffix in (".jsonl", ".ndjson"):
        yield from _json_chunks(path, shown, features, order or features)
    else:
        raise SampleError(f"'{shown}' is not a sample mlspec reads",
                          f"use one of {', '.join(SUFFIXES)}")


def _open(path: Path, shown: str) -> Any:
    try:
        if not path.is_file():
            raise SampleError(f"'{shown}' does not exist or is not a file")
        return path.open(encoding="utf-8-sig", newline="")  # -sig: a leading BOM is no name
    except OSError as exc:
        raise SampleError(f"cannot read '{shown}': {exc.strerror}") from None


def _rows_per_chunk(features: Sequence[str]) -> int:
    return max(1, min(CHUNK, CELLS // max(1, len(features))))


def _lines(fh: Any, shown: str) -> Iterator[str]:
    """The lines of a text file, each read with a bound: a longer line is refused."""
    n = 0
    try:
        for n, line in enumerate(iter(lambda: fh.readline(MAX_LINE + 1), ""), 1):
            if len(line) > MAX_LINE:
                raise SampleError(f"'{shown}' line {n} is longer than {MAX_LINE} characters")
            yield line
    except UnicodeDecodeError as exc:
        raise SampleError(f"'{shown}' line {n + 1} is not UTF-8: {exc.reason}") from None


def _header(reader: Any, shown: str) -> list[str]:
    try:
        header = [h.strip() for h in next(reader, [])]
    except (csv.Error, UnicodeDecodeError) as exc:
        raise SampleError(f"'{shown}' has no readable CSV header: {exc}") from None
    return header  # its size is bounded by MAX_LINE; profiles by MAX_FEATURES


def _to_float(values: list[Any]) -> Any:
    np = numpy()
    if not any(type(v) is bool for v in values):  # a bool is missing, not 1.0
        try:  # the fast path: every value a number
            out = np.asarray(values, dtype=np.float64)
        except (ValueError, TypeError, OverflowError):
            pass
        else:
            if out.ndim == 1 and len(out) == len(values):  # no nested list
                return out
    return np.fromiter((_one(v) for v in values), dtype=np.float64, count=len(values))


def _one(v: Any) -> float:
    if isinstance(v, bool) or v is None:
        return math.nan
    try:
        f = float(v)
    except (ValueError, TypeError, OverflowError):
        return math.nan
    return f if math.isfinite(f) else math.nan


def _csv_chunks(path: Path, shown: str, features: Sequence[str]) -> Iterator[Chunk]:
    with _open(path, shown) as fh:
        reader = csv.reader(_lines(fh, shown))
        header = _header(reader, shown)
        where = {h: i for i, h in enumerate(header)}
        missing = [f for f in features if f not in where]
        if missing:
            raise SampleError(f"'{shown}' has no column {', '.join(repr(m) for m in missing)}",
                              f"its columns: {', '.join(header[:20])}")
        idx = [where[f] for f in features]
        width = max(idx) + 1 if idx else 0
        cols: list[list[str]] = [[] for _ in features]
        per_chunk = _rows_per_chunk(features)
        try:
            for row in reader:
                if not row:
                    continue  # a blank line is no row
                if len(row) < width:
                    row = row + [""] * (width - len(row))
                for col, i in zip(cols, idx, strict=True):
                    col.append(row[i])
                if len(cols[0]) >= per_chunk:
                    yield _chunk(features, cols)
                    cols = [[] for _ in features]
        except (csv.Error, UnicodeDecodeError) as exc:
            raise SampleError(f"'{shown}' is not readable CSV: {exc}") from None
        if cols and cols[0]:
            yield _chunk(features, cols)


def _chunk(features: Sequence[str], cols: Sequence[list[Any]]) -> Chunk:
    out = {f: _to_float(c) for f, c in zip(features, cols, strict=True)}
    np = numpy()
    for f, a in out.items():
        a[~np.isfinite(a)] = np.nan
        out[f] = a
    return out


def _parquet(path: Path, shown: str) -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise SampleError(f"reading the Parquet sample '{shown}' needs pyarrow, which is not "
                          "installed", "pip install pyarrow, or give a .csv or .jsonl sample"
                          ) from None
    try:
        return pq.ParquetFile(str(path))
    except (OSError, ValueError) as exc:
        raise SampleError(f"cannot read the Parquet file '{shown}': {exc}") from None


def _parquet_chunks(path: Path, shown: str, features: Sequence[str]) -> Iterator[Chunk]:
    pf = _parquet(path, shown)
    names = set(pf.schema_arrow.names)
    missing = [f for f in features if f not in names]
    if missing:
        raise SampleError(f"'{shown}' has no column {', '.join(repr(m) for m in missing)}")
    import pyarrow as pa

    batches = pf.iter_batches(batch_size=_rows_per_chunk(features), columns=list(features))
    while True:
        try:
            batch = next(batches, None)
            if batch is None:
                return
            cols = [batch.column(i).to_pylist() for i in range(len(features))]
        except (OSError, ValueError, pa.ArrowException) as exc:
            raise SampleError(f"cannot read the Parquet file '{shown}': {exc}") from None
        yield _chunk(features, cols)


def _json_rows(path: Path, shown: str) -> Iterator[list[Any]]:
    """The rows of each line: a request's inputs (one row or a batch) or a bare row."""
    _open(path, shown).close()  # the same errors as the other formats
    with path.open("rb") as fh:
        for n, line in enumerate(iter(lambda: fh.readline(MAX_LINE + 1), b""), 1):
            if len(line) > MAX_LINE:
                raise SampleError(f"'{shown}' line {n} is longer than {MAX_LINE} bytes")
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except (ValueError, RecursionError) as exc:
                raise SampleError(f"'{shown}' line {n} is not JSON: {exc}") from None
            inputs = obj.get("inputs", obj) if isinstance(obj, dict) else obj
            if isinstance(inputs, list) and inputs and isinstance(inputs[0], (list, dict)):
                if not all(isinstance(row, (list, dict)) for row in inputs):
                    raise SampleError(f"'{shown}' line {n} mixes rows with other values",
                                      "a batch is a list of rows: objects or lists")
                yield inputs
            elif isinstance(inputs, (list, dict)):
                yield [inputs]
            else:
                raise SampleError(f"'{shown}' line {n} holds no inputs",
                                  'each line: {"inputs": {feature: value, …}, …}')


def _json_chunks(path: Path, shown: str, features: Sequence[str], order: Sequence[str]
                 ) -> Iterator[Chunk]:
    pos = {f: i for i, f in enumerate(order)}
    at = [pos.get(f, -1) for f in features]
    cols: list[list[Any]] = [[] for _ in features]
    per_chunk = _rows_per_chunk(features)
    for rows in _json_rows(path, shown):
        for row in rows:
            if isinstance(row, dict):
                for col, f in zip(cols, features, strict=True):
                    col.append(row.get(f))
            else:  # positional: the profile's feature order
                for col, i in zip(cols, at, strict=True):
                    col.append(row[i] if 0 <= i < len(row) else None)
            if cols and len(cols[0]) >= per_chunk:  # per row: one line may hold many rows
                yield _chunk(features, cols)
                cols = [[] for _ in features]
    if cols and cols[0]:
        yield _chunk(features, cols)

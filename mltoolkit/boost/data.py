"""Reading training and scoring data: ordinary tables and the text formats of LightGBM's own CLI.

Ordinary tables are CSV/TSV (header sniffed), Parquet and JSON lines. LightGBM's CLI formats are a
headerless TSV with the label first and LibSVM (``label idx:value ...``); beside a data file LightGBM
picks up ``<file>.weight``, ``<file>.query`` (group sizes) and ``<file>.init`` (initial scores), and
so do we. Delimited text is parsed with pandas' C engine straight from the file: measured on a 1M x 50
CSV it beat ``pyarrow.csv`` once the result must become one float matrix (benchmarks/boost_scale.py).
"""

from __future__ import annotations

import io
import math
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltoolkit.core.errors import DataError
from mltoolkit.core.io import STDIO, read_text, sniff_text_table, source_name

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

SIDE_FILES = ("weight", "query", "init")
_LIBSVM_LINE = re.compile(r"^\s*[-+0-9.eE]+(\s+\d+:\S+)+\s*$")
_SUFFIX_DELIMITERS = {".csv": ",", ".tsv": "\t", ".tab": "\t"}


@dataclass
class Table:
    """What one data file holds: a frame of named columns, or (LibSVM) a sparse matrix and labels."""

    source: str
    frame: pd.DataFrame | None = None
    sparse: Any = None  # scipy CSR matrix for LibSVM input
    labels: np.ndarray | None = None  # LibSVM's first field
    headerless: bool = False
    side: dict[str, np.ndarray] = field(default_factory=dict)  # weight / query / init side files
    first_row: int = 0  # a chunk's first row in the whole input (0-based), for error messages

    @property
    def num_rows(self) -> int:
        return self.sparse.shape[0] if self.sparse is not None else len(self.frame)


@dataclass(frozen=True)
class TextLayout:
    """How a delimited text file is laid out, sniffed once and reused for every chunk."""

    kind: str  # "delimited", "libsvm", "jsonl", "parquet"
    delimiter: str = ","
    header: bool = True


def sniff_layout(source: str | Path, head: bytes) -> TextLayout:
    suffix = Path(str(source)).suffix.lower() if str(source) != STDIO else ""
    if suffix == ".parquet" or head[:4] == b"PAR1":
        return TextLayout("parquet")
    text = head.decode("utf-8", errors="ignore")
    if suffix in (".jsonl", ".ndjson") or (suffix not in _SUFFIX_DELIMITERS and text.lstrip().startswith("{")):
        return TextLayout("jsonl")
    lines = [line for line in text.splitlines()[:5] if line.strip()]
    if lines and all(_LIBSVM_LINE.match(line) for line in lines[:-1] or lines):
        return TextLayout("libsvm")
    delimiter, header = sniff_text_table(text)
    return TextLayout("delimited", _SUFFIX_DELIMITERS.get(suffix, delimiter), header)


def _head(source: str | Path) -> tuple[bytes, Any]:
    """The first 64 KiB (for sniffing) and what to hand the parser: the path, or a stream of stdin."""
    if str(source) == STDIO:
        stdin = sys.stdin.buffer
        head = stdin.read(65536)
        return head, io.BufferedReader(_Prepended(head, stdin), buffer_size=1 << 20)
    path = Path(source)
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected a data file")
    try:
        with path.open("rb") as handle:
            return handle.read(65536), path
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None


class _Prepended(io.RawIOBase):
    """stdin with the bytes already read for sniffing put back in front, still streamed."""

    def __init__(self, head: bytes, rest: Any) -> None:
        self.head, self.rest = head, rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.head:
            n = min(len(buffer), len(self.head))
            buffer[:n], self.head = self.head[:n], self.head[n:]
            return n
        data = self.rest.read1(len(buffer)) if hasattr(self.rest, "read1") else self.rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _seekable(handle: Any) -> Any:
    """Parquet keeps its index at the end of the file: a path as it is, stdin read whole into memory."""
    return handle if isinstance(handle, Path) else io.BytesIO(handle.read())


def read_data(source: str | Path, *, side_files: bool = True) -> Table:
    """Read a whole data file (or stdin) into a ``Table``, with its LightGBM side files."""
    import pandas as pd

    name = source_name(source)
    head, handle = _head(source)
    if not head.strip():
        raise DataError(f"{name}: empty input, expected a table")
    layout = sniff_layout(source, head)
    table = Table(source=name)
    try:
        if layout.kind == "parquet":
            table.frame = pd.read_parquet(_seekable(handle))
        elif layout.kind == "jsonl":
            table.frame = pd.read_json(handle, lines=True)
        elif layout.kind == "libsvm":
            table.sparse, table.labels = read_libsvm(handle, name)
        else:
            table.frame = _read_delimited(handle, layout)
            table.headerless = not layout.header
    except (ValueError, UnicodeDecodeError, OSError) as exc:
        raise DataError(f"{name}: cannot parse as {layout.kind} ({str(exc).splitlines()[0]})") from None
    if table.num_rows == 0:
        raise DataError(f"{name}: the table has no rows")
    if side_files and str(source) != STDIO:
        table.side = read_side_files(Path(source), table.num_rows)
    return table


def _read_delimited(handle: Any, layout: TextLayout, chunksize: int | None = None) -> Any:
    import pandas as pd

    frame = pd.read_csv(
        handle,
        sep=layout.delimiter,
        header=0 if layout.header else None,
        engine="c",
        chunksize=chunksize,
        low_memory=False,
    )
    if not layout.header and chunksize is None:
        frame.columns = [str(c) for c in frame.columns]
    return frame


def iter_chunks(source: str | Path, chunk_rows: int) -> Iterator[Table]:
    """Yield the rows of a data file (or stdin) as ``Table`` chunks, so scoring needs bounded memory.

    Side files are not read here: a chunk has no file of its own (``read_side_files`` on the path).
    """
    name = source_name(source)
    head, handle = _head(source)
    if not head.strip():
        raise DataError(f"{name}: empty input, expected a table")
    layout = sniff_layout(source, head)
    try:
        first = 0
        for table in _chunks(handle, layout, name, chunk_rows):
            table.first_row, first = first, first + table.num_rows
            yield table
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"{name}: cannot parse as {layout.kind} ({str(exc).splitlines()[0]})") from None


def _chunks(handle: Any, layout: TextLayout, name: str, chunk_rows: int) -> Iterator[Table]:
    """The chunks of one layout, as its reader cuts them."""
    import pandas as pd

    if layout.kind == "delimited":
        for frame in _read_delimited(handle, layout, chunksize=chunk_rows):
            if not layout.header:
                frame.columns = [str(c) for c in frame.columns]
            yield Table(source=name, frame=frame.reset_index(drop=True), headerless=not layout.header)
    elif layout.kind == "parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(_seekable(handle)).iter_batches(batch_size=chunk_rows):
            yield Table(source=name, frame=batch.to_pandas())
    elif layout.kind == "jsonl":
        for frame in pd.read_json(handle, lines=True, chunksize=chunk_rows):
            yield Table(source=name, frame=frame.reset_index(drop=True))
    else:
        sparse, labels = read_libsvm(handle, name)
        for start in range(0, sparse.shape[0], chunk_rows):
            stop = start + chunk_rows
            yield Table(source=name, sparse=sparse[start:stop], labels=labels[start:stop])


def read_libsvm(handle: Any, name: str) -> tuple[Any, np.ndarray]:
    """Parse ``label idx:value ...`` lines into a CSR matrix (0-based indices, as LightGBM reads them)."""
    import numpy as np
    import scipy.sparse as sp

    data = handle.read_bytes() if isinstance(handle, Path) else handle.read()
    labels: list[float] = []
    indices: list[int] = []
    values: list[float] = []
    indptr = [0]
    for lineno, line in enumerate(data.decode("utf-8").splitlines(), start=1):
        tokens = line.split()
        if not tokens:
            continue
        try:
            labels.append(float(tokens[0]))
            for token in tokens[1:]:
                index, value = token.split(":", 1)
                indices.append(int(index))
                values.append(float(value))
        except ValueError:
            raise DataError(f"{name}: line {lineno}: not LibSVM 'label index:value ...' ({line[:60]!r})") from None
        if any(map(math.isinf, (labels[-1], *values[indptr[-1] :]))):
            raise DataError(f"{name}: line {lineno}: an infinite value; only finite numbers (or nan) ({line[:60]!r})")
        indptr.append(len(indices))
    width = max(indices) + 1 if indices else 0
    matrix = sp.csr_matrix(
        (np.asarray(values, dtype=np.float64), np.asarray(indices, dtype=np.int64), np.asarray(indptr)),
        shape=(len(labels), width),
    )
    return matrix, np.asarray(labels, dtype=np.float64)


def read_side_files(path: Path, rows: int) -> dict[str, np.ndarray]:
    """LightGBM's ``<file>.weight`` / ``.query`` / ``.init`` beside ``path``, checked against its rows."""
    import numpy as np

    side: dict[str, np.ndarray] = {}
    for kind in SIDE_FILES:
        side_path = Path(f"{path}.{kind}")
        if not side_path.exists():
            continue
        values = read_side_file(side_path)
        if kind == "query":
            if values.sum() != rows:
                raise DataError(f"{side_path}: group sizes add up to {int(values.sum())} but {path} has {rows} rows")
            values = values.astype(np.int64)
        elif len(values) != rows and not (kind == "init" and values.size % rows == 0):
            raise DataError(f"{side_path}: has {len(values)} lines but {path} has {rows} rows")
        side[kind] = values
    return side


def read_side_file(path: Path) -> np.ndarray:
    """One side file's numbers; an infinity is refused (NaN is a missing weight or score, as in LightGBM)."""
    import numpy as np

    try:
        values = np.loadtxt(path, dtype=np.float64, ndmin=1)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a column of numbers ({str(exc).splitlines()[0]})") from None
    infinite = np.argwhere(np.isinf(values))
    if len(infinite):
        line = int(infinite[0][0]) + 1
        raise DataError(f"{path}: line {line}: {values[tuple(infinite[0])]} is not a finite number")
    return values


def read_lightgbm_config(path: str | Path) -> dict[str, str]:
    """Parse a LightGBM CLI config (``key = value`` lines, ``#`` comments) into raw strings."""
    path = Path(path)
    text = read_text(path, "LightGBM config ('key = value' lines)")
    params: dict[str, str] = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if "=" not in line:
            raise DataError(f"{path}: line {lineno}: expected 'key = value', got {line!r}")
        key, value = (part.strip() for part in line.split("=", 1))
        params[key] = value
    return params


def parse_value(text: str) -> Any:
    """A LightGBM parameter value from text: int, float, bool or the string itself."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)

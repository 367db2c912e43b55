"""Reading tables and lines from paths or stdin, and writing outputs atomically.

``-`` means stdin for inputs and stdout for outputs everywhere, so every command can sit in a
pipeline. Files are written to a temporary file in the target directory and renamed into place,
so an interrupted write never leaves a half-written file where a good one was.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

from mltoolkit.core.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

STDIO = "-"
T = TypeVar("T")
_TEXT_SUFFIXES = {".csv": ",", ".tsv": "\t", ".tab": "\t"}


def _publish(tmp: str | Path, path: Path) -> None:
    """Give the temporary file the permissions a plain ``open`` would (mkstemp makes it 0600), then rename."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(tmp, 0o666 & ~mask)
    os.replace(tmp, path)


def check_writable_file(path: str | Path) -> Path:
    """Refuse, before any work, an output path that is a directory or lies under a file (exit 3, not an
    ``IsADirectoryError`` after the work is done); make its missing parent folders."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: is a directory; give a file path to write")
    make_folder(path.parent, f"the folder of {path.name}")
    return path


def make_folder(path: Path, what: str = "the folder") -> Path:
    """``mkdir -p path``, or a one-line ``DataError`` naming ``what`` (a file on the way, no permission...)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):  # the path, or a folder on the way to it, is a file
        raise DataError(f"{path}: cannot create {what}: a file, not a folder, is in the way") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot create {what} ({exc.strerror})") from None
    return path


@contextmanager
def atomic_write(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO[Any]]:
    """Open a temporary sibling of ``path`` for writing; rename it over ``path`` only on success."""
    path = check_writable_file(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    binary = "b" in mode
    try:
        with os.fdopen(fd, mode, encoding=None if binary else encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        _publish(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_path(path: str | Path) -> Iterator[Path]:
    """Like ``atomic_write`` for libraries that want a filename (``torch.save``, ``savefig``)."""
    return _atomic_path(Path(path))


@contextmanager
def _atomic_path(path: Path) -> Iterator[Path]:
    check_writable_file(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix or ".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        _publish(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_json(path: str | Path, obj: Any) -> None:
    from mltoolkit.core.console import to_jsonable

    with atomic_write(path) as handle:
        json.dump(to_jsonable(obj), handle, indent=2)
        handle.write("\n")


def read_text(path: Path, what: str) -> str:
    """A UTF-8 text file's contents (a config, a classes file...), or a one-line ``DataError`` naming the file
    and ``what`` it should be."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: {what} not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, expected a {what}") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a UTF-8 text file (a {what} was expected)") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read the {what} ({exc.strerror})") from None


def read_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not readable JSON ({exc})") from None


def _read_source_bytes(source: str | Path) -> bytes:
    if str(source) == STDIO:
        return sys.stdin.buffer.read()
    path = Path(source)
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected a file")
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None


def source_name(source: str | Path) -> str:
    return "<stdin>" if str(source) == STDIO else str(source)


def chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """``items`` in lists of ``size`` (the last may be shorter), read lazily: a stream is scored as it arrives."""
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def iter_lines(source: str | Path) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, stripped_line)`` for the non-blank lines of a file or stdin, lazily."""
    if str(source) == STDIO:
        handle: IO[str] = sys.stdin
        close = False
    else:
        path = Path(source)
        try:
            handle = path.open(encoding="utf-8")
        except FileNotFoundError:
            raise DataError(f"{path}: file not found") from None
        except OSError as exc:
            raise DataError(f"{path}: cannot read ({exc.strerror})") from None
        close = True
    number = 0
    try:
        for number, line in enumerate(handle, start=1):
            line = line.strip()
            if line:
                yield number, line
    except UnicodeDecodeError:
        raise DataError(f"{source_name(source)}: line {number + 1} is not UTF-8 text") from None
    finally:
        if close:
            handle.close()


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def sniff_text_table(sample: str) -> tuple[str, bool]:
    """Guess ``(delimiter, has_header)`` from the first lines of a delimited text table.

    The delimiter is the candidate that splits the first lines into the same number (> 1) of fields;
    the first row is a header when some field of it is not a number while the row below has one
    there (csv.Sniffer's header test is unreliable on numeric tables).
    """
    lines = [line for line in sample.splitlines()[:20] if line.strip()]
    if not lines:
        return ",", True
    best, best_fields = ",", 1
    for delimiter in ("\t", ",", ";", "|", " "):
        counts = {len(line.split(delimiter)) for line in lines[: min(len(lines), 10)]}
        if len(counts) == 1 and (fields := counts.pop()) > best_fields:
            best, best_fields = delimiter, fields
    rows = list(csv.reader(lines[:2], delimiter=best))
    first = [field.strip() for field in rows[0]]
    if len(rows) < 2:
        return best, not all(_is_number(f) for f in first)
    second = [field.strip() for field in rows[1]]
    if all(_is_number(f) for f in first):
        return best, False
    header = any(not _is_number(a) and _is_number(b) for a, b in zip(first, second))
    if not header:  # all-text table: a header unless the first row repeats values of the second's kind
        header = len(set(first)) == len(first)
    return best, header


def read_table(
    source: str | Path,
    *,
    columns: Sequence[str] | None = None,
    delimiter: str | None = None,
    header: bool | None = None,
) -> pd.DataFrame:
    """Read CSV, TSV, Parquet or JSON lines from a path or ``-``, sniffing delimiter and header.

    ``columns`` names the columns of a headerless file (it replaces a sniffed header too).
    Empty input, a missing or unreadable file are ``DataError`` naming the source.
    """
    import pandas as pd

    name = source_name(source)
    suffix = Path(str(source)).suffix.lower() if str(source) != STDIO else ""
    if suffix == ".parquet":
        try:
            frame = pd.read_parquet(source)
        except FileNotFoundError:
            raise DataError(f"{name}: file not found") from None
        except Exception as exc:  # pyarrow raises several types for damaged files
            raise DataError(f"{name}: not a readable Parquet file ({exc})") from None
        return _checked(frame, name, columns)
    raw = _read_source_bytes(source)
    if not raw.strip():
        raise DataError(f"{name}: empty input, expected a table")
    if raw[:4] == b"PAR1":
        return _checked(pd.read_parquet(io.BytesIO(raw)), name, columns)
    text_head = raw[:65536].decode("utf-8", errors="ignore")  # for sniffing only
    if suffix in (".jsonl", ".ndjson") or (suffix != ".csv" and text_head.lstrip().startswith("{")):
        try:
            frame = pd.read_json(io.BytesIO(raw), lines=True)
        except ValueError as exc:
            raise DataError(f"{name}: not valid JSON lines ({exc})") from None
        return _checked(frame, name, columns)
    sniffed_delimiter, sniffed_header = sniff_text_table(text_head)
    delimiter = delimiter or _TEXT_SUFFIXES.get(suffix) or sniffed_delimiter
    if header is None:
        header = sniffed_header and columns is None
    try:
        frame = pd.read_csv(
            io.BytesIO(raw),
            sep=delimiter,
            header=0 if header else None,
            names=list(columns) if columns is not None else None,
            skipinitialspace=delimiter != " ",
            engine="c",
        )
    except (pd.errors.ParserError, ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"{name}: cannot parse as a delimited table ({str(exc).splitlines()[0]})") from None
    if not header and columns is None:
        frame.columns = [str(c) for c in frame.columns]
    return _checked(frame, name, columns)


def _checked(frame: pd.DataFrame, name: str, columns: Sequence[str] | None) -> pd.DataFrame:
    import pandas as pd

    if columns is not None and not isinstance(frame.index, pd.RangeIndex):
        # pandas moves surplus leading fields into the index when fewer names than fields are given
        fields = len(frame.columns) + frame.index.nlevels
        raise DataError(f"{name}: has {fields} columns but {len(columns)} names were given ({', '.join(columns)})")
    if columns is not None and list(frame.columns) != list(columns):
        if len(frame.columns) != len(columns):
            raise DataError(
                f"{name}: has {len(frame.columns)} columns but {len(columns)} names were given ({', '.join(columns)})"
            )
        frame.columns = list(columns)
    if frame.empty:
        raise DataError(f"{name}: the table has no rows")
    return frame


class RecordWriter:
    """Write records one by one as CSV or JSON lines to stdout or (atomically) to a file.

    Use as a context manager; records are dicts and the CSV header comes from the first one.
    Streaming to stdout flushes per record so a downstream ``head`` sees results at once.
    """

    def __init__(self, dest: str | Path | None, fmt: str = "csv") -> None:
        if fmt not in ("csv", "jsonl"):
            from mltoolkit.core.errors import UsageError

            raise UsageError(f"unknown --format {fmt!r}; expected csv or jsonl")
        self.fmt = fmt
        self.dest = None if dest in (None, STDIO) else check_writable_file(dest)
        self._context: Any = None
        self._handle: IO[str] | None = None
        self._csv: Any = None

    def __enter__(self) -> RecordWriter:
        if self.dest is None:
            self._handle = sys.stdout
        else:
            self._context = atomic_write(self.dest, "w")
            self._handle = self._context.__enter__()
        return self

    def write(self, record: Mapping[str, Any]) -> None:
        from mltoolkit.core.console import to_jsonable

        assert self._handle is not None, "use RecordWriter as a context manager"
        if self.fmt == "jsonl":
            self._handle.write(json.dumps(to_jsonable(record)) + "\n")
        else:
            if self._csv is None:
                self._csv = csv.DictWriter(self._handle, fieldnames=list(record), lineterminator="\n")
                self._csv.writeheader()
            self._csv.writerow({k: _csv_value(v) for k, v in record.items()})
        if self.dest is None:
            self._handle.flush()

    def write_all(self, records: Iterable[Mapping[str, Any]]) -> int:
        count = 0
        for record in records:
            self.write(record)
            count += 1
        return count

    def __exit__(self, *exc: Any) -> None:
        if self._context is not None:
            self._context.__exit__(*exc)


def _csv_value(value: Any) -> Any:
    if isinstance(value, float):
        return repr(value) if value == value else ""
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value)
    return value


def write_table(frame: pd.DataFrame, dest: str | Path | None, fmt: str = "csv") -> None:
    """Write a whole DataFrame as CSV or JSON lines to stdout or atomically to a file."""
    if fmt not in ("csv", "jsonl"):
        from mltoolkit.core.errors import UsageError

        raise UsageError(f"unknown --format {fmt!r}; expected csv or jsonl")
    if dest in (None, STDIO):
        _write_frame(frame, sys.stdout, fmt)
        sys.stdout.flush()
        return
    with atomic_write(dest) as handle:
        _write_frame(frame, handle, fmt)


def _write_frame(frame: pd.DataFrame, handle: IO[str], fmt: str) -> None:
    if fmt == "csv":
        frame.to_csv(handle, index=False, lineterminator="\n")
    elif len(frame):
        frame.to_json(handle, orient="records", lines=True)
        handle.write("\n")

"""The training encoding, saved with the model so that predict applies exactly the same one.

LightGBM sees a float matrix. Turning a table into it means choosing feature columns and their order,
numbering categorical levels and class labels. Doing that again at predict time from whatever the
new file holds is the classic pitfall (pandas categories numbered differently, columns reordered);
here the numbering is decided once, stored in ``schema.json`` and replayed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Container, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from mltoolkit.core.console import info, warn
from mltoolkit.core.errors import DataError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from mltoolkit.boost.data import Table

TASKS = ("binary", "multiclass", "regression", "lambdarank")
MAX_CLASSES = 50  # an integer target with more distinct values than this is a regression target
NUMBER_TYPES = (int, float)  # exact types: a bool is not a number here (pandas gives bool columns their own rules)


@dataclass
class Feature:
    name: str
    categorical: bool = False
    levels: list[Any] | None = None  # categorical levels in code order (code = index)

    @cached_property
    def plain_types(self) -> tuple[type, ...]:
        """The Python types of values ``encode_values`` encodes without pandas: numbers for a numeric feature,
        the levels' own type (text or numbers) for a categorical one. Levels that mix types, or are booleans,
        get none: pandas compares those in ways of its own, so their rows keep pandas' path."""
        if not self.categorical:
            return NUMBER_TYPES
        for types in ((str,), NUMBER_TYPES):
            if self.levels and all(type(level) in types for level in self.levels):
                return types
        return ()

    @cached_property
    def codes(self) -> dict[Any, int]:
        """Level -> code, for looking up a few values one by one (``Index.get_indexer`` costs ~100 us a call)."""
        return {level: code for code, level in enumerate(self.levels or [])}


@dataclass
class Schema:
    task: str
    target: str | None
    features: list[Feature]
    classes: list[Any] | None = None  # class labels in LightGBM label order
    id_columns: list[str] = field(default_factory=list)
    weight: str | None = None
    group: str | None = None
    sparse_width: int | None = None  # LibSVM input: number of feature indices
    headerless: bool = False
    init_score: bool = False  # trained with LightGBM .init side files

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def categorical_indices(self) -> list[int]:
        return [i for i, f in enumerate(self.features) if f.categorical]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Schema:
        features = [Feature(**f) for f in data.pop("features")]
        return cls(features=features, **data)

    def encode(self, table: Table, *, warned: set[str] | None = None, dtype: Any = "float64") -> Any:
        """The feature matrix of ``table`` in training order and encoding (``dtype``: float64, or float32 where
        memory is short, as on a Dask worker; CSR for LibSVM)."""
        if self.sparse_width is not None:
            return _sparse_features(table, self.sparse_width)
        frame, warned = table.frame, set() if warned is None else warned
        self._require(frame.columns, table.source)
        return _matrix(
            len(frame),
            self.features,
            lambda feature: encode_column(frame[feature.name], feature, table.source, table.first_row, warned),
            dtype,
        )

    def encode_rows(
        self, rows: Sequence[Mapping[str, Any]], source: str, *, warned: set[str] | None = None
    ) -> np.ndarray:
        """The matrix ``encode`` makes of the table holding ``rows`` (dicts of column -> value, a missing key a
        missing value), built without that table: a frame costs pandas milliseconds a call, whatever its rows."""
        if self.sparse_width is not None:
            raise _libsvm_only(source)
        warned = set() if warned is None else warned
        self._require(set().union(*rows), source)
        return _matrix(
            len(rows),
            self.features,
            lambda feature: encode_values([row.get(feature.name) for row in rows], feature, source, warned),
        )

    def _require(self, columns: Container[str], source: str) -> None:
        missing = [name for name in self.names if name not in columns]
        if missing:
            raise DataError(f"{source}: missing feature column(s) {', '.join(missing)} used in training")

    def encode_target(self, values: Any, source: str) -> np.ndarray:
        """Class labels to 0..K-1 (unknown class -> DataError), numbers to float64."""
        import numpy as np
        import pandas as pd

        series = pd.Series(values)
        if series.isna().any():
            row = int(np.flatnonzero(series.isna().to_numpy())[0]) + 1
            raise DataError(f"{source}: target {self.target!r} is empty in row {row}")
        if self.classes is None:
            return numbers(series, self.target or "label", source)
        codes = pd.Index(self.classes).get_indexer(_as_level_type(series, self.classes))
        if (codes < 0).any():
            row = int(np.flatnonzero(codes < 0)[0])
            raise DataError(
                f"{source}: target value {series.iloc[row]!r} in row {row + 1} is not one of the training classes "
                f"{', '.join(map(str, self.classes))}"
            )
        return codes.astype(np.float64)


def infer_task(values: pd.Series, has_group: bool) -> str:
    """binary for two classes, multiclass for a few discrete ones, regression for floats, lambdarank with groups."""
    import numpy as np
    import pandas as pd

    if has_group:
        return "lambdarank"
    distinct = values.dropna().unique()
    if len(distinct) == 2:
        return "binary"
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        integral = np.all(np.mod(distinct.astype(np.float64), 1) == 0)
        return "multiclass" if integral and len(distinct) <= MAX_CLASSES else "regression"
    return "multiclass"


def class_labels(values: pd.Series, source: str, target: str) -> list[Any]:
    """The sorted distinct labels; a target with one class cannot be learned."""
    distinct = sorted(values.dropna().unique().tolist(), key=lambda v: (isinstance(v, str), v))
    if len(distinct) < 2:
        only = distinct[0] if distinct else "nothing"
        raise DataError(f"{source}: target {target!r} has a single class ({only}); need at least two to classify")
    return [v.item() if hasattr(v, "item") else v for v in distinct]


def infer_features(frame: pd.DataFrame, exclude: set[str], categorical: set[str], source: str) -> list[Feature]:
    """Every column not excluded, in file order; string columns and ``categorical`` ones get levels."""
    import pandas as pd

    unknown = categorical - set(frame.columns)
    if unknown:
        raise DataError(f"{source}: --categorical column(s) {', '.join(sorted(unknown))} not in the table")
    features = []
    for name in frame.columns:
        if name in exclude:
            continue
        column = frame[name]
        is_text = not pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
        if is_text and name not in categorical:
            _reject_stray_text(column, name, source)
        if is_text or name in categorical:
            levels = sorted(column.dropna().unique().tolist(), key=lambda v: (isinstance(v, str), v))
            levels = [v.item() if hasattr(v, "item") else v for v in levels]
            features.append(Feature(name, True, levels))
        else:
            features.append(Feature(name))
    if not features:
        raise DataError(f"{source}: no feature columns left after removing the target, id, weight and group")
    return features


def _reject_stray_text(column: pd.Series, name: str, source: str) -> None:
    """A mostly numeric column with a few words in it is a data error, not a categorical feature."""
    import pandas as pd

    present = column.dropna()
    numbers = pd.to_numeric(present, errors="coerce")
    if len(present) and numbers.notna().mean() >= 0.9:
        bad = numbers.isna().to_numpy().nonzero()[0][0]
        row = int(present.index[bad]) + 1
        raise DataError(f"{source}: column {name!r} row {row}: {present.iloc[bad]!r} is not a number")


def _matrix(
    rows: int, features: list[Feature], column: Callable[[Feature], Sequence[float]], dtype: Any = "float64"
) -> np.ndarray:
    """The Fortran-ordered matrix LightGBM reads without a copy, filled one feature's column at a time."""
    import numpy as np

    matrix = np.empty((rows, len(features)), dtype=dtype, order="F")
    for j, feature in enumerate(features):
        matrix[:, j] = column(feature)
    return matrix


def encode_column(column: pd.Series, feature: Feature, source: str, first_row: int, warned: set[str]) -> np.ndarray:
    """One feature of a table: numbers as float64, categories as their codes (unseen ones NaN, warned once)."""
    import numpy as np
    import pandas as pd

    if not feature.categorical:
        return numbers(column, feature.name, source, first_row)
    codes = pd.Index(feature.levels).get_indexer(_as_level_type(column, feature.levels))
    unseen = (codes < 0) & column.notna().to_numpy()
    if unseen.any():
        _warn_unseen(feature, source, int(unseen.sum()), column[unseen].iloc[0], warned)
    return np.where(codes < 0, np.nan, codes)


def encode_values(values: list[Any], feature: Feature, source: str, warned: set[str]) -> list[float] | np.ndarray:
    """One feature of a few rows, as ``encode_column`` encodes the table's column of them.

    Plain values (None, numbers, text of text levels: what JSON holds) are converted or looked up here into a
    list, in microseconds (a numpy call on a one-row array costs as much as the lookup of all of them). Anything
    else (a number in text, a bool, a number for a text level) goes to ``encode_column`` in a ``pd.Series``, which
    infers the dtype that a table of these rows would have: same codes, same errors."""
    import numpy as np

    types = feature.plain_types
    if not types or not all(value is None or type(value) in types for value in values):
        import pandas as pd

        return encode_column(pd.Series(values), feature, source, 0, warned)
    if not feature.categorical:
        floats = [math.nan if value is None else value for value in values]
        if math.inf in floats or -math.inf in floats:
            return finite(np.array(floats, dtype=np.float64), feature.name, source)  # raises, naming the row
        return floats
    codes = [feature.codes.get(value) for value in values]
    unseen = [value for value, code in zip(values, codes) if code is None and value is not None and value == value]
    if unseen:
        _warn_unseen(feature, source, len(unseen), unseen[0], warned)
    return [math.nan if code is None else code for code in codes]


def _warn_unseen(feature: Feature, source: str, count: int, example: Any, warned: set[str]) -> None:
    """Once per column and command: categories unseen in training are scored as missing values."""
    if feature.name in warned:
        return
    warned.add(feature.name)
    example = example.item() if hasattr(example, "item") else example  # 5, not np.int64(5)
    warn(
        f"{source}: column {feature.name!r} has {count} value(s) never seen in training (e.g. {example!r}); "
        "treated as missing"
    )


def _as_level_type(column: pd.Series, levels: list[Any] | None) -> pd.Series:
    """Compare like with like: string levels against the column's text, numeric levels against numbers."""
    import pandas as pd

    if levels and isinstance(levels[0], str):
        if pd.api.types.is_string_dtype(column) or column.dtype == object:
            return column
        return column.astype("string").astype(object).where(column.notna(), None)
    if pd.api.types.is_numeric_dtype(column):
        return column
    return pd.to_numeric(column, errors="coerce")


def numbers(column: pd.Series, name: str, source: str, first_row: int = 0) -> np.ndarray:
    """A column as float64; empty cells are NaN (LightGBM's missing value). A word or an infinity in it is
    exit 3 naming the column and the row (counted from ``first_row``, where a chunk of a file starts)."""
    import numpy as np
    import pandas as pd

    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        parsed = pd.to_numeric(column, errors="coerce")
        bad = parsed.isna().to_numpy() & column.notna().to_numpy()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{source}: column {name!r} row {first_row + row + 1}: {column.iloc[row]!r} is not a number"
            )
        values = parsed.to_numpy(dtype=np.float64, na_value=np.nan)
    return finite(values, name, source, first_row)


def finite(values: np.ndarray, name: str, source: str, first_row: int = 0) -> np.ndarray:
    """``values`` as they are; an infinity is exit 3 naming the column and the row (NaN is a missing value)."""
    import numpy as np

    infinite = np.isinf(values)
    if infinite.any():
        row = int(np.flatnonzero(infinite)[0])
        raise DataError(f"{source}: column {name!r} row {first_row + row + 1}: {values[row]} is not a finite number")
    return values


def _sparse_features(table: Table, width: int) -> Any:
    """LibSVM rows padded or cut to the training width (absent indices are zeros in that format)."""
    import scipy.sparse as sp

    matrix = table.sparse
    if matrix is None:
        raise _libsvm_only(table.source)
    if matrix.shape[1] > width:
        info(f"note: {table.source}: feature indices >= {width} were not in training; ignored")
        matrix = matrix[:, :width]
    elif matrix.shape[1] < width:
        matrix = sp.csr_matrix((matrix.data, matrix.indices, matrix.indptr), shape=(matrix.shape[0], width))
    return matrix


def _libsvm_only(source: str) -> DataError:
    return DataError(f"{source}: the model was trained on LibSVM data; give LibSVM rows to score")

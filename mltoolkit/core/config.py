"""Resolving a technique's config: built-in defaults < preset < ``--config`` file < explicit flags.

Each technique describes its hyperparameters as a dataclass with defaults. Flags that the user did
not type arrive as ``None`` and leave the lower layers alone, so a config file is really overridden
only by what was typed. The resolved dataclass is written whole to ``config.json``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from mltoolkit.core.errors import DataError
from mltoolkit.core.io import read_text

C = TypeVar("C")


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a JSON, YAML or TOML mapping; the format follows the file's suffix."""
    path = Path(path)
    text = read_text(path, "config file (JSON, YAML or TOML)")
    suffix = path.suffix.lower()
    try:
        if suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        elif suffix == ".toml":
            if sys.version_info >= (3, 11):
                import tomllib
            else:  # pragma: no cover
                import tomli as tomllib
            data = tomllib.loads(text)
        else:
            data = json.loads(text)
    except Exception as exc:
        raise DataError(f"{path}: not a valid {suffix.lstrip('.') or 'JSON'} config ({exc})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: a config file must hold a mapping of option names to values")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def build_config(cls: type[C], *layers: dict[str, Any] | None, source: str = "config") -> C:
    """Merge ``layers`` (later wins, ``None`` values skipped) over ``cls``'s defaults.

    Unknown keys and values of the wrong type are ``DataError``: a typo in a config file must not
    silently train with the default.
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for layer in layers:
        for key, value in (layer or {}).items():
            key = key.replace("-", "_")
            if key not in fields:
                close = _close_matches(key, fields)
                raise DataError(f"unknown {source} key {key!r}" + (f"; did you mean {close}?" if close else ""))
            if value is not None:
                values[key] = _coerce(key, value, hints[key])
    return cls(**values)


def _close_matches(key: str, names: typing.Iterable[str]) -> str:
    import difflib

    return ", ".join(difflib.get_close_matches(key, list(names), n=3))


def _coerce(key: str, value: Any, hint: Any) -> Any:
    """Accept the value if it fits the annotation, converting int->float and list->tuple."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        for option in options:
            try:
                return _coerce(key, value, option)
            except DataError:
                continue
        raise DataError(f"config key {key!r}: {value!r} is not a {hint}")
    if origin is typing.Literal:
        if value in typing.get_args(hint):
            return value
        raise DataError(f"config key {key!r}: {value!r} is not one of {', '.join(map(str, typing.get_args(hint)))}")
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise DataError(f"config key {key!r}: expected a list, got {value!r}")
        args = typing.get_args(hint)
        item = args[0] if args else Any
        items = [_coerce(key, v, item) for v in value]
        return tuple(items) if origin is tuple else items
    if hint is Any:
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str) and value.lower() in _NON_FINITE:
        return float(value)  # config.json's spelling of inf and nan (JSON has neither)
    if hint is bool and not isinstance(value, bool):
        raise DataError(f"config key {key!r}: expected true or false, got {value!r}")
    if isinstance(hint, type) and not isinstance(value, hint):
        raise DataError(f"config key {key!r}: expected {hint.__name__}, got {value!r}")
    return value


_NON_FINITE = ("inf", "+inf", "-inf", "nan")


def config_dict(config: Any) -> dict[str, Any]:
    """A plain dict of a config dataclass, safe for JSON and ``torch.load(weights_only=True)``.

    inf and nan are written as the strings ``"inf"``, ``"-inf"``, ``"nan"`` (JSON has no such numbers,
    and ``null`` would read back as "use the default"), which ``build_config`` reads back as floats.
    """

    def plain(value: Any) -> Any:
        if isinstance(value, tuple):
            return [plain(v) for v in value]
        if isinstance(value, float) and not math.isfinite(value):
            return str(value)
        return value

    return {k: plain(v) for k, v in dataclasses.asdict(config).items()}


def resolve_config(
    cls: type[C],
    flags: dict[str, Any],
    *,
    config_file: str | Path | None = None,
    resumed: dict[str, Any] | None = None,
    base: dict[str, Any] | None = None,
) -> C:
    """The one way every ``train`` builds its config: defaults < ``base`` (a preset; ignored when resuming)
    < the resumed run's config.json < ``--config`` file < typed flags; path fields made absolute, and
    every value checked against its field's range before anything is written."""
    from mltoolkit.core.params import absolute_paths, check_config

    file_layer = load_config_file(config_file) if config_file is not None else {}
    lower = resumed if resumed is not None else (base or {})
    config = absolute_paths(build_config(cls, lower, file_layer, flags))
    check_config(config)
    return config

"""A technique's options, described once: the config dataclass field is the default, the help and the range.

``param(default, "help", ge=1)`` is a dataclass field. From those fields come the ``train`` command's
flags (``config_options``), their ``[default: ...]`` and range in ``--help``, and the check that every
value, typed or read from a ``--config`` file or a resumed run, is in range before anything is
written (``check_config``). A new option is therefore covered by ``--help``, the check and
``tests/test_bad_inputs.py`` as soon as it is a field.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from mltoolkit.core.errors import DataError


@dataclasses.dataclass(frozen=True)
class Spec:
    """What a field means on the command line and which values it accepts."""

    help: str
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    finite: bool = True  # floats must be finite (inf and nan are refused)
    flag: str | None = None  # the flag's name, default --field-name (a bool gets --x/--no-x)
    short: str | None = None
    panel: str | None = None  # a rich help panel to group the option under
    default_text: str | None = None  # what the default means, where the value is None or computed
    parse: Callable[[str], Any] | None = None  # the flag takes text, turned into the field's value
    path: bool = False  # a file or folder: stored absolute, so the run works from any directory
    cli: bool = True  # False: a config-file-only key

    def range_text(self) -> str:
        bounds = ((">=", self.ge), (">", self.gt), ("<=", self.le), ("<", self.lt))
        return " and ".join(f"{op} {_number(value)}" for op, value in bounds if value is not None)

    def violates(self, value: float) -> bool:
        """True when a number is outside the range (or not finite where it must be)."""
        if isinstance(value, float) and math.isnan(value):
            return True
        if self.finite and isinstance(value, float) and math.isinf(value):
            return True
        return (
            (self.ge is not None and value < self.ge)
            or (self.gt is not None and value <= self.gt)
            or (self.le is not None and value > self.le)
            or (self.lt is not None and value >= self.lt)
        )


def param(default: Any, help: str, **spec: Any) -> Any:
    """A config field with its help and range: ``batch_size: int = param(64, "Images per batch.", ge=1)``."""
    meta = {"spec": Spec(help=help, **spec)}
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def spec_of(field: dataclasses.Field) -> Spec:
    return field.metadata.get("spec") or Spec(help="")


def flag_of(field: dataclasses.Field) -> str:
    return spec_of(field).flag or "--" + field.name.replace("_", "-")


def check_config(config: Any) -> None:
    """Refuse the first value out of its field's range, naming the flag, what it accepts and what it got."""
    for field in dataclasses.fields(config):
        spec = spec_of(field)
        value = getattr(config, field.name)
        items = value if isinstance(value, (tuple, list)) else (value,)
        for item in items:
            if isinstance(item, bool) or not isinstance(item, (int, float)):
                continue
            if spec.violates(item):
                expected = spec.range_text() or "a finite number"
                if isinstance(item, float) and not math.isfinite(item) and spec.finite:
                    expected = f"a finite number {expected}".strip() if spec.range_text() else expected
                raise DataError(f"{flag_of(field)} must be {expected} (got {_show(value)})")


def absolute_paths(config: Any) -> Any:
    """The config with every path field made absolute (``-`` and ``None`` kept), so that ``evaluate`` and
    ``--resume`` find the data from another working directory."""
    changes = {}
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if spec_of(field).path and isinstance(value, (str, Path)) and str(value) not in ("", "-"):
            changes[field.name] = type(value)(Path(value).expanduser().absolute())
    return dataclasses.replace(config, **changes) if changes else config


def _number(value: float) -> str:
    """``4294967296`` rather than ``4.29497e+09``; ``0.001`` as written."""
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:g}"


def _show(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(map(_show, value))
    return f"{value:g}" if isinstance(value, float) else str(value)


# --- the train command's options, generated from the fields -------------------------------------------


def config_options(cls: type, *, skip: tuple[str, ...] = ()) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a Typer command one option per field of ``cls``; they reach it as ``flags``: a dict holding
    only what was typed (``None`` = not typed, so a ``--config`` file or a resumed run decides).

    The command keeps its own parameters (arguments, ``--config``, ``--resume``...) and declares
    ``flags: dict`` where the generated options go.
    """

    hints = typing.get_type_hints(cls)
    fields = [f for f in dataclasses.fields(cls) if f.name not in skip and spec_of(f).cli]

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        resolved = typing.get_type_hints(command, include_extras=True)  # the command's module may postpone them
        own = [
            p.replace(annotation=resolved.get(p.name, p.annotation))
            for p in inspect.signature(command).parameters.values()
            if p.name != "flags"
        ]
        generated = [_parameter(f, hints[f.name]) for f in fields]
        taken = {p.name for p in own}
        generated = [p for p in generated if p.name not in taken]
        names = {p.name: f for p, f in zip(generated, fields)}

        @functools.wraps(command)
        def wrapper(**kwargs: Any) -> Any:
            flags = {}
            for name, field in names.items():
                value = kwargs.pop(name)
                parse = spec_of(field).parse
                flags[field.name] = parse(value) if (parse is not None and value is not None) else value
            return command(flags=flags, **kwargs)

        parameters = own + generated
        wrapper.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
        del wrapper.__wrapped__  # Typer must read the new signature, not the command's own
        return wrapper

    return decorate


def _parameter(field: dataclasses.Field, hint: Any) -> inspect.Parameter:
    import typer

    spec = spec_of(field)
    base = _cli_type(hint, spec)
    names = [flag_of(field)] + ([spec.short] if spec.short else [])
    if base is bool:
        names = [f"{names[0]}/--no-{names[0][2:]}"] + names[1:]
    option = typer.Option(*names, help=_help(field, hint, spec), rich_help_panel=spec.panel, show_default=False)
    return inspect.Parameter(
        field.name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[base | None, option]
    )


def _cli_type(hint: Any, spec: Spec) -> type:
    """The type Typer parses: str for parsed and list fields and choices, else the field's own scalar type."""
    if spec.parse is not None:
        return str
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        return _cli_type(options[0], spec) if len(options) == 1 else str
    if hint in (int, float, bool, str):
        return hint
    if hint is Path:
        return Path
    return str


def _help(field: dataclasses.Field, hint: Any, spec: Spec) -> str:
    """The help text with the default and the range appended; ``[`` escaped so rich does not eat it."""
    default = spec.default_text
    if default is None:
        value = field.default if field.default is not dataclasses.MISSING else field.default_factory()  # type: ignore[misc]
        if value is not None and value != "":
            default = _show(value) if not isinstance(value, bool) else ("on" if value else "off")
    choices = typing.get_args(hint) if typing.get_origin(hint) is typing.Literal else ()
    extra = [f"one of: {', '.join(map(str, choices))}"] if choices and "," not in spec.help else []
    if spec.range_text():
        extra.append(spec.range_text())
    if default is not None:
        extra.append(f"default: {default}")
    text = spec.help + (f" [{'; '.join(extra)}]" if extra else "")
    return text.replace("[", "\\[")


@dataclasses.dataclass
class RunOptions:
    """Options every technique's ``train`` has beside its own: each config dataclass inherits them."""

    tensorboard: bool = param(
        False, "Also write every metrics row as TensorBoard scalars under <run>/tb/ (needs mltk[tensorboard])."
    )


def check_counts(**counts: int | None) -> None:
    """Counts given to evaluate or predict (``top_k=``, ``batch_size=``): each at least 1, or None (not given).
    Checked before the model is loaded, so that a typo costs nothing and is not silently corrected."""
    for name, value in counts.items():
        if value is not None and value < 1:
            raise DataError(f"--{name.replace('_', '-')} must be at least 1 (got {value})")

"""Options written once: a config dataclass is the single description of a command's settings.

Each field carries its help text (``opt(default, "help")``) and, where the command line spells it differently,
its flag; :func:`typer_command` builds the typer command from the fields (as TRL builds its parser from
``SFTConfig``), so a setting is declared in one place and the CLI, the YAML of ``--config`` and of recipes, the saved
``train_config.json`` and the resume check all use the same names. ``--config FILE.yaml`` gives defaults for any
field; flags given on the command line win.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import types
import typing
from pathlib import Path
from typing import Any, Callable, Optional

import typer


def opt(default: Any = dataclasses.MISSING, help: str = "", *, flag: Optional[str] = None, short: Optional[str] = None,
        invert: bool = False, cli: bool = True, resume_check: bool = True, factory: Any = dataclasses.MISSING,
        min: Optional[float] = None, max: Optional[float] = None):
    """A config field with its help text. ``flag``: the command-line name when it is not ``--field-name``;
    ``invert``: a boolean flag that sets the field to False (``--quiet`` for ``progress``); ``cli``: False keeps it
    off the command line; ``resume_check``: False when a different value may resume a run (bookkeeping);
    ``min``/``max``: the allowed range of a number (checked by :func:`check_ranges`, shown in the help)."""
    metadata = {"help": help, "flag": flag, "short": short, "invert": invert, "cli": cli,
                "resume_check": resume_check, "range": (min, max) if min is not None or max is not None else None}
    if factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


class OptionError(ValueError):
    """A setting outside its allowed values; ``flag`` names it as the command line spells it."""

    def __init__(self, flag: str, reason: str):
        self.flag, self.reason = flag, reason
        super().__init__(f"{flag} {reason}")


def _usage_error(err: OptionError) -> None:
    """``error: --flag reason`` on one line like every other error (typer's boxed usage error would wrap a path
    in two), exit code 2 like a usage error."""
    from rich.console import Console

    from iepile.cli.console import print_error

    print_error(Console(stderr=True), err)
    raise typer.Exit(2)


def flag_of(f: dataclasses.Field) -> str:
    """The command-line name of a field (``--dedup`` for ``--dedup/--no-dedup``)."""
    return (f.metadata.get("flag") or "--" + f.name.replace("_", "-")).split("/")[0]


def _describe_range(low: Optional[float], high: Optional[float]) -> str:
    if low is not None and high is not None:
        return f"between {low:g} and {high:g}"
    return f"at least {low:g}" if low is not None else f"at most {high:g}"


def check_ranges(config: Any) -> None:
    """Every number with a range in its :func:`opt` is a finite number inside it (a plain ``min <= x <= max``
    lets NaN through: every comparison with NaN is false), else an :class:`OptionError` naming the flag, the range
    and what the setting means."""
    for f in dataclasses.fields(config):
        bounds, value = f.metadata.get("range"), getattr(config, f.name)
        if bounds is None or value is None:
            continue
        low, high = bounds
        number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if not number or (low is not None and value < low) or (high is not None and value > high):
            meaning = f.metadata.get("help", "").rstrip(".")
            raise OptionError(flag_of(f), f"must be {_describe_range(low, high)}, got {value!r}"
                              + (f" ({meaning})" if meaning else ""))


def resume_ignored(cls: type) -> set[str]:
    """Fields whose value may differ when a run resumes."""
    return {f.name for f in dataclasses.fields(cls) if not f.metadata.get("resume_check", True)}


def _cli_type(hint: Any) -> tuple[Any, Optional[list]]:
    """(type typer understands, choices) for a field's annotation: Literal → str with its choices; ``X | None`` →
    Optional[X]; ``list[str]`` → a comma-separated string."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Literal:
        return str, list(args)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        inner, choices = _cli_type(next(a for a in args if a is not type(None)))
        return Optional[inner], choices
    if origin is list:
        return str, None
    return hint, None


def _is_list(hint: Any) -> bool:
    """``list[X]`` or ``list[X] | None``."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return any(_is_list(arg) for arg in typing.get_args(hint))
    return typing.get_origin(hint) is list


def typer_command(cls: type, run: Callable[..., None], *, arguments: tuple[str, ...] = (),
                  doc: Optional[str] = None, extra: Optional[dict[str, tuple[Any, Any]]] = None) -> Callable:
    """A typer command whose parameters are the fields of ``cls`` (``arguments`` are positional) plus
    ``--config``; it builds ``cls(**values)`` and calls ``run`` with it. ``extra`` adds parameters that are not
    settings (``{name: (type, typer.Argument/Option)}``, first on the command line), given to ``run`` by name."""
    hints = typing.get_type_hints(cls)
    parameters, fields = [], {}
    for name, (kind, info) in (extra or {}).items():
        parameters.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=info, annotation=kind))
    for f in dataclasses.fields(cls):
        meta = f.metadata
        if not meta.get("cli", True):
            continue
        kind, choices = _cli_type(hints[f.name])
        help_text = meta.get("help", "") + (f" One of: {', '.join(map(str, choices))}." if choices else "")
        if meta.get("range"):
            help_text += f" Allowed: {_describe_range(*meta['range'])}."
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if required:
            default = ...
        else:
            default = f.default_factory() if f.default is dataclasses.MISSING else f.default
        if f.name in arguments:
            info = typer.Argument(default, help=help_text, metavar=f.name.upper())
        else:
            if meta.get("invert"):
                kind, default = bool, False
            names = [meta.get("flag") or "--" + f.name.replace("_", "-")] + ([meta["short"]] if meta.get("short")
                                                                             else [])
            if not required and _is_list(hints[f.name]):
                default = None if default is None else ",".join(default)
            info = typer.Option(default, *names, help=help_text)
        parameters.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=info, annotation=kind))
        fields[f.name] = f
    parameters.append(inspect.Parameter("config", inspect.Parameter.KEYWORD_ONLY, annotation=Optional[str],
                                        default=typer.Option(None, "--config", help="YAML file of settings (field "
                                                             "names as keys); flags given here win.")))

    def command(ctx: typer.Context, **values: Any) -> None:
        passed = {name: values.pop(name) for name in (extra or {})}
        try:
            config = build_config(cls, values, values.pop("config"), ctx, fields, hints)
            check_ranges(config)
        except OptionError as err:  # a usage error (exit code 2) naming the flag, before any work
            _usage_error(err)
        run(config, **passed)

    command.__signature__ = inspect.Signature(
        [inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context), *parameters])
    command.__doc__ = doc or cls.__doc__
    command.__name__ = cls.__name__
    return command


def build_config(cls: type, values: dict, config_file: Optional[str], ctx: Optional[typer.Context] = None,
                 fields: Optional[dict] = None, hints: Optional[dict] = None) -> Any:
    """``cls`` from command-line ``values`` over the YAML ``config_file`` (a flag left at its default does not
    override the file)."""
    fields = fields or {f.name: f for f in dataclasses.fields(cls)}
    hints = hints or typing.get_type_hints(cls)
    settings: dict[str, Any] = {}
    if config_file:
        from iepile.fileio import load_yaml

        try:
            loaded = load_yaml(Path(config_file).read_text(encoding="utf-8"), config_file) or {}
        except (OSError, ValueError) as err:
            raise OptionError("--config", str(err)) from None
        known = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(loaded, dict) or set(loaded) - known:
            unknown = sorted(set(loaded) - known) if isinstance(loaded, dict) else "not a mapping"
            raise OptionError("--config", f"{config_file}: unknown setting(s) {unknown}")
        settings.update(loaded)
    for name, value in values.items():
        source = ctx.get_parameter_source(name) if ctx is not None else None
        given = source is None or source.name not in ("DEFAULT", "DEFAULT_MAP")  # typer may vendor its own click
        if name in settings and not given:
            continue
        meta = fields[name].metadata
        if meta.get("invert"):
            value = not value
        elif _is_list(hints[name]) and isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        settings[name] = value
    return cls(**settings)

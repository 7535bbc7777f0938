"""argparse flags built from settings dataclasses, and the dataclasses rebuilt from the namespace.

The one mechanism from settings to flags of every command. Each settings dataclass of the project
(LoraSettings, MiningSettings, LossWeights, HarProtocol, SynthSettings, UpstreamSettings, ...) is
the single source of a flag's name, type, default, help text (``metadata["help"]``), accepted
values (``metadata["choices"]`` or a Literal type) and validation: this module turns its fields
into one argparse group, so that the command line and the library cannot drift apart. Booleans
become ``--flag / --no-flag`` (BooleanOptionalAction), tuple fields take several values, and a
ValueError from the dataclass's ``__post_init__`` becomes an error naming the flag. A field's
``metadata["parse"]`` (a function str -> value raising ValueError) replaces its type's parser, and
``metadata["aliases"]`` lists further flag names (upstream's spelling of the same option).

Torch devices are parsed here once for every command (:func:`parse_device`), so that each accepts
both its own strings (auto, cpu, cuda, cuda:N) and upstream MDM's integer ``--device`` (N, -1 = CPU).

It imports nothing from the package, so every layer may use it.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import types
import typing
from typing import Any, Mapping, Optional, Sequence, TypeVar, Union

T = TypeVar("T")

_NONE_WORDS = ("none", "None", "")

#: help text of every device flag and field
DEVICE_HELP = ("torch device: auto (cuda when available), cpu, cuda, cuda:N, or upstream MDM's integer "
               "--device (N = cuda:N, -1 = cpu)")
_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


def parse_device(value: str | int) -> str:
    """A device flag's value in its canonical spelling: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.

    Upstream MDM's integer ``--device`` (utils/parser_util.py: the CUDA device id, default 0; its
    utils/dist_util.py falls back to the CPU for a negative id) is accepted beside the names:
    ``N`` >= 0 becomes ``cuda:N`` and ``-1`` becomes ``cpu``.

    Raises:
        ValueError: anything else, listing the accepted values.
    """
    text = str(value).strip()
    if re.fullmatch(r"[+-]?\d+", text):
        index = int(text)
        if index >= 0:
            return f"cuda:{index}"
        if index == -1:
            return "cpu"
    elif _DEVICE.fullmatch(text.lower()):
        return text.lower()
    raise ValueError(f"device {value!r} is not one of: auto, cpu, cuda, cuda:N, N (= cuda:N), -1 (= cpu)")


def upstream_device_index(device: str | int) -> int | None:
    """Upstream MDM's integer ``--device`` for a device flag's value (see :func:`parse_device`).

    Returns:
        -1 for the CPU, N for ``cuda:N`` (0 for ``cuda``), None for ``auto`` (upstream's own
        default, 0, already means the first GPU when there is one, else the CPU).

    Raises:
        ValueError: as :func:`parse_device`.
    """
    device = parse_device(device)
    if device == "auto":
        return None
    if device == "cpu":
        return -1
    return int(device.partition(":")[2] or 0)


def device_type(text: str) -> str:
    """:func:`parse_device` as an argparse ``type``: a bad value is reported as the flag's error."""
    return _flag_type(parse_device)(text)


def device_field(default: str = "auto", help: str = DEVICE_HELP) -> Any:
    """A settings dataclass field of a torch device: its flag parses with :func:`parse_device`.

    The dataclass's ``__post_init__`` should still pass the value through :func:`parse_device`,
    for library callers that bypass the flag (e.g. ``device=0``).
    """
    return dataclasses.field(default=default, metadata={"help": help, "parse": parse_device})


def _flag_type(parse):
    """``parse`` (str -> value, raising ValueError) as an argparse type whose errors show the message."""
    def flag_value(text: str):
        try:
            return parse(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from err
    flag_value.__name__ = getattr(parse, "__name__", "value")
    return flag_value


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    """(inner type, True) for Optional[X] / X | None, else (tp, False)."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0], True
    return tp, False


def _scalar_parser(tp: Any, optional: bool):
    """A function str -> value for one command-line word of type ``tp``."""
    if tp is Any:
        tp = str
    if optional:
        def parse(text: str, _tp=tp):
            return None if text in _NONE_WORDS else _tp(text)
        parse.__name__ = getattr(tp, "__name__", "value")
        return parse
    return tp


def flag_name(field_name: str, prefix: str = "") -> str:
    """The command-line flag of a settings field: ``--{prefix}{field_name}``."""
    return f"--{prefix}{field_name}"


def _default_of(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return field.default_factory()  # type: ignore[misc]
    return None


def _help_text(field: dataclasses.Field, default: Any, required: bool) -> str:
    text = field.metadata.get("help") or ""
    if required:
        suffix = "(required)"
    elif default is None:
        # an unset optional: its help says what applies instead
        suffix = "" if "default" in text else "(default: unset)"
    elif isinstance(default, (tuple, list)):
        suffix = f"(default: {' '.join(map(str, default)) or 'none'})"
    else:
        suffix = f"(default: {default})"
    return f"{text} {suffix}".strip().replace("%", "%%")


def add_dataclass_options(
    parser: argparse.ArgumentParser,
    cls: type,
    title: str,
    *,
    prefix: str = "",
    defaults: Optional[Mapping[str, Any]] = None,
    skip: Sequence[str] = (),
    renames: Optional[Mapping[str, str]] = None,
    description: Optional[str] = None,
    unset_defaults: bool = False,
) -> argparse._ArgumentGroup:
    """Add one argparse group with a flag per field of the dataclass ``cls``.

    Args:
        parser: the parser to extend.
        cls: a dataclass whose fields have simple types (int, float, str, bool, Path, Literal,
            Optional of those, tuple[X, ...]).
        title: the group title shown by --help.
        prefix: prepended to every flag and dest (e.g. "lora_" gives --lora_rank).
        defaults: defaults per field name that replace the dataclass's own (e.g. the CLI's
            paper default where the library's differs).
        skip: field names not exposed as flags (the caller fills them).
        renames: flag names (without prefix) for fields whose CLI name differs from the field's
            (e.g. {"temperature": "tau"} gives --tau); pass the same mapping to
            :func:`dataclass_from_args`.
        description: the group's description.
        unset_defaults: every flag defaults to None, so that :func:`given_values` tells which
            flags the user set (for settings whose defaults depend on another flag, e.g.
            ``--quick``); --help still shows the dataclass's defaults.

    Returns:
        The argparse group.

    Raises:
        TypeError: ``cls`` is not a dataclass or a field type is not supported.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    hints = typing.get_type_hints(cls)
    new_defaults = dict(defaults or {})
    group = parser.add_argument_group(title, description)
    for field in dataclasses.fields(cls):
        if field.name in skip or not field.init:
            continue
        required = (field.name not in new_defaults and field.default is dataclasses.MISSING
                    and field.default_factory is dataclasses.MISSING)  # type: ignore[misc]
        default = new_defaults.get(field.name, _default_of(field))
        help_text = _help_text(field, default, required)
        if unset_defaults:
            default, required = None, False
        listed = field.metadata.get("choices")
        tp, optional = _unwrap_optional(hints[field.name])
        origin = typing.get_origin(tp)
        name = (renames or {}).get(field.name, field.name)
        flag = flag_name(name, prefix)
        flags = (flag, *(flag_name(alias, prefix) for alias in field.metadata.get("aliases", ())))
        dest = prefix + name
        if tp is bool:
            group.add_argument(*flags, dest=dest, action=argparse.BooleanOptionalAction, default=default,
                               help=help_text)
        elif origin is typing.Literal:
            literal = list(typing.get_args(tp))
            group.add_argument(*flags, dest=dest, choices=literal, default=default,
                               type=type(literal[0]), help=help_text)
        elif origin in (tuple, list):
            item_args = [a for a in typing.get_args(tp) if a is not Ellipsis]
            item_tp = item_args[0] if item_args else str
            item_tp, _ = _unwrap_optional(item_tp)
            if typing.get_origin(item_tp) is typing.Literal or listed:
                accepted = list(listed or typing.get_args(item_tp))
                group.add_argument(*flags, dest=dest, nargs="*", choices=accepted, default=default, help=help_text)
            else:
                group.add_argument(*flags, dest=dest, nargs="*", type=_scalar_parser(item_tp, False),
                                   default=default, help=help_text)
        elif tp is Any or isinstance(tp, type):
            parse = field.metadata.get("parse")
            group.add_argument(*flags, dest=dest, default=default,
                               type=_flag_type(parse) if parse else _scalar_parser(tp, optional),
                               required=required, help=help_text,
                               choices=list(listed) if listed else None,
                               metavar=None if listed else name.upper())
        else:
            raise TypeError(f"{cls.__name__}.{field.name}: unsupported type {tp!r} for a flag")
    return group


def given_values(cls: type, args: argparse.Namespace, *, prefix: str = "",
                 renames: Optional[Mapping[str, str]] = None) -> dict[str, Any]:
    """The fields of ``cls`` whose flags were given, from a group added with ``unset_defaults``.

    Returns:
        {field name: value} for every flag that is not None (tuples for tuple fields).
    """
    hints = typing.get_type_hints(cls)
    renames = dict(renames or {})
    given: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        value = getattr(args, prefix + renames.get(field.name, field.name), None)
        if field.init and value is not None:
            tp, _ = _unwrap_optional(hints[field.name])
            given[field.name] = tuple(value) if typing.get_origin(tp) is tuple and isinstance(value, list) else value
    return given


def dataclass_from_args(cls: type[T], args: argparse.Namespace, *, prefix: str = "",
                        extra: Optional[Mapping[str, Any]] = None,
                        renames: Optional[Mapping[str, str]] = None) -> T:
    """Build ``cls`` from the flags that :func:`add_dataclass_options` added.

    Tuple fields receive tuples (argparse gives lists). ``extra`` supplies skipped fields.

    Raises:
        ValueError: from the dataclass's validation, re-raised with the flag names it concerns.
    """
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = dict(extra or {})
    renames = dict(renames or {})
    for field in dataclasses.fields(cls):
        dest = prefix + renames.get(field.name, field.name)
        if not field.init or field.name in kwargs or not hasattr(args, dest):
            continue
        value = getattr(args, dest)
        tp, _ = _unwrap_optional(hints[field.name])
        if typing.get_origin(tp) is tuple and isinstance(value, list):
            value = tuple(value)
        kwargs[field.name] = value
    try:
        return cls(**kwargs)
    except ValueError as err:
        message = str(err)
        for field in dataclasses.fields(cls):
            flag = flag_name(renames.get(field.name, field.name), prefix)
            if field.name in message and flag not in message:
                message = message.replace(field.name, f"{field.name} ({flag})", 1)
                break
        raise ValueError(message) from err

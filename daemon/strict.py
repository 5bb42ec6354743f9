"""Strict conversion of parsed YAML into msgspec Structs, with YAML paths in errors.

msgspec validates types well but reports dictionary entries as ``[...]``; a
model owner needs ``models[0].features.age.type``. This walks Struct fields,
dicts and lists itself, hands leaves to :func:`msgspec.convert`, and collects
every problem instead of stopping at the first.

>>> from driftwarden.detectors.spec import FeatureSpec
>>> errors: list[str] = []
>>> _ = convert({"age": {"type": 3, "colour": 1}}, dict[str, FeatureSpec], "models[0].features", errors)
>>> errors  # doctest: +NORMALIZE_WHITESPACE
['models[0].features.age.colour: unknown key (allowed: importance, max, min, type)',
 'models[0].features.age.type: expected `str`, got `int`']
"""

from __future__ import annotations

import functools
import types
import typing
from typing import Any

import msgspec

_MISSING = object()


def convert(value: Any, tp: Any, path: str, errors: list[str]) -> Any:
    """Convert ``value`` to ``tp``; append ``"path: problem"`` to ``errors`` on failure.

    Returns the converted value, or ``None`` when it could not be converted.
    """
    origin = typing.get_origin(tp)
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return _convert_struct(value, tp, path, errors)
    if origin is dict:
        _, val_tp = typing.get_args(tp)
        if not isinstance(value, dict):
            errors.append(f"{path}: expected a mapping, got {_kind(value)}")
            return None
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                errors.append(f"{path}: keys must be strings, got {key!r}")
                continue
            out[key] = convert(item, val_tp, f"{path}.{key}", errors)
        return out
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if not isinstance(value, list):
            errors.append(f"{path}: expected a list, got {_kind(value)}")
            return None
        return [convert(item, item_tp, f"{path}[{i}]", errors) for i, item in enumerate(value)]
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        structured = [a for a in args if _is_structured(a)]
        if len(structured) == 1 and isinstance(value, dict | list):
            return convert(value, structured[0], path, errors)
    try:
        return msgspec.convert(value, tp, strict=False)
    except msgspec.ValidationError as exc:
        message, _, where = str(exc).partition(" - at `$")
        errors.append(f"{path}{where.rstrip('`')}: {_lower_first(message)}")
        return None


def _convert_struct(value: Any, tp: type[msgspec.Struct], path: str, errors: list[str]) -> Any:
    if not isinstance(value, dict):
        errors.append(f"{path}: expected a mapping, got {_kind(value)}")
        return None
    fields, hints = _struct_fields(tp)
    kwargs: dict[str, Any] = {}
    before = len(errors)
    for key in value:
        if key not in fields:
            allowed = ", ".join(sorted(fields))
            errors.append(f"{_join(path, str(key))}: unknown key (allowed: {allowed})")
    for name, field in fields.items():
        sub = _join(path, name)
        if name not in value:
            if field.required:
                errors.append(f"{sub}: required key is missing")
            continue
        kwargs[field.name] = convert(value[name], hints[field.name], sub, errors)
    if len(errors) > before:
        return None
    try:
        return tp(**kwargs)
    except (TypeError, ValueError) as exc:
        message = str(exc)
        name, sep, rest = message.partition(": ")
        if sep and name in fields:  # "group_wait: invalid duration" -> alerting.group_wait: ...
            errors.append(f"{_join(path, name)}: {rest}")
        else:
            errors.append(f"{path or '<top>'}: {message}")
        return None


@functools.cache
def _struct_fields(tp: type[msgspec.Struct]) -> tuple[dict[str, msgspec.structs.FieldInfo], dict[str, Any]]:
    """A Struct's fields by their names in YAML and its resolved type hints: a class's never change, and
    resolving them was half of loading a config (4,400 Structs for 200 models)."""
    return {f.encode_name: f for f in msgspec.structs.fields(tp)}, typing.get_type_hints(tp)


def _is_structured(tp: Any) -> bool:
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return True
    return typing.get_origin(tp) in (dict, list)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", type(None): "nothing (null)"}.get(
        type(value), type(value).__name__
    )


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]

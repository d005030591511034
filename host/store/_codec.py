"""Records ↔ JSON for export/import, and content hashes that make records idempotent.

``from_jsonable`` is the inverse of ``host.records.to_jsonable`` for the record dataclasses: it
walks the type hints, so a field added to a record later is decoded without a change here, and a
value of the wrong type is refused with the path of the field (``trial.result.runs.avg_us``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import types
import typing
from datetime import datetime, timezone
from functools import cache
from typing import Any, Literal, TypeVar, Union

from host.records import Trial, to_jsonable

__all__ = [
    "DecodeError",
    "decode_value",
    "field_types",
    "from_jsonable",
    "trial_to_json",
    "trial_from_json",
    "trial_hash",
    "canonical_json",
    "utc",
]

T = TypeVar("T")


class DecodeError(ValueError):
    """A JSON value that does not fit the record it should become; the message names the field."""


_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _portable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _portable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_portable(v) for v in value]
    return value


def portable_json_dumps(value: Any) -> str:
    """JSON for the store's JSON columns: NaN and ±inf as the strings "NaN", "Infinity",
    "-Infinity", because PostgreSQL's json type rejects the bare tokens Python writes."""
    return json.dumps(_portable(value), allow_nan=False)


def canonical_json(value: Any) -> str:
    """One spelling per value: sorted keys, no spaces (NaN spelled as JSON's NaN extension)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _fail(path: str, expected: str, value: Any) -> DecodeError:
    return DecodeError(f"{path}: expected {expected}, got {type(value).__name__} {str(value)[:40]!r}")


def _decode(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _decode(arg, value, path)
            except DecodeError as exc:
                errors.append(exc)
        raise errors[0] if errors else _fail(path, str(tp), value)
    if origin is Literal:
        if value not in args:
            raise DecodeError(f"{path}: expected one of {', '.join(map(repr, args))}, got {value!r}")
        return value
    if dataclasses.is_dataclass(tp):
        return _decode_dataclass(tp, value, path)
    if tp is datetime:
        if not isinstance(value, str):
            raise _fail(path, "an ISO date-time string", value)
        try:
            return datetime.fromisoformat(value)
        except ValueError as exc:
            raise DecodeError(f"{path}: not an ISO date-time: {value!r}") from exc
    if tp is bool:
        if not isinstance(value, bool):
            raise _fail(path, "true/false", value)
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(path, "an integer", value)
        return value
    if tp is float:
        if isinstance(value, str) and value in _NON_FINITE:
            return _NON_FINITE[value]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(path, "a number", value)
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise _fail(path, "a string", value)
        return value
    if origin in (tuple, list):
        if not isinstance(value, list):
            raise _fail(path, "a list", value)
        item = args[0] if args else Any
        items = [_decode(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise _fail(path, "an object", value)
        key_tp, val_tp = args if args else (Any, Any)
        return {_decode(key_tp, k, path): _decode(val_tp, v, f"{path}.{k}") for k, v in value.items()}
    raise DecodeError(f"{path}: cannot decode type {tp}")


def _decode_dataclass(cls: type[T], value: Any, path: str) -> T:
    if not isinstance(value, dict):
        raise _fail(path, f"an object ({cls.__name__})", value)
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name in value:
            kwargs[f.name] = _decode(hints[f.name], value[f.name], f"{path}.{f.name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise DecodeError(f"{path}.{f.name}: missing")
    return cls(**kwargs)


def decode_value(tp: Any, value: Any, path: str) -> Any:
    """``value`` (from JSON) as type ``tp``. Raises DecodeError naming ``path``."""
    return _decode(tp, value, path)


def field_types(cls: type) -> dict[str, Any]:
    """The resolved type hints of a record dataclass's fields."""
    return _hints(cls)


def from_jsonable(cls: type[T], value: Any, path: str = "") -> T:
    """Rebuilds a record dataclass from ``to_jsonable`` output. Raises DecodeError naming the bad field."""
    return _decode_dataclass(cls, value, path or cls.__name__.lower())


def trial_to_json(trial: Trial) -> dict[str, Any]:
    data = to_jsonable(trial)
    data.pop("run_id", None)  # a store-local id: meaningless in another store
    return data


def trial_from_json(value: Any, path: str = "trial") -> Trial:
    if isinstance(value, dict):
        value = {**value, "run_id": None}
    return from_jsonable(Trial, value, path)


def utc(value: datetime) -> datetime:
    """``value`` as timezone-aware UTC; a naive value is taken as local time (what ``datetime.now()`` gives)."""
    return value.astimezone(timezone.utc)


def trial_hash(run_uid: str, trial: Trial) -> str:
    """128-bit content hash of a trial within its run: the same trial imported twice is one row.

    It covers what identifies the measurement itself (run, device, model and tool identity, plan
    position, start time, status and raw output), not facts the store merges across trials (a
    model's path or manifest, a device's release), so a trial hashes the same before saving and
    after a round trip through any store.
    """
    identity = [
        run_uid,
        trial.device.serial,
        trial.device.fingerprint,
        trial.model.sha256,
        trial.tool.sha256 if trial.tool else None,
        trial.index,
        trial.position,
        trial.status,
        utc(trial.started_at).isoformat(),
        trial.error,
        trial.raw_output,
    ]
    return hashlib.sha256(canonical_json(identity).encode()).hexdigest()[:32]

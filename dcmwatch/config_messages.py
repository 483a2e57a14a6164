"""What a configuration error says: the file, the dotted key, and what to do about it.

pydantic's lax mode turns the string "-500" into the number -500 and "yes" into true: an operator
who quoted a number wrote something else than they meant, and a value that only works because it
was converted is not the value in the file. So a string where a number or a boolean is expected is
refused (`strings_for_numbers`), naming the key. An unknown key is usually a typo: the message
offers the closest known key of the same section (`describe`).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError

_MISSING = object()


def describe(exc: ValidationError, source: str, root: type[BaseModel]) -> str:
    lines = []
    for err in exc.errors(include_url=False, include_input=False):
        key = dotted(err["loc"])
        message = err["msg"]
        if err["type"] == "extra_forbidden" and err["loc"]:
            message = "unknown key"
            unknown = err["loc"][-1]
            known = _fields_at(root, err["loc"][:-1])
            close = difflib.get_close_matches(str(unknown), known, n=1, cutoff=0.6)
            if close:
                message += f"; did you mean '{close[0]}'?"
        lines.append(f"{source}: {key or '(top level)'}: {message}")
    return "\n".join(lines)


def dotted(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


def strings_for_numbers(data: Any, value: Any, loc: tuple[int | str, ...] = ()) -> list[str]:
    """Messages for each string in the TOML `data` that validation turned into a number or a
    boolean in `value` (the validated model, walked alongside)."""
    if isinstance(data, Mapping):
        out = []
        for key, item in data.items():
            child = _child(value, key)
            if child is not _MISSING:
                out.extend(strings_for_numbers(item, child, (*loc, key)))
        return out
    if isinstance(data, list):
        if not isinstance(value, list | tuple) or len(value) != len(data):
            return []
        return [m for i, (d, v) in enumerate(zip(data, value, strict=True))
                for m in strings_for_numbers(d, v, (*loc, i))]
    if isinstance(data, str) and isinstance(value, bool):
        return [f"{dotted(loc)}: expected true or false, not a string"]
    if isinstance(data, str) and isinstance(value, int | float):
        return [f"{dotted(loc)}: expected a number, not a string (write it without quotes)"]
    return []


def _child(value: Any, key: str) -> Any:
    if isinstance(value, BaseModel):
        return getattr(value, key, _MISSING) if key in type(value).model_fields else _MISSING
    if isinstance(value, Mapping):
        return value.get(key, _MISSING)
    return _MISSING


def _fields_at(root: type[BaseModel], loc: Sequence[int | str]) -> list[str]:
    """The keys a TOML table at `loc` may hold (a union's members' keys together)."""
    candidates: list[type[BaseModel]] = [root]
    for part in loc:
        if isinstance(part, int):
            continue  # an item of a list: its type is the list's, already taken
        inner = [m for c in candidates if (f := c.model_fields.get(part)) is not None
                 for m in _models(f.annotation)]
        if inner:
            candidates = inner
            continue
        tagged = [c for c in candidates if part in _tags(c)]  # a discriminated union's tag
        if not tagged:
            return []
        candidates = tagged
    return sorted({name for c in candidates for name, f in c.model_fields.items()
                   if not f.exclude})


def _models(tp: Any) -> list[type[BaseModel]]:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [tp]
    if get_origin(tp) is None:
        return []
    return [m for arg in get_args(tp) for m in _models(arg)]


def _tags(model: type[BaseModel]) -> set[str]:
    field = model.model_fields.get("type")
    if field is None:
        return set()
    return {a for a in get_args(field.annotation) if isinstance(a, str)}

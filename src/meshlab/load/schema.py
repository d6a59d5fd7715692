"""Strict pydantic validation that reports errors at their YAML position.

Shared by lab.yaml and the manifests so both speak like the API server with strict field
validation: unknown field, wrong type, missing field, each with file:line:column.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from meshlab.errors import InputError, InputErrors
from meshlab.load.yamlio import PathKey, YamlDocument

M = TypeVar("M", bound=BaseModel)


class Strict(BaseModel):
    """Base for every schema: unknown keys are errors, values keep their YAML spelling."""

    # defer_build: a schema is built on its first validation, so a run pays only for the kinds
    # its lab writes (a forward reference, such as Subset's TrafficPolicy, resolves then too).
    # An empty list or dict default is written `Field(default=[])`, never
    # `Field(default_factory=list)`: pydantic copies a mutable default for each object anyway,
    # and a factory makes every schema build ask inspect.signature(list), which tokenizes its
    # text signature (~0.4 ms each, ~10 ms for lab 2's kinds; tests/unit/test_lazy_imports.py)
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True)


def validate(
    model: type[M], data: Any, document: YamlDocument, at: PathKey = (), what: str = ""
) -> M:
    """Validate `data` (found at `at` in `document`) or raise InputErrors naming each key.

    Strict, like the API server: YAML already typed every scalar, so `requests: true` or
    `port: "80"` is a type error rather than silently becoming 1 or 80.
    """
    try:
        return model.model_validate(data, strict=True)
    except ValidationError as exc:
        errors = _merge_union_errors(exc.errors())
        raise InputErrors([_to_input_error(err, document, at, what) for err in errors]) from None


def _merge_union_errors(errors: list[Any]) -> list[Any]:
    """One error per value for a union field (`requests: auto | positive int`).

    pydantic reports each member that failed. If some member got inside the value (a dict
    for `expect: {safe: x}`), only its errors matter; otherwise say what each member wanted.
    """
    out: list[Any] = []
    groups: dict[tuple[Any, ...], list[Any]] = {}
    for err in errors:
        loc = err["loc"]
        tag = next((i for i, part in enumerate(loc) if _is_union_tag(part)), None)
        if tag is None:
            out.append(err)
            continue
        prefix = tuple(loc[:tag])
        if prefix not in groups:
            groups[prefix] = []
            out.append(prefix)  # placeholder keeps the first member's position in the order
        groups[prefix].append(err)
    merged: list[Any] = []
    for item in out:
        if isinstance(item, dict):
            merged.append(item)
            continue
        members = groups[item]
        deeper = [e for e in members if len(_clean_loc(e["loc"])) > len(item)]
        if deeper:
            merged.extend(deeper)
            continue
        wants = list(dict.fromkeys(_clean(e["msg"]) for e in members))
        if all(w.startswith("Input should be ") for w in wants):
            wants = [w.removeprefix("Input should be ") for w in wants]
            message = "Input should be " + " or ".join(wants)
        else:
            message = "; or ".join(wants)
        merged.append({**members[0], "msg": message, "type": "union"})
    return merged


def _clean_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(part for part in loc if not _is_union_tag(part))


def _to_input_error(err: Any, document: YamlDocument, at: PathKey, what: str) -> InputError:
    loc = _clean_loc(err["loc"])
    full = (*at, *loc)
    dotted = _dotted(full)
    kind = err["type"]
    prefix = f"{what}: " if what else ""
    if kind == "extra_forbidden":
        message = f'{prefix}unknown field "{dotted}"'
        where = document.locate(full, prefer_key=True)
    elif kind == "missing":
        message = f'{prefix}missing required field "{dotted}"'
        where = document.locate(full[:-1])
    else:
        got = _describe(err.get("input"))
        message = f"{prefix}{dotted or 'document'}: {_clean(err['msg'])}{got}"
        where = document.locate(full)
    return InputError(message, where)


def _is_union_tag(part: Any) -> bool:
    # pydantic inserts the union member's name into loc ("function-after[...]", "str", ...)
    return isinstance(part, str) and (
        "[" in part or part in {"str", "int", "float", "bool"} or part.startswith("constrained-")
    )


def _dotted(path: PathKey) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _clean(message: str) -> str:
    return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def _describe(value: Any) -> str:
    if isinstance(value, dict | list) or value is None:
        return ""
    text = repr(value)
    return f" (got {text[:60]})"

"""Strict pydantic validation that reports errors at their YAML position.

Shared by lab.yaml and the manifests so both speak like the API server with strict field
validation: unknown field, wrong type, missing field, each with file:line:column.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from meshlab.errors import InputError, InputErrors
from meshlab.yamlio import PathKey, YamlDocument

M = TypeVar("M", bound=BaseModel)


class Strict(BaseModel):
    """Base for every schema: unknown keys are errors, values keep their YAML spelling."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def validate(
    model: type[M], data: Any, document: YamlDocument, at: PathKey = (), what: str = ""
) -> M:
    """Validate `data` (found at `at` in `document`) or raise InputErrors naming each key."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InputErrors(
            [_to_input_error(err, document, at, what) for err in exc.errors()]
        ) from None


def _to_input_error(err: Any, document: YamlDocument, at: PathKey, what: str) -> InputError:
    loc = tuple(part for part in err["loc"] if not _is_union_tag(part))
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
        "[" in part or part in {"str", "int", "float", "bool", "dict[str,str]"}
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

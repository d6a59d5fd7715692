"""PyYAML's parse errors in plain words. Its own wording ("expected <block end>, but found
'<block mapping start>'") names the parser's state, not the student's mistake; each hint here
names the mistake that usually causes it, with the line to look at."""

from __future__ import annotations

import re
from collections.abc import Callable

import yaml

from meshlab.records import dataclass


@dataclass(frozen=True)
class _Error:
    """A parse error, as the hints read it."""

    problem: str
    context: str
    line: int  # where the parser gave up (1-based)
    opened: int | None  # where the construct it was parsing began
    lines: list[str]


def hint_for(error: yaml.MarkedYAMLError, source: str) -> str | None:
    """A plain-words hint for a YAML parse error, or None when no usual cause is known."""
    if error.problem_mark is None:
        return None
    found = _Error(
        error.problem or "",
        error.context or "",
        error.problem_mark.line + 1,
        error.context_mark.line + 1 if error.context_mark is not None else None,
        source.splitlines(),
    )
    return next((hint for rule in _RULES if (hint := rule(found)) is not None), None)


def _tab(e: _Error) -> str | None:
    return (
        f"line {e.line} has a tab: YAML indents with spaces only" if "'\\t'" in e.problem else None
    )


def _block_end(e: _Error) -> str | None:
    return (
        _alignment(e.lines, e.line, e.opened)
        if e.problem.startswith("expected <block end>")
        else None
    )


def _colon_in_value(e: _Error) -> str | None:
    if e.problem != "mapping values are not allowed here":
        return None
    above = _previous(e.lines, e.line)
    if _indent(e.lines, e.line) > _indent(e.lines, above):
        return (
            f"line {e.line} is indented more than the key above it expects, so it reads as "
            f"the rest of line {above}'s value: line it up with its siblings"
        )
    return 'a ": " inside a value: put the value in quotes, e.g. title: "Lab 2: canary"'


def _missing_colon(e: _Error) -> str | None:
    if e.problem != "could not find expected ':'":
        return None
    return (
        f"line {e.line} is neither `key: value` nor a `- item`: add the colon, or quote the "
        "text if it continues the value above"
    )


def _unclosed_bracket(e: _Error) -> str | None:
    closing = re.match(r"expected ',' or '([\]}])'", e.problem)
    if closing is None:
        return None
    bracket = "[" if closing[1] == "]" else "{"
    where = f" at line {e.opened}" if e.opened else ""
    return (
        f"the `{bracket}`{where} is never closed: write `{closing[1]}` at the end, with commas "
        "between the items"
    )


def _undefined_alias(e: _Error) -> str | None:
    if not e.problem.startswith("found undefined alias"):
        return None
    return (
        "`*NAME` refers to an anchor `&NAME` that no earlier line defines; to write a literal "
        "`*`, quote the value"
    )


def _unclosed_quote(e: _Error) -> str | None:
    if e.problem == "found unexpected end of stream" and "quoted scalar" in e.context:
        return f"the quote opened at line {e.opened} is never closed"
    return None


def _escape(e: _Error) -> str | None:
    if not e.problem.startswith("found unknown escape character"):
        return None
    return (
        "a backslash in double quotes starts an escape: use single quotes ('C:\\path') or "
        "write two backslashes"
    )


_RULES: tuple[Callable[[_Error], str | None], ...] = (
    _tab,
    _block_end,
    _colon_in_value,
    _missing_colon,
    _unclosed_bracket,
    _undefined_alias,
    _unclosed_quote,
    _escape,
)


def _alignment(lines: list[str], line: int, opened: int | None) -> str:
    """Keys of one mapping, items of one list, start in one column; this one does not."""
    if opened is None:
        return f"line {line} does not line up with the lines above it"
    mine, theirs = _indent(lines, line) + 1, _indent(lines, opened) + 1
    more = "more" if mine > theirs else "less"
    return (
        f"line {line} is indented {more} than the block that starts at line {opened} expects "
        f"(column {mine}, where its keys are in column {theirs}): keys of one mapping (and "
        "items of one list) start in the same column"
    )


def _indent(lines: list[str], line: int) -> int:
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    return len(text) - len(text.lstrip(" "))


def _previous(lines: list[str], line: int) -> int:
    """The nearest line above `line` with content (not blank, not only a comment)."""
    for number in range(line - 1, 0, -1):
        stripped = lines[number - 1].strip()
        if stripped and not stripped.startswith("#"):
            return number
    return line

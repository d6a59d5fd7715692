"""YAML mistakes explained in plain words, with the line to look at (still file:line:col,
still exit 2): one case per hint."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshlab.errors import InputError
from meshlab.load.yamlio import load_documents

CASES = [
    ("tab", "a:\n\tb: 1\n", 2, "line 2 has a tab: YAML indents with spaces only"),
    (
        "indented more",
        "spec:\n  hosts: x\n    gateways: y\n",
        3,
        "line 3 is indented more than the key above it expects, so it reads as the rest of "
        "line 2's value",
    ),
    (
        "colon in a value",
        "title: Lab: canary\n",
        1,
        'a ": " inside a value: put the value in quotes, e.g. title: "Lab 2: canary"',
    ),
    (
        "out of line",
        "spec:\n    hosts: x\n  http: y\n",
        3,
        "line 3 is indented more than the block that starts at line 1 expects (column 3, where "
        "its keys are in column 1)",
    ),
    (
        "missing colon",
        "a: 1\nb\nc: 2\n",
        3,
        "line 3 is neither `key: value` nor a `- item`",
    ),
    (
        "unclosed list",
        "hosts: [a, b\nhttp: 3\n",
        2,
        "the `[` at line 1 is never closed: write `]` at the end",
    ),
    ("unclosed map", "labels: {app: x\nb: 3\n", 2, "the `{` at line 1 is never closed"),
    ("alias", "host: *staff\n", 1, "`*NAME` refers to an anchor `&NAME`"),
    ("unclosed quote", 'title: "Lab 2\nmanifests: []\n', 3, "the quote opened at line 1"),
    ("escape", 'path: "C:\\labs"\n', 1, "a backslash in double quotes starts an escape"),
]


@pytest.mark.parametrize(("name", "text", "line", "hint"), CASES, ids=[c[0] for c in CASES])
def test_each_mistake_gets_its_hint(
    tmp_path: Path, name: str, text: str, line: int, hint: str
) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        load_documents(path)
    error = caught.value
    assert error.message.startswith("invalid YAML: ")
    assert error.location is not None
    assert (error.location.path, error.location.line) == (path, line)
    assert error.hint is not None
    assert hint in error.hint


def test_the_hint_is_printed_under_the_error(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("a:\n\tb: 1\n")
    with pytest.raises(InputError) as caught:
        load_documents(path)
    assert "hint: line 2 has a tab" in str(caught.value)

"""Fuzzing lab 2 (issue #9): mutated lab.yaml and manifests, in their text and in their
structure, go the way `meshlab run` goes up to the backend (load, plan, analysis, checks, the
expected split of each check, Envoy's bootstrap). Whatever the input, the only exception is
an InputError (exit 2 with file:line), and no example hangs."""

from __future__ import annotations

import copy
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given
from hypothesis import strategies as st

from meshlab.backends.embedded.envoy.bootstrap import placeholder_addresses, render_bootstrap
from meshlab.errors import EXIT_INPUT, MeshlabError
from meshlab.mesh.expect import configured_split
from meshlab.pipeline import prepare

LAB = Path(__file__).parents[2] / "labs" / "2-traffic"
FILES = ("lab.yaml", "fleetman.yaml", "istio-rules.yaml")
SECONDS_PER_EXAMPLE = 10

# Values that broke meshlab before (issue #9) or might: tags, dates, numbers of every size,
# control and non-ASCII characters, YAML syntax that changes a node's kind.
HOSTILE_TEXT = [
    "2024-02-30",
    "2024-13-45T99:99:99Z",
    "!!int abc",
    "!!float x",
    "!!bool maybe",
    "!!timestamp nope",
    "!!binary ====",
    "!!python/object:os.system x",
    "!custom x",
    "9" * 5000,
    "0x" + "f" * 600,
    "-" + "9" * 30,
    "1.0e+999",
    ".nan",
    "-.inf",
    "0",
    "-1",
    "65536",
    "1:20",
    "~",
    "[]",
    "{}",
    "[[[[[[[[[[",
    "&a x",
    "*a",
    "<<: {}",
    "=",
    "'\\n'",
    '"\\x1b[2K\\n::warning::x"',
    '"\\ud800"',
    '"\\0"',
    '"a\\nb"',
    "é€😀",
    "\u202e",
    "'" + "x" * 70_000 + "'",
    "http://fleetman-staff-service:99999/",
    "http://[::1/",
    "yes",
    "null",
]
HOSTILE_VALUES: list[Any] = [
    None,
    True,
    0,
    -1,
    2**70,
    1e308,
    float("nan"),
    float("inf"),
    "",
    "x" * 5000,
    "a\n::warning::b",
    "\x1b[31m",
    "2024-02-30",
    "*",
    "../outside.yaml",
    "/etc/passwd",
    [],
    {},
    [None],
    {"": None},
    {"a": {"b": {"c": [1, [2, [3]]]}}},
]


class Hang(BaseException):
    """Not an Exception: no `except Exception` in meshlab may turn it into an input error."""


@contextmanager
def alarm(seconds: int) -> Iterator[None]:
    """A hang fails the example instead of the whole run."""

    def timeout(signum: int, frame: object) -> None:
        raise Hang(f"one example took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, timeout)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# --- text mutations ----------------------------------------------------------------------------


def _replace_value(lines: list[str], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(lines) - 1), label="line")
    head, colon, _ = lines[index].partition(": ")
    hostile = data.draw(st.sampled_from(HOSTILE_TEXT), label="value")
    if colon:
        lines[index] = f"{head}: {hostile}"
    else:
        indent = len(lines[index]) - len(lines[index].lstrip(" -"))
        lines[index] = lines[index][:indent] + hostile


def _delete(lines: list[str], data: st.DataObject) -> None:
    del lines[data.draw(st.integers(0, len(lines) - 1), label="delete")]


def _duplicate(lines: list[str], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(lines) - 1), label="duplicate")
    times = data.draw(st.sampled_from([1, 2, 50]), label="times")
    lines[index:index] = [lines[index]] * times


def _swap(lines: list[str], data: st.DataObject) -> None:
    a = data.draw(st.integers(0, len(lines) - 1), label="a")
    b = data.draw(st.integers(0, len(lines) - 1), label="b")
    lines[a], lines[b] = lines[b], lines[a]


def _characters(lines: list[str], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(lines) - 1), label="line")
    at = data.draw(st.integers(0, len(lines[index])), label="column")
    text = data.draw(st.text(max_size=8), label="text")
    lines[index] = lines[index][:at] + text + lines[index][at:]


def _truncate(lines: list[str], data: st.DataObject) -> None:
    del lines[data.draw(st.integers(0, len(lines) - 1), label="keep") :]


TEXT_MUTATIONS: list[Callable[[list[str], st.DataObject], None]] = [
    _replace_value,
    _replace_value,
    _delete,
    _duplicate,
    _swap,
    _characters,
    _truncate,
]


def mutate_text(text: str, data: st.DataObject) -> str:
    lines = text.split("\n")
    for mutation in data.draw(st.lists(st.sampled_from(TEXT_MUTATIONS), min_size=1, max_size=3)):
        if lines:
            mutation(lines, data)
    return "\n".join(lines)


# --- structure mutations -----------------------------------------------------------------------


def _paths(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    items = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else ()
    )
    for key, child in items:
        yield from _paths(child, (*path, key))


def mutate_structure(text: str, data: st.DataObject) -> str:
    documents = [d for d in yaml.safe_load_all(text) if isinstance(d, dict | list)]
    for _ in range(data.draw(st.integers(1, 3), label="edits") if documents else 0):
        doc = data.draw(st.integers(0, len(documents) - 1), label="document")
        paths = list(_paths(documents[doc]))[1:]
        if not paths:
            continue
        path = data.draw(st.sampled_from(paths), label="path")
        parent = documents[doc]
        for key in path[:-1]:
            parent = parent[key]
        action = data.draw(st.sampled_from(["replace", "delete", "duplicate", "rename"]))
        last = path[-1]
        if action == "replace":
            parent[last] = copy.deepcopy(data.draw(st.sampled_from(HOSTILE_VALUES), label="value"))
        elif action == "delete":
            del parent[last]
        elif action == "duplicate" and isinstance(parent, list):
            parent.extend([parent[last]] * data.draw(st.sampled_from([1, 100])))
        elif action == "rename" and isinstance(parent, dict):
            new = data.draw(st.sampled_from(["", "x" * 300, "a\nb", "spec", "kind", "<<"]))
            parent[new] = parent.pop(last)
    return yaml.safe_dump_all(documents, allow_unicode=True, sort_keys=False)


# --- the property ------------------------------------------------------------------------------


def prepare_like_run(lab: Path) -> None:
    """`meshlab run` up to the backend, and the bootstrap the embedded backend would start."""
    prepared = prepare(lab)
    for check in prepared.checks:
        request = check.spec.request.probe()
        configured_split(prepared.plan, request, check.spec.by)
    render_bootstrap(prepared.plan, placeholder_addresses(prepared.plan))


@given(data=st.data())
def test_mutated_lab_is_run_or_refused_as_input(data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory(prefix="meshlab-fuzz-") as scratch:
        lab = Path(scratch) / "lab"
        shutil.copytree(LAB, lab, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
        for _ in range(data.draw(st.integers(1, 2), label="files")):
            name = data.draw(st.sampled_from(FILES), label="file")
            path = lab / name
            text = path.read_text(encoding="utf-8")
            structural = data.draw(st.booleans(), label="structural")
            try:
                text = mutate_structure(text, data) if structural else mutate_text(text, data)
            except (yaml.YAMLError, ValueError, KeyError, TypeError, AttributeError):
                continue  # an earlier text mutation left YAML PyYAML cannot re-read
            path.write_text(text, encoding="utf-8", errors="surrogatepass")
        refused: MeshlabError | None = None
        with alarm(SECONDS_PER_EXAMPLE):
            try:
                prepare_like_run(lab)
            except MeshlabError as exc:
                refused = exc
    if refused is not None:
        assert refused.exit_code == EXIT_INPUT, f"{type(refused).__name__}: {refused}"
        # reading_input's last resort: an exception meshlab did not mean to raise
        assert "could not be read" not in str(refused), f"unexpected: {refused!r}"

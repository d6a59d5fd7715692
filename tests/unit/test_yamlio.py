"""yamlio: positions for every value, strict YAML (duplicates, tags) and bounded hostile input."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from meshlab.errors import InputError, Location
from meshlab.load import yamlio
from meshlab.load.yamlio import MAX_DEPTH, MAX_FILE_BYTES, MAX_NODES_PER_FILE, load_documents

BAD = Path(__file__).parents[1] / "data" / "bad"


def write(tmp_path: Path, text: str, name: str = "doc.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load_one(tmp_path: Path, text: str) -> yamlio.YamlDocument:
    documents = load_documents(write(tmp_path, text))
    assert len(documents) == 1
    return documents[0]


def error_of(path: Path) -> InputError:
    with pytest.raises(InputError) as caught:
        load_documents(path)
    return caught.value


def at(error: InputError) -> tuple[int, int]:
    assert error.location is not None, f"no position in {error}"
    return error.location.line, error.location.column


# --- positions -------------------------------------------------------------------------------


def test_positions_of_values_and_keys(tmp_path: Path) -> None:
    doc = load_one(
        tmp_path,
        """\
        apiVersion: v1
        kind: Service
        metadata:
          name: fleetman
        """,
    )
    assert doc.data == {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "fleetman"}}
    assert doc.value_positions[("kind",)] == Location(doc.path, 2, 7)
    assert doc.key_positions[("kind",)] == Location(doc.path, 2, 1)
    assert doc.value_positions[("metadata", "name")] == Location(doc.path, 4, 9)
    assert doc.key_positions[("metadata", "name")] == Location(doc.path, 4, 3)
    assert doc.start == Location(doc.path, 1, 1)


def test_positions_of_list_items_and_deep_values(tmp_path: Path) -> None:
    doc = load_one(
        tmp_path,
        """\
        spec:
          http:
          - route:
            - destination: {host: a, subset: safe}
              weight: 90
            - destination: {host: a, subset: risky}
              weight: 10
        """,
    )
    route = ("spec", "http", 0, "route")
    assert doc.value_positions[(*route, 0)] == Location(doc.path, 4, 7)
    assert doc.value_positions[(*route, 1, "weight")] == Location(doc.path, 7, 15)
    assert doc.value_positions[(*route, 1, "destination", "subset")] == Location(doc.path, 6, 38)
    assert doc.key_positions[(*route, 1, "destination", "subset")] == Location(doc.path, 6, 30)


def test_locate_falls_back_to_the_nearest_ancestor(tmp_path: Path) -> None:
    doc = load_one(tmp_path, "spec:\n  hosts: [a]\n")
    assert doc.locate(("spec", "http", 0, "route")) == Location(doc.path, 2, 3)
    assert doc.locate(("spec", "hosts"), prefer_key=True) == Location(doc.path, 2, 3)
    assert doc.locate(("nowhere",)) == doc.start


def test_multi_document_skips_empty_documents(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        ---
        ---
        # only a comment
        ---
        a: 1
        ---
        ---
        b: 2
        ...
        """,
    )
    documents = load_documents(path)
    assert [d.data for d in documents] == [{"a": 1}, {"b": 2}]
    assert [d.index for d in documents] == [2, 4]
    assert documents[1].value_positions[("b",)] == Location(path, 8, 4)


def test_empty_file_has_no_documents(tmp_path: Path) -> None:
    assert load_documents(write(tmp_path, "# nothing here\n")) == []


def test_timestamps_stay_strings(tmp_path: Path) -> None:
    doc = load_one(tmp_path, "creationTimestamp: 2024-05-01T10:00:00Z\n")
    assert doc.data == {"creationTimestamp": "2024-05-01T10:00:00Z"}


# --- strictness --------------------------------------------------------------------------------


def test_duplicate_key_names_both_lines(tmp_path: Path) -> None:
    error = error_of(write(tmp_path, "metadata:\n  name: a\n  labels: {}\n  name: b\n"))
    assert 'duplicate key "name"' in error.message
    assert "line 2" in error.message
    assert at(error) == (4, 3)


def test_duplicate_key_fixture(tmp_path: Path) -> None:
    error = error_of(BAD / "duplicate-key.yaml")
    assert error.message == 'duplicate key "weight" (first defined at line 13)'
    assert at(error) == (14, 7)


def test_merge_keys_work_and_explicit_keys_override(tmp_path: Path) -> None:
    doc = load_one(
        tmp_path,
        """\
        base: &base {app: staff, version: safe}
        other: &other {version: other, tier: back}
        pod:
          <<: [*base, *other]
          version: risky
        """,
    )
    assert doc.data["pod"] == {"app": "staff", "version": "risky", "tier": "back"}
    # an overridden key is where it was written; a merged one is where the anchor wrote it
    assert doc.value_positions[("pod", "version")] == Location(doc.path, 5, 12)
    assert doc.value_positions[("pod", "app")] == Location(doc.path, 1, 19)


def test_merge_of_a_non_mapping_is_an_error(tmp_path: Path) -> None:
    error = error_of(write(tmp_path, "a: &a 1\nb:\n  <<: *a\n"))
    assert "<< merges mappings only" in error.message


def test_merge_key_referring_to_itself_is_an_error(tmp_path: Path) -> None:
    error = error_of(write(tmp_path, "a: &a {x: 1, <<: *a}\n"))
    assert "refer to themselves" in error.message


@pytest.mark.parametrize(
    ("text", "tag"),
    [
        ("a: !!python/object:os.system {}\n", "python/object:os.system"),
        ("a: !!python/name:os.system ''\n", "python/name:os.system"),
        ("a: !!python/tuple [1, 2]\n", "python/tuple"),
        ("a: !!binary aGVsbG8=\n", "binary"),
        ("a: !!set {x, y}\n", "set"),
        ("a: !!omap [{x: 1}]\n", "omap"),
        ("a: !Ref other\n", "!Ref"),
        ("a: !custom [1]\n", "!custom"),
    ],
)
def test_non_standard_tags_are_rejected(tmp_path: Path, text: str, tag: str) -> None:
    error = error_of(write(tmp_path, text))
    assert "unsupported YAML tag" in error.message
    assert tag in error.message
    assert at(error) == (1, 4)


def test_python_tag_fixture_is_not_executed(tmp_path: Path) -> None:
    error = error_of(BAD / "python-tag.yaml")
    assert "python/object/apply:os.system" in error.message
    assert at(error) == (6, 8)


def test_complex_keys_are_rejected(tmp_path: Path) -> None:
    error = error_of(write(tmp_path, "? [a, b]\n: 1\n"))
    assert "mapping keys must be plain scalars" in error.message


# --- syntax and files ----------------------------------------------------------------------------


def test_syntax_error_reports_its_line(tmp_path: Path) -> None:
    error = error_of(write(tmp_path, "a: 1\nb: 2\n  c: 3\n"))
    assert error.message.startswith("invalid YAML: mapping values are not allowed here")
    assert at(error) == (3, 4)


def test_unclosed_bracket_names_where_it_opened() -> None:
    error = error_of(BAD / "syntax-error.yaml")
    assert "while parsing a flow sequence at line 6" in error.message
    assert at(error) == (7, 7)


def test_control_character_is_an_input_error(tmp_path: Path) -> None:
    error = error_of(write(tmp_path, "a: 1\nb: x\x07y\n"))
    assert "unacceptable character #x0007" in error.message
    assert at(error) == (2, 5)


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: café\n".encode("latin-1"))
    error = error_of(path)
    assert "is not UTF-8 text" in error.message
    assert error.location == Location(path, 1)


def test_missing_file(tmp_path: Path) -> None:
    error = error_of(tmp_path / "nope.yaml")
    assert error.message == f"file not found: {tmp_path / 'nope.yaml'}"


def test_directory_instead_of_file(tmp_path: Path) -> None:
    error = error_of(tmp_path)
    assert error.message == f"not a regular file: {tmp_path}"


def test_file_larger_than_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_bytes(b"# " + b"x" * MAX_FILE_BYTES + b"\n")
    error = error_of(path)
    assert f"up to {MAX_FILE_BYTES} bytes" in error.message
    assert error.location == Location(path, 1)


def test_file_size_limit_is_inclusive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yamlio, "MAX_FILE_BYTES", 100)
    path = tmp_path / "edge.yaml"
    path.write_bytes(b"a: 1\n# " + b"x" * 92 + b"\n")
    assert path.stat().st_size == 100
    assert [d.data for d in load_documents(path)] == [{"a": 1}]
    path.write_bytes(b"a: 1\n# " + b"x" * 93 + b"\n")
    assert "up to 100 bytes" in error_of(path).message


# --- hostile input ---------------------------------------------------------------------------


def test_billion_laughs_stops_fast_with_a_clear_error() -> None:
    started = time.perf_counter()
    error = error_of(BAD / "alias-bomb.yaml")
    assert time.perf_counter() - started < 10
    assert f"YAML expands to more than {MAX_NODES_PER_FILE} nodes" in error.message
    assert "alias bomb" in error.message
    assert error.location is not None
    assert error.location.path.name == "alias-bomb.yaml"


def test_nested_merge_bomb_is_resolved_without_copying() -> None:
    started = time.perf_counter()
    (doc,) = load_documents(BAD / "merge-bomb.yaml")
    assert time.perf_counter() - started < 2
    assert doc.data["l8"] == doc.data["l0"] == {k: i + 1 for i, k in enumerate("abcdefghij")}


def test_hostile_files_do_not_blow_up_memory() -> None:
    """Peak RSS of a fresh interpreter that loads both bombs stays far below their expansion."""
    code = textwrap.dedent(
        f"""
        import json, resource
        from pathlib import Path
        from meshlab.errors import InputError
        from meshlab.load.yamlio import load_documents
        outcomes = []
        for name in ("alias-bomb.yaml", "merge-bomb.yaml"):
            try:
                load_documents(Path({str(BAD)!r}) / name)
                outcomes.append("loaded")
            except InputError as exc:
                outcomes.append(exc.message)
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps({{"outcomes": outcomes, "peak_mb": peak_mb}}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    result = json.loads(done.stdout)
    assert "alias bomb" in result["outcomes"][0]
    assert result["outcomes"][1] == "loaded"
    assert result["peak_mb"] < 400, result


@pytest.mark.parametrize("opener", ["[", "{a: "])
def test_deep_flow_nesting_is_an_input_error_not_a_recursion_error(
    tmp_path: Path, opener: str
) -> None:
    closer = "]" if opener == "[" else "}"
    path = write(tmp_path, "a: " + opener * 5000 + "1" + closer * 5000 + "\n")
    error = error_of(path)
    assert error.message == f"YAML nested deeper than {MAX_DEPTH} levels"
    assert error.location is not None
    assert error.location.line == 1


def test_block_nesting_just_past_the_limit(tmp_path: Path) -> None:
    deep = "".join(f"{'  ' * i}k{i}:\n" for i in range(MAX_DEPTH + 1)) + "  " * (MAX_DEPTH + 1)
    error = error_of(write(tmp_path, deep + "leaf\n"))
    assert error.message == f"YAML nested deeper than {MAX_DEPTH} levels"
    assert error.location is not None
    assert error.location.line == MAX_DEPTH + 1


def test_nesting_at_the_limit_loads(tmp_path: Path) -> None:
    text = "a: " + "[" * (MAX_DEPTH - 1) + "1" + "]" * (MAX_DEPTH - 1) + "\n"
    (doc,) = load_documents(write(tmp_path, text))
    value = doc.data["a"]
    for _ in range(MAX_DEPTH - 1):
        value = value[0]
    assert value == 1


def test_nesting_built_from_aliases_is_bounded(tmp_path: Path) -> None:
    """Each alias adds depth only when expanded; the converter's own check catches that."""
    lines = ["l0: &l0 [" + "[" * 40 + "1" + "]" * 40 + "]"]
    lines += [f"l{i}: &l{i} [[[[[[[[[[*l{i - 1}]]]]]]]]]]" for i in range(1, 4)]
    error = error_of(write(tmp_path, "\n".join(lines) + "\n"))
    assert error.message == f"YAML nested deeper than {MAX_DEPTH} levels"


def test_recursive_alias_is_bounded(tmp_path: Path) -> None:
    error = error_of(write(tmp_path, "a: &a [1, *a]\n"))
    assert error.message == f"YAML nested deeper than {MAX_DEPTH} levels"


_YAML_FILES = sorted(
    p
    for folder in ("labs", "tests/analysis/corpus", "tests/data")
    for p in (Path(__file__).parents[2] / folder).rglob("*.yaml")
    if "bomb" not in p.name  # a bounded test: the alias bomb has its own tests above
)


@pytest.mark.skipif(yamlio._FastLoader is None, reason="PyYAML without libyaml")
def test_libyaml_and_pyyaml_read_every_file_alike() -> None:
    """The fast path (libyaml's parser) gives the same data and positions as PyYAML's."""
    compared = read_from_events = 0
    for path in _YAML_FILES:
        source = path.read_text(encoding="utf-8-sig")
        try:
            slow = yamlio._documents(yamlio._Loader(source, path), path)
        except Exception:
            continue
        fast = yamlio._documents(yamlio._FastLoader(source, path), path)
        expected = [(d.index, d.start, d.data, d.value_positions, d.key_positions) for d in slow]
        assert [
            (d.index, d.start, d.data, d.value_positions, d.key_positions) for d in fast
        ] == expected, path
        compared += 1
        try:
            events = yamlio.EventReader(yamlio._FastLoader(source, path), path).documents()
        except yamlio.Fallback:
            continue  # anchors, merge keys, tags...: the node path reads those
        read_from_events += 1
        assert [
            (d.index, d.start, d.data, d.value_positions, d.key_positions) for d in events
        ] == expected, path
        # insertion order too: analyzers that scan a whole object walk the positions in order
        assert [list(d.value_positions) for d in events] == [
            list(d.value_positions) for d in slow
        ], path
    assert compared > 50
    assert read_from_events > 50


_EVENT_CASES = {
    "plain": "a: 1\nb: [x, 'y', 2.5, true, null, ~, 2024-02-30]\n---\n---\nc: {d: e}\n",
    "keys": "80: http\ntrue: yes\n~: nothing\n2020-01-01: day\n=: eq\n",
    "anchors": "a: &x {b: 1}\nc: *x\n",
    "merge": "base: &b {x: 1}\nobj: {<<: *b, y: 2}\n",
    "tags": "a: !!str 1\nb: !!int '3'\n",
    "duplicate": "a: 1\na: 2\n",
    "bad int": "a: !!int x\n",
    "nan": "a: .nan\n",
    "empty root": "~\n---\na: 1\n",
}


@pytest.mark.skipif(yamlio._FastLoader is None, reason="PyYAML without libyaml")
@pytest.mark.parametrize("name", list(_EVENT_CASES))
def test_event_reader_reads_alike_or_leaves_it_to_the_node_path(tmp_path: Path, name: str) -> None:
    """Whatever the event reader takes, it reads as the node path does; the rest (aliases,
    merges, errors) it gives up on, and load_documents still answers as before."""
    text = _EVENT_CASES[name]
    path = write(tmp_path, text)
    try:
        slow: list[yamlio.YamlDocument] | InputError = yamlio._documents(
            yamlio._Loader(text, path), path
        )
    except InputError as exc:
        slow = exc
    try:
        events = yamlio.EventReader(yamlio._FastLoader(text, path), path).documents()
    except yamlio.Fallback:
        events = None
    if isinstance(slow, InputError):
        assert events is None
        with pytest.raises(InputError) as raised:
            load_documents(path)
        assert str(raised.value) == str(slow)
        return
    assert (events is not None) == (name in {"plain", "keys", "tags", "empty root"})
    if events is not None:
        assert [(d.start, d.data, d.value_positions, d.key_positions) for d in events] == [
            (d.start, d.data, d.value_positions, d.key_positions) for d in slow
        ]
    assert [d.data for d in load_documents(path)] == [d.data for d in slow]

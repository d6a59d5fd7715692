"""lab.yaml: a strict contract, every mistake an InputError at its line in lab.yaml."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from meshlab.checks import load_checked_lab
from meshlab.errors import InputError, InputErrors
from meshlab.load.lab import load_lab

REPO = Path(__file__).parents[2]
TRAFFIC_LAB = REPO / "labs" / "2-traffic"

CHECK = """\
  - name: canary-split
    kind: split
    request:
      url: http://fleetman-staff-service:8080/
"""
GOOD = "title: Canary\nmanifests: [rules.yaml]\nchecks:\n" + CHECK


@pytest.fixture
def lab_dir(tmp_path: Path) -> Path:
    root = tmp_path / "my-lab"
    root.mkdir()
    (root / "rules.yaml").write_text("# applied as is\n", encoding="utf-8")
    return root


def write_lab(root: Path, text: str) -> Path:
    (root / "lab.yaml").write_text(text, encoding="utf-8")
    return root


def errors(root: Path, text: str) -> list[InputError]:
    with pytest.raises(InputError) as caught:
        load_checked_lab(write_lab(root, text))
    exc = caught.value
    return list(exc.errors) if isinstance(exc, InputErrors) else [exc]


def only_error(root: Path, text: str) -> InputError:
    found = errors(root, text)
    assert len(found) == 1, "\n".join(map(str, found))
    assert found[0].location is not None, f"no position in {found[0]}"
    assert found[0].location.path.name == "lab.yaml"
    return found[0]


def position(error: InputError) -> tuple[int, int]:
    assert error.location is not None
    return error.location.line, error.location.column


def test_good_lab_loads(lab_dir: Path) -> None:
    lab = load_lab(write_lab(lab_dir, GOOD))
    assert lab.title == "Canary"
    assert lab.namespace == "default"
    assert lab.manifests == ((lab_dir / "rules.yaml").resolve(),)
    assert [(c.name, c.kind) for c in lab.checks] == [("canary-split", "split")]
    assert lab.checks[0].location.line == 4
    assert lab.name == "my-lab"


def test_shipped_lab_loads() -> None:
    lab = load_lab(TRAFFIC_LAB)
    assert lab.name == "2-traffic"
    assert [p.name for p in lab.manifests] == ["fleetman.yaml", "istio-rules.yaml"]


def test_lab_yaml_path_works_as_well_as_its_folder(lab_dir: Path) -> None:
    write_lab(lab_dir, GOOD)
    assert load_lab(lab_dir / "lab.yaml").root == lab_dir


def test_lab_run_from_inside_its_folder_keeps_its_name(
    lab_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_lab(lab_dir, GOOD)
    monkeypatch.chdir(lab_dir)
    assert load_lab(Path()).name == "my-lab"


# --- required keys, unknown keys, types ---------------------------------------------------------


@pytest.mark.parametrize("key", ["title", "manifests", "checks"])
def test_missing_required_key(lab_dir: Path, key: str) -> None:
    text = "\n".join(
        line
        for line in GOOD.replace("checks:\n" + CHECK, "checks: [{kind: split}]").splitlines()
        if not line.startswith(f"{key}:")
    )
    found = errors(lab_dir, text)
    assert found[0].message == f'lab.yaml: missing required field "{key}"'
    assert position(found[0]) == (1, 1)


def test_unknown_top_level_key(lab_dir: Path) -> None:
    error = only_error(lab_dir, GOOD.replace("checks:", "timeout: 10s\nchecks:"))
    assert error.message == 'lab.yaml: unknown field "timeout"'
    assert position(error) == (3, 1)


def test_unknown_check_key(lab_dir: Path) -> None:
    error = only_error(lab_dir, GOOD + "    tolerance: 5\n")
    assert error.message == 'check (split): unknown field "checks[0].tolerance"'
    assert position(error) == (8, 5)


def test_unknown_check_kind_lists_known_kinds(lab_dir: Path) -> None:
    error = only_error(lab_dir, GOOD.replace("kind: split", "kind: spilt"))
    assert error.message == 'unknown check kind "spilt"'
    assert position(error) == (5, 11)
    assert error.hint is not None
    assert error.hint.startswith("known kinds: ")
    assert "split" in error.hint


def test_check_without_kind_lists_known_kinds(lab_dir: Path) -> None:
    error = only_error(lab_dir, GOOD.replace("    kind: split\n", ""))
    assert 'missing required field "kind"' in error.message
    assert error.hint is not None
    assert "split" in error.hint


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("requests: -1", "checks[0].requests: Input should be 'auto' or greater than 0 (got -1)"),
        ("requests: 0", "checks[0].requests: Input should be 'auto' or greater than 0 (got 0)"),
        ("requests: many", "checks[0].requests: Input should be 'auto' or a valid integer"),
        ("requests: true", "checks[0].requests: Input should be 'auto' or a valid integer"),
        ("requests: 1.5", "checks[0].requests: Input should be 'auto' or a valid integer"),
        ("expect: {safe: -1}", "checks[0].expect: expect: weights must be zero or more"),
        ("expect: {}", "checks[0].expect: expect needs at least one bucket"),
        ("expect: {safe: 0}", "checks[0].expect: expect: at least one weight must be positive"),
        ("expect: {safe: lots}", "checks[0].expect.safe: Input should be a valid number"),
        ("expect: configurd", "checks[0].expect: Input should be 'configured' or a valid dict"),
        ("points: -1", "checks[0].points: Input should be greater than or equal to 0"),
        ("points: yes", "checks[0].points: Input should be a valid number"),
        ("by: ''", "checks[0].by: String should have at least 1 character"),
    ],
)
def test_wrong_check_types(lab_dir: Path, line: str, message: str) -> None:
    error = only_error(lab_dir, GOOD + f"    {line}\n")
    assert message in error.message
    assert error.message.startswith("check (split): ")
    assert position(error)[0] == 8


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        (GOOD.replace("title: Canary", "title: 42"), "title: Input should be a valid string", 1),
        (GOOD.replace("title: Canary", "title: ''"), "title: String should have at least 1", 1),
        (
            GOOD.replace("[rules.yaml]", "rules.yaml"),
            "manifests: Input should be a valid list",
            2,
        ),
        (GOOD.replace("[rules.yaml]", "[]"), "manifests: List should have at least 1 item", 2),
        (GOOD.replace("checks:\n" + CHECK, "checks: []"), "checks: List should have at least", 3),
        (
            GOOD.replace("checks:\n" + CHECK, "checks: [split]"),
            "checks[0]: Input should be a valid dictionary",
            3,
        ),
        (GOOD + "namespace: Fleet_Man\n", "namespace: namespace 'Fleet_Man' must be a DNS", 8),
    ],
)
def test_wrong_top_level_types(lab_dir: Path, text: str, message: str, line: int) -> None:
    error = only_error(lab_dir, text)
    assert message in error.message
    assert position(error)[0] == line


def test_url_must_be_http(lab_dir: Path) -> None:
    error = only_error(lab_dir, GOOD.replace("http://fleetman", "https://fleetman"))
    assert "checks[0].request.url: url" in error.message
    assert position(error) == (7, 12)


def test_duplicate_check_names(lab_dir: Path) -> None:
    error = only_error(lab_dir, GOOD + CHECK)
    assert error.message == 'duplicate check name "canary-split"'
    assert position(error) == (8, 5)


def test_check_name_characters(lab_dir: Path) -> None:
    error = only_error(lab_dir, GOOD.replace("canary-split", "'canary split!'"))
    assert "may use letters, digits" in error.message


def test_several_lab_errors_are_reported_together(lab_dir: Path) -> None:
    text = GOOD.replace("[rules.yaml]", "[/etc/hosts]") + CHECK.replace("kind: split", "kind: nope")
    found = errors(lab_dir, text)
    assert [e.location.line for e in found if e.location] == [2, 8, 9]


def test_empty_lab_yaml_is_located(lab_dir: Path) -> None:
    error = only_error(lab_dir, "# nothing yet\n")
    assert "must hold exactly one mapping" in error.message
    assert position(error) == (1, 1)


def test_lab_yaml_with_two_documents(lab_dir: Path) -> None:
    error = only_error(lab_dir, GOOD + "---\n" + GOOD)
    assert "must hold exactly one mapping" in error.message


def test_broken_yaml_in_lab_yaml(lab_dir: Path) -> None:
    error = only_error(lab_dir, GOOD.replace("title: Canary", "title: Canary\n  extra: : x"))
    assert error.message.startswith("invalid YAML")
    assert position(error)[0] == 2


# --- manifest paths ----------------------------------------------------------------------------


def test_absolute_manifest_path(lab_dir: Path) -> None:
    error = only_error(lab_dir, GOOD.replace("[rules.yaml]", f"[{lab_dir / 'rules.yaml'}]"))
    assert "must be relative to the lab folder" in error.message
    assert position(error) == (2, 13)


@pytest.mark.parametrize("entry", ["../outside.yaml", "sub/../../outside.yaml", "./../my-lab/../x"])
def test_manifest_path_leaving_the_lab(lab_dir: Path, entry: str) -> None:
    (lab_dir.parent / "outside.yaml").write_text("{}\n", encoding="utf-8")
    (lab_dir / "sub").mkdir()
    error = only_error(lab_dir, GOOD.replace("[rules.yaml]", f"['{entry}']"))
    assert "leaves the lab folder" in error.message
    assert error.hint == "labs may only apply files inside their own folder"
    assert position(error) == (2, 13)


def test_dot_dot_that_stays_inside_is_fine(lab_dir: Path) -> None:
    (lab_dir / "sub").mkdir()
    lab = load_lab(write_lab(lab_dir, GOOD.replace("[rules.yaml]", "[sub/../rules.yaml]")))
    assert lab.manifests == ((lab_dir / "rules.yaml").resolve(),)


def test_symlink_pointing_outside_the_lab_is_rejected(lab_dir: Path) -> None:
    secret = lab_dir.parent / "secret.yaml"
    secret.write_text("apiVersion: v1\n", encoding="utf-8")
    (lab_dir / "innocent.yaml").symlink_to(secret)
    error = only_error(lab_dir, GOOD.replace("[rules.yaml]", "[innocent.yaml]"))
    assert "leaves the lab folder" in error.message


def test_symlinked_folder_pointing_outside_the_lab_is_rejected(lab_dir: Path) -> None:
    elsewhere = lab_dir.parent / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "rules.yaml").write_text("{}\n", encoding="utf-8")
    (lab_dir / "shared").symlink_to(elsewhere, target_is_directory=True)
    error = only_error(lab_dir, GOOD.replace("[rules.yaml]", "[shared/rules.yaml]"))
    assert "leaves the lab folder" in error.message


def test_symlink_inside_the_lab_is_fine(lab_dir: Path) -> None:
    (lab_dir / "alias.yaml").symlink_to(lab_dir / "rules.yaml")
    lab = load_lab(write_lab(lab_dir, GOOD.replace("[rules.yaml]", "[alias.yaml]")))
    assert lab.manifests == ((lab_dir / "rules.yaml").resolve(),)


def test_missing_manifest_file(lab_dir: Path) -> None:
    error = only_error(lab_dir, GOOD.replace("[rules.yaml]", "[rules.yaml, rulez.yaml]"))
    assert error.message.startswith('manifest "rulez.yaml" not found in ')
    assert position(error) == (2, 25)


def test_manifest_that_is_a_directory(lab_dir: Path) -> None:
    (lab_dir / "rules.d").mkdir()
    error = only_error(lab_dir, GOOD.replace("[rules.yaml]", "[rules.d]"))
    assert "not found" in error.message


def test_lab_folder_without_lab_yaml(lab_dir: Path) -> None:
    with pytest.raises(InputError) as caught:
        load_lab(lab_dir)
    assert caught.value.message == f"no lab.yaml found at {lab_dir}"
    assert caught.value.hint == "pass a lab folder such as labs/2-traffic"


def test_lab_folder_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"no lab\.yaml found"):
        load_lab(tmp_path / "nope")


def test_lab_yaml_that_is_a_directory(lab_dir: Path) -> None:
    (lab_dir / "lab.yaml").mkdir()
    with pytest.raises(InputError, match=r"no lab\.yaml found"):
        load_lab(lab_dir)


def test_copy_of_shipped_lab_loads_from_anywhere(tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(TRAFFIC_LAB, copy)
    assert load_lab(copy).manifests[0] == (copy / "fleetman.yaml").resolve()

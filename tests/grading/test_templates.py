"""The GitHub Actions templates (templates/github/): they parse, and every meshlab command
they call exists with the flags they pass; the instructor's merge step runs as written."""

from __future__ import annotations

import glob
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from meshlab.cli import cli
from meshlab.grading.model import ClassReport, GradedCheck, GradedSubmission

TEMPLATES = Path(__file__).resolve().parents[2] / "templates" / "github"


def workflow(name: str) -> dict[str, Any]:
    data = yaml.safe_load((TEMPLATES / name).read_text())
    assert isinstance(data, dict)
    # YAML 1.1 reads the key `on` as True
    assert {"name", "jobs"} <= set(data)
    assert True in data or "on" in data
    return data


def meshlab_calls(data: dict[str, Any]) -> list[list[str]]:
    """Every `meshlab ...` command line of every step, as argv (expressions as `X`)."""
    calls = []
    for job in data["jobs"].values():
        for step in job["steps"]:
            for text in str(step.get("run", "")).splitlines():
                line = re.sub(r"\$\{\{[^}]*\}\}", "X", text).split(">>")[0]
                words = shlex.split(line)
                if words and words[0] == "meshlab":
                    calls.append(words[1:])
    return calls


@pytest.mark.parametrize("name", ["student.yml", "instructor.yml"])
def test_every_command_a_template_calls_exists_with_its_flags(name: str) -> None:
    calls = meshlab_calls(workflow(name))
    assert calls
    for argv in calls:
        result = CliRunner().invoke(cli, [argv[0], "--help"])
        assert result.exit_code == 0, result.output
        for flag in (w for w in argv if w.startswith("--")):
            assert flag in result.output, f"meshlab {argv[0]} has no {flag}"


def test_the_instructor_matrix_matches_its_shard_count() -> None:
    data = workflow("instructor.yml")
    shards = data["jobs"]["grade"]["strategy"]["matrix"]["shard"]
    assert shards == list(range(1, int(data["env"]["SHARDS"]) + 1))
    assert data["jobs"]["merge"]["needs"] == "grade"


def test_the_instructor_merge_step_runs_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "shards").mkdir()
    for i, name in enumerate(["bob", "alice"], 1):
        check = GradedCheck(name="canary-split", points=1, points_awarded=i - 1, outcome="pass")
        submission = GradedSubmission(name=name, points=i - 1, max_points=1, checks=[check])
        report = ClassReport(lab="2-traffic", shard=f"{i}/2", submissions=[submission])
        (tmp_path / "shards" / f"shard-{i}.json").write_text(report.model_dump_json())
    (merge,) = [c for c in meshlab_calls(workflow("instructor.yml")) if "--merge" in c]
    argv = [a for w in merge for a in (sorted(glob.glob(w)) if "*" in w else [w])]
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "class.csv").read_text().splitlines() == [
        "name,points,max_points,canary-split,error",
        "alice,1,1,1,",
        "bob,0,1,0,",
    ]
    assert "| alice | 1/1 | 1 |" in (tmp_path / "class.md").read_text()

"""`meshlab grade` end to end: the CLI, real Envoy, a few submissions at once, every output
file; and the commands the GitHub Actions templates call."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from grading_class import instructor_lab, write_class

from meshlab.cli import main

ROOT = Path(__file__).resolve().parents[2]
CLASS = ["correct-fqdn-hosts", "wrong-50-50", "wrong-misspelled-host", "hostile-replicas-bomb"]


def meshlab(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from meshlab.cli import main; main()", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.envoy
def test_grade_a_class_through_real_envoy(tmp_path: Path) -> None:
    lab, subs = instructor_lab(tmp_path), write_class(tmp_path, CLASS)
    out = tmp_path / "out"
    run = meshlab(
        "grade", str(lab), str(subs), "--jobs", "3",
        "--json", str(out / "class.json"), "--junit", str(out / "class.xml"),
        "--csv", str(out / "class.csv"), "--markdown", str(out / "class.md"),
        cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    report = json.loads((out / "class.json").read_text())
    assert {s["name"]: s["points"] for s in report["submissions"]} == {
        "correct-fqdn-hosts": 1,
        "hostile-replicas-bomb": 0,
        "wrong-50-50": 0,
        "wrong-misspelled-host": 0,
    }
    bomb = report["submissions"][1]
    assert "the limit is 64 (--max-pods)" in bomb["error"]
    rows = csv.DictReader((out / "class.csv").read_text().splitlines())
    assert [r["points"] for r in rows] == ["1", "0", "0", "0"]
    assert "| correct-fqdn-hosts | 1/1 | 1 |" in (out / "class.md").read_text()
    assert (out / "class.xml").read_text().count("<testsuite ") == 4
    table = run.stdout.splitlines()
    assert table[0].split() == ["submission", "points", "canary-split", "note"]
    assert table[-1] == "4 submissions: 1 full points, 1 could not run"
    # the shards' reports merge into the same table
    merged = meshlab("grade", "--merge", str(out / "class.json"), "--csv", "m.csv", cwd=tmp_path)
    assert merged.returncode == 0, merged.stderr
    assert (tmp_path / "m.csv").read_text() == (out / "class.csv").read_text()


def in_process(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """`meshlab ARGS` in this process (no interpreter start-up): exit code and stderr."""
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    return int(exited.value.code or 0), capsys.readouterr().err


def test_grade_refuses_an_invalid_instructor_lab(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lab = instructor_lab(tmp_path)
    (lab / "lab.yaml").write_text("title: [\n")
    code, err = in_process(capsys, "grade", str(lab), str(tmp_path))
    assert code == 2
    assert "lab.yaml:" in err
    assert "Traceback" not in err


def test_grade_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = in_process(capsys, "grade", "onlyone")
    assert code == 2
    assert "LAB_DIR and SUBMISSIONS_DIR" in err
    code, err = in_process(capsys, "grade", "a", "b", "--shard", "3/2")
    assert code == 2
    assert "--shard" in err
    code, err = in_process(capsys, "grade", "--merge", "a.json", "--shard", "1/2")
    assert code == 2
    assert "--merge runs nothing" in err
    code, err = in_process(capsys, "grade", "--merge", "missing.json")
    assert code == 2
    assert "missing.json is not a report of `meshlab grade --json`" in err


@pytest.mark.envoy
def test_sigterm_stops_the_batch_and_every_process_it_started(tmp_path: Path) -> None:
    """A cancelled CI job: SIGTERM while a submission is being deployed or sends traffic is
    exit 143, and no Envoy or stand-in it started is left running."""
    import os
    import signal
    import time

    import psutil

    lab, subs = (
        instructor_lab(tmp_path),
        write_class(tmp_path, ["correct-as-shipped"]),
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from meshlab.cli import main; main()",
            "grade",
            str(lab),
            str(subs),
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    parent = psutil.Process(process.pid)
    started: dict[int, psutil.Process] = {}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        children = parent.children(recursive=True)
        started.update({c.pid: c for c in children})
        if any(c.name() == "envoy" for c in children):
            break
        time.sleep(0.05)
    else:
        process.kill()
        pytest.fail("the submission's Envoy never started")
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 143, stderr
    assert "Traceback" not in stderr
    _, alive = psutil.wait_procs(list(started.values()), timeout=10)
    assert not alive, alive

"""The stickiness lab's own tests: the ways a student breaks the rule fail, and the message
names the cause (the lab's checks themselves show the working rule passing)."""

from __future__ import annotations

import shutil
from pathlib import Path

from meshlab.backends.base import Backend
from meshlab.checks import CheckResult
from meshlab.pipeline import run_lab

HERE = Path(__file__).resolve().parent
RULE = "      consistentHash:\n        httpHeaderName: x-myval   # the key: same value, same pod\n"


def broken(tmp_path: Path, backend: Backend, replacement: str) -> CheckResult:
    """The lab with its hash rule replaced, run on the session's backend: the sticky check."""
    lab = tmp_path / "lab"
    shutil.copytree(HERE, lab, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    rules = lab / "istio-rules.yaml"
    text = rules.read_text()
    assert RULE in text
    rules.write_text(text.replace(RULE, replacement))
    report = run_lab(lab, backend=backend)
    return next(r for r in report.results if r.name == "same-user-same-pod")


def test_without_a_hash_policy_no_user_sticks(tmp_path: Path, mesh_backend: Backend) -> None:
    # the student keeps the subset but forgets the load balancer's consistentHash
    result = broken(tmp_path, mesh_backend, "      simple: LEAST_REQUEST\n")
    assert result.outcome == "fail"
    assert "not sticky" in result.message
    assert "has no consistentHash" in result.message
    assert "httpHeaderName: x-myval" in result.message  # the fix, spelt out


def test_a_misspelled_header_name_is_named(tmp_path: Path, mesh_backend: Backend) -> None:
    rule = "      consistentHash:\n        httpHeaderName: x-my-val\n"
    result = broken(tmp_path, mesh_backend, rule)
    assert result.outcome == "fail"
    assert "the route hashes on header x-my-val" in result.message
    assert "not on header x-myval" in result.message
    assert "istio-rules.yaml:" in result.message  # where the misspelling is


def test_the_header_name_is_case_insensitive(tmp_path: Path, mesh_backend: Backend) -> None:
    # Envoy lowercases a hash header's name: X-MyVal hashes on what x-myval sends
    rule = "      consistentHash:\n        httpHeaderName: X-MyVal\n"
    assert broken(tmp_path, mesh_backend, rule).outcome == "pass"

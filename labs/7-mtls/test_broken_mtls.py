"""Lab 7's own tests: the policy broken the ways a student breaks it, each failing the lab
with a message that names the cause."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from meshlab.backends.base import Backend
from meshlab.pipeline import run_lab

LAB = Path(__file__).resolve().parent
POLICY = "mtls.yaml"


def broken(tmp_path: Path, old: str, new: str) -> Path:
    """A copy of the lab with one edit to its PeerAuthentication."""
    copy = tmp_path / "7-mtls"
    shutil.copytree(LAB, copy, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    text = (copy / POLICY).read_text()
    assert old in text
    (copy / POLICY).write_text(text.replace(old, new))
    return copy


def refusal_message(lab: Path, backend: Backend) -> str:
    report = run_lab(lab, backend=backend)
    results = {r.name: r for r in report.results}
    assert results["meshed-client-served"].passed  # meshed calls work either way
    refused = results["plaintext-client-refused"]
    assert not refused.passed
    assert refused.observed == {"served": 10}
    return refused.message


@pytest.mark.parametrize(
    ("old", "new", "cause"),
    [
        (
            "mode: STRICT",
            "mode: PERMISSIVE",
            "PERMISSIVE from PeerAuthentication istio-system/default (mtls.yaml:",
        ),
        (
            "namespace: istio-system",
            "namespace: istio",
            "PeerAuthentication istio/default (mtls.yaml:4) applies only to namespace istio",
        ),
    ],
    ids=["permissive", "wrong-namespace"],
)
def test_a_broken_policy_lets_plaintext_in_and_says_why(
    tmp_path: Path, mesh_backend: Backend, old: str, new: str, cause: str
) -> None:
    message = refusal_message(broken(tmp_path, old, new), mesh_backend)
    assert "FAILED: expected refused, got served 10 of 10" in message
    assert cause in message

"""Lab 3 (prefix)'s own tests: any path under /experimental is the experimental webapp, and
the student's classic mistake, the catch-all route written first.

The mistake is made in a copy of the lab (tmp_path), deployed on the session's backend next
to the lab itself; only the check it breaks is run.
"""

from __future__ import annotations

from pathlib import Path

from meshlab.backends.base import Backend, Deployed
from meshlab.labtests import broken_copy, run_failing_check
from meshlab.mesh.request import Origin, ProbeRequest

LAB = Path(__file__).parent
BROWSER = Origin("browser")
GATEWAY = "http://192.168.49.2:31380"


def test_a_prefix_matches_deeper_paths_too(mesh: Deployed) -> None:
    """`prefix: /experimental` matches the start of the path: a deep link stays on the
    experimental build, and so does `/experimentalist` (a prefix is not a path segment)."""
    for path in ("/experimental/vehicles", "/experimentalist", "/canary?x=1"):
        outcomes = mesh.send(ProbeRequest(GATEWAY + path, origin=BROWSER), 20)
        assert {o.labels.get("version") for o in outcomes} == {"experimental"}, path


def test_the_catch_all_first_hides_the_prefixes(tmp_path: Path, mesh_backend: Backend) -> None:
    """Routes are tried in order: with `prefix: /` first, every request is the original
    webapp's. The check fails on what the browser got; the analysis names the dead rule."""
    text = (LAB / "istio-rules.yaml").read_text()
    first = text.index("  - match:\n    - uri:\n        prefix: /experimental")
    catch_all = text.index("  - match:\n    - uri:\n        prefix: /\n")
    end = text.index("---", catch_all)
    swapped = text[:first] + text[catch_all:end] + text[first:catch_all] + text[end:]
    copy = broken_copy(LAB, tmp_path, "istio-rules.yaml", text, swapped)
    message, analysis = run_failing_check(copy, "experimental-prefix", mesh_backend)
    assert "original for 10 of 10 requests" in message, message
    assert "ML0108" in analysis, analysis
    assert "http[0] matches every request" in analysis, analysis

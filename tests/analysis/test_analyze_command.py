"""`meshlab analyze` (exit codes, text, JSON, --severity) and the analysis inside every run."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from meshlab.analysis import analyze_paths
from meshlab.backends.fake import FakeBackend, weighted_pods
from meshlab.cli import main
from meshlab.errors import InputError
from meshlab.pipeline import RunOptions, prepare, run_lab
from meshlab.report.text import render_text

ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).parent / "corpus"
LAB2 = ROOT / "labs" / "2-traffic"


def meshlab(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    out, err = capsys.readouterr()
    code = exited.value.code
    return (code if isinstance(code, int) else 0), out, err


def test_clean_lab_exits_0_with_a_summary(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = meshlab(capsys, "analyze", str(LAB2))
    assert code == 0
    assert out.splitlines()[-1] == "0 errors, 0 warnings, 2 info (14 objects in 2 files)"


def test_errors_exit_1_compiler_style_with_a_hint(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = meshlab(capsys, "analyze", str(CORPUS / "ist0101-subset"))
    assert code == 1
    line = next(x for x in out.splitlines() if "IST0101" in x)
    assert line.endswith(
        'rules.yaml:11:42: error IST0101 [VirtualService default/staff] subset "risky" of host '
        "staff is not defined by any DestinationRule (defined: safe-group, risky-group)"
    )
    assert '  hint: requests routed to it get 503 NC (no cluster); did you mean "risky-group"?' in (
        out.splitlines()
    )


def test_warnings_alone_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = meshlab(capsys, "analyze", str(CORPUS / "ml0203-vs-not-for-mesh"))
    assert code == 0
    assert "info ML0203" in out


def test_rejected_objects_are_ist0106_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = meshlab(capsys, "analyze", str(CORPUS / "ist0106-schema"))
    assert code == 1
    assert out.count("error IST0106") == 5
    assert "total destination weight = 0" in out


def test_unreadable_input_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("kind: [unclosed\n")
    code, _, err = meshlab(capsys, "analyze", str(tmp_path / "broken.yaml"))
    assert code == 2
    assert "broken.yaml:2:1: error: invalid YAML" in err
    code, _, err = meshlab(capsys, "analyze", str(tmp_path / "missing"))
    assert code == 2
    assert "no such file or folder" in err


def test_json_output_for_tools(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = meshlab(capsys, "analyze", "--json", str(CORPUS / "ist0173-subset-no-pods"))
    assert code == 1
    data = json.loads(out)
    assert data["summary"] == {"error": 1, "warning": 0, "info": 0}
    (found,) = data["diagnostics"]
    assert found["code"] == "IST0173"
    assert found["resource"] == "DestinationRule default/staff"
    assert (found["line"], found["column"]) == (11, 13)
    assert found["file"].endswith("rules.yaml")
    assert "503 UH" in found["message"]


def test_severity_threshold_hides_lower_levels(capsys: pytest.CaptureFixture[str]) -> None:
    case = str(CORPUS / "ml0101-ml0102-ml0107-weights")
    _, everything, _ = meshlab(capsys, "analyze", case)
    _, warnings, _ = meshlab(capsys, "analyze", "--severity", "warning", case)
    code, errors, _ = meshlab(capsys, "analyze", "--severity", "error", case)
    assert "ML0107" in everything
    assert "ML0107" not in warnings
    assert "ML0101" in warnings
    assert code == 0
    assert "ML0101" not in errors


def test_a_lab_yaml_or_folder_uses_the_lab_namespace(tmp_path: Path) -> None:
    lab = tmp_path / "lab"
    shutil.copytree(LAB2, lab)
    text = (lab / "lab.yaml").read_text() + "namespace: fleet\n"
    (lab / "lab.yaml").write_text(text)
    rules = (lab / "istio-rules.yaml").read_text().replace("  namespace: default\n", "")
    (lab / "istio-rules.yaml").write_text(rules)
    found = analyze_paths([lab / "lab.yaml"])
    assert {r.namespace for r in found.resources} == {"fleet"}
    assert [d.code for d in found.diagnostics if d.level != "info"] == []


def test_run_keeps_exit_2_for_objects_the_api_server_rejects(tmp_path: Path) -> None:
    lab = tmp_path / "lab"
    shutil.copytree(LAB2, lab)
    rules = (lab / "istio-rules.yaml").read_text().replace("weight: 10", "weight: -10")
    (lab / "istio-rules.yaml").write_text(rules)
    with pytest.raises(InputError) as caught:
        prepare(lab)
    assert caught.value.exit_code == 2
    assert [d.code for d in analyze_paths([lab]).diagnostics if d.level == "error"] == ["IST0106"]


def _broken_lab(tmp_path: Path, old: str, new: str) -> Path:
    lab = tmp_path / "lab"
    shutil.copytree(LAB2, lab)
    rules = lab / "istio-rules.yaml"
    text = rules.read_text()
    assert old in text
    rules.write_text(text.replace(old, new))
    # the lesson here is "the mesh does what the YAML says": the check follows the YAML
    lab_file = lab / "lab.yaml"
    lab_file.write_text(
        lab_file.read_text().replace("expect: {safe: 90, risky: 10}", "expect: configured")
    )
    return lab


def test_run_reports_diagnostics_and_the_check_names_them_as_likely_causes(
    tmp_path: Path,
) -> None:
    lab = _broken_lab(tmp_path, "weight: 10", "weight: 30")  # 90 + 30 = 120: relative weights
    report = run_lab(lab, RunOptions(), backend=FakeBackend(weighted_pods({"safe": 9, "risky": 1})))
    assert [d.code for d in report.model().diagnostics] == ["ML0202", "ML0202", "ML0107"]
    result = report.results[0]
    assert not result.passed
    assert (
        "  likely cause: weights of rule http[0] add up to 120, not 100: each destination gets "
        "weight/120 (safe 75.0%, risky 25.0%) (ML0107, istio-rules.yaml:14)"
    ) in result.message.splitlines()
    assert [d["code"] for d in result.details["diagnostics"]] == ["ML0107"]
    text = render_text(report.model())
    assert "analysis: 3 info" in text
    assert text.index("analysis: 3 info") < text.index("canary-split FAILED")


def test_known_causes_are_not_repeated_as_diagnostics(tmp_path: Path) -> None:
    lab = _broken_lab(tmp_path, "      version: risky", "      version: riskyy")
    report = run_lab(lab, RunOptions(), backend=FakeBackend(weighted_pods({"safe": 9, "risky": 1})))
    assert "IST0173" in [d.code for d in report.diagnostics]
    message = report.results[0].message
    assert message.count("likely cause") == 1  # the expectation's own (503 UH), once
    assert "selects no pods" in message
    assert "error IST0173" in render_text(report.model())


def test_analysis_of_a_lab_folder_takes_well_under_a_second() -> None:
    analyze_paths([LAB2])  # warm: imports, pydantic schemas
    started = time.perf_counter()
    for _ in range(5):
        analyze_paths([LAB2])
    assert (time.perf_counter() - started) / 5 < 0.25


def test_a_folder_of_labs_analyses_each_lab_as_its_own_mesh(tmp_path: Path) -> None:
    """Two labs that both define the staff service's rules do not conflict: each is a mesh."""
    labs = tmp_path / "labs"
    for name in ("2-traffic", "2-traffic-copy"):
        shutil.copytree(LAB2, labs / name)
    alone = analyze_paths([LAB2]).diagnostics
    both = analyze_paths([labs])
    assert len(both.files) == 4
    assert [d.code for d in both.diagnostics] == [d.code for d in alone] * 2
    assert not [d for d in both.diagnostics if d.level != "info"]


def test_a_folder_with_neither_yaml_nor_labs_says_what_it_takes(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        analyze_paths([tmp_path])
    assert caught.value.hint is not None
    assert "a folder of labs" in caught.value.hint

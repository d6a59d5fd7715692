"""`meshlab run --backend kind` and `pytest --backend kind`: options, refusals (exit 2 / skip
with the reason), diagnostics in the report, the cluster closed at the end."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from kind_fakes import Events, FakeClock, FakeKube, FakeRunner, FakeSubprocess

import meshlab.backends.registry
from meshlab.backends.kind import KindBackend, KindOptions
from meshlab.backends.kind.tools import Tools
from meshlab.cli import main


def _run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


def test_refusal_is_exit_2_within_seconds(
    lab2_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    code, _, err = _run_cli(
        ["run", str(lab2_dir), "--backend", "kind", "--kubeconfig", "/nonexistent/kubeconfig"],
        capsys,
    )
    assert code == 2
    assert "--kubeconfig /nonexistent/kubeconfig: no such file" in err
    assert time.monotonic() - started < 10


def test_no_docker_is_exit_2_with_how_to_get_it(
    lab2_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name, *args, **kwargs: None)
    code, out, err = _run_cli(["run", str(lab2_dir), "--backend", "kind"], capsys)
    assert code == 2
    assert "no `docker` command" in err
    assert "https://docs.docker.com/get-docker/" in err
    assert out == ""  # no verdict: nothing ran


def test_kind_options_need_the_kind_backend(
    lab2_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run_cli(["run", str(lab2_dir), "--keep-namespace"], capsys)
    assert code == 2
    assert "need --backend kind" in err


def test_a_failing_run_reports_the_clusters_state(  # type: ignore[no-untyped-def]
    lab2_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    runner: FakeRunner,
    kube: FakeKube,
    events: Events,
    kind_subprocess: FakeSubprocess,
) -> None:
    kube.mesh.weights = {"safe": 0.5, "risky": 0.5}
    made: list[KindBackend] = []

    def fake_backend(name: str, options: object = None, warm: object = None) -> KindBackend:
        assert name == "kind"
        assert warm is None  # nothing starts ahead for kind
        assert isinstance(options, KindOptions)
        assert options.keep_namespace is True
        for tool in ("kind", "istioctl"):
            (tmp_path / tool).write_text("")
        tools = Tools(
            runner,
            cache=tmp_path / "cache",
            env={
                "MESHLAB_KIND": str(tmp_path / "kind"),
                "MESHLAB_ISTIOCTL": str(tmp_path / "istioctl"),
            },
        )
        backend = KindBackend(
            KindOptions(keep_namespace=True),
            runner=runner,
            tools=tools,
            kube_factory=lambda path: kube,
            clock=FakeClock(),
            progress=lambda line: None,
            which=lambda name: f"/usr/bin/{name}",
            has_module=lambda name: True,
        )
        made.append(backend)
        return backend

    monkeypatch.setattr(meshlab.backends.registry, "get_backend", fake_backend)
    report = tmp_path / "report.json"
    code, out, _ = _run_cli(
        ["run", str(lab2_dir), "--backend", "kind", "--keep-namespace", "--json", str(report)],
        capsys,
    )
    assert code == 1
    assert "canary-split FAILED" in out
    assert "cluster diagnostics (also in the JSON report's backend_info):" in out
    assert "weight 90" in out
    info = json.loads(report.read_text())["backend_info"]
    assert info["backend"] == "kind"
    assert info["kubernetes"] == "v1.36.1"  # the fake API server's answer
    assert "weight 10" in info["diagnostics_routes"]
    assert info["namespace"].startswith("meshlab-2-traffic-")
    assert events[-1].startswith("run: kind delete cluster --name=meshlab")  # closed at the end


# --- pytest ------------------------------------------------------------------------------


@pytest.fixture
def lab_copy(pytester: pytest.Pytester, lab2_dir: Path) -> Path:
    target = pytester.path / "lab2"
    shutil.copytree(lab2_dir, target, ignore=shutil.ignore_patterns("__pycache__", "test_*.py"))
    # the lab's own test under a name of its own: this process imported the original already
    shutil.copy(lab2_dir / "test_staff_service.py", target / "test_kind_copy_of_staff_service.py")
    return target


def test_pytest_skips_lab_items_with_the_refusal(pytester: pytest.Pytester, lab_copy: Path) -> None:
    result = pytester.runpytest(
        "-rs",
        str(lab_copy),
        "--backend",
        "kind",
        "--kubeconfig",
        "/nonexistent/kubeconfig",
        "--keep-namespace",
    )
    result.assert_outcomes(skipped=2)  # the check and the lab's own Python test
    result.stdout.fnmatch_lines(["*SKIPPED*--kubeconfig /nonexistent/kubeconfig: no such file*"])


def test_kind_marked_tests_skip_with_the_reason(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        "import pytest\n"
        "@pytest.mark.kind\n"
        "def test_on_a_cluster():\n"
        "    raise AssertionError('must not run without a cluster')\n"
    )
    result = pytester.runpytest("-rs", "--kubeconfig", "/nonexistent/kubeconfig")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*SKIPPED*no such file*"])


def test_options_do_not_clash_with_pytest_kind(pytester: pytest.Pytester) -> None:
    """pytest-kind declares --kubeconfig and --keep-cluster too: one set, same meaning."""
    result = pytester.runpytest("--help")
    assert result.ret == 0
    help_text = result.stdout.str()
    assert help_text.count("--keep-cluster") == 1
    assert help_text.count("--kubeconfig=") + help_text.count("--kubeconfig ") >= 1
    assert "--keep-namespace" in help_text
    without = pytester.runpytest("-p", "no:pytest-kind", "--help")
    assert without.ret == 0
    assert "kind backend: keep the kind cluster" in without.stdout.str()

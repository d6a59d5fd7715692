"""The `meshlab` command's contract, as a student's shell or a grading CI sees it.

Exit codes: 0 passed, 1 a check failed, 2 bad input, 130 interrupted; errors as
`file:line:col: error: ...` on stderr and never a traceback; no process left behind.
Everything runs `meshlab` in a process of its own from this venv, like the console script.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parents[2]
TRAFFIC_LAB = REPO / "labs" / "2-traffic"
BAD = REPO / "tests" / "data" / "bad"
MESHLAB = [sys.executable, "-c", "from meshlab.cli import main; main()"]
MARK_VARIABLE = "MESHLAB_TEST_RUN"
RISKY_CLUSTER = "outbound|8080|risky|fleetman-staff-service.default.svc.cluster.local"


@dataclass(repr=False)
class Run:
    """A finished `meshlab` process, plus every descendant seen while it ran."""

    returncode: int
    stdout: str
    stderr: str
    descendants: dict[int, psutil.Process] = field(default_factory=dict)
    names: dict[int, str] = field(default_factory=dict)  # pid -> process name, while it ran
    listening: set[int] = field(default_factory=set)  # ports its descendants listened on
    mark: str = ""  # MESHLAB_TEST_RUN value in the environment of the run and its children

    def __repr__(self) -> str:
        return f"exit {self.returncode}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


def meshlab(*args: str | Path, cwd: Path | None = None, timeout: float = 60) -> Run:
    done = subprocess.run(
        [*MESHLAB, *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Run(done.returncode, done.stdout, done.stderr)


def _observe(parent: psutil.Process, run: Run) -> None:
    """Record the descendants of `parent` and the TCP ports they listen on, right now."""
    try:
        children = parent.children(recursive=True)
    except psutil.NoSuchProcess:
        return
    for child in children:
        run.descendants.setdefault(child.pid, child)
        try:
            # the latest name: a child seen between fork and exec is still "python"
            run.names[child.pid] = child.name()
            for conn in child.net_connections(kind="tcp"):
                if conn.status == psutil.CONN_LISTEN:
                    run.listening.add(conn.laddr.port)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            pass


def meshlab_watched(
    *args: str | Path,
    cwd: Path | None = None,
    timeout: float = 60,
    interrupt_when: Callable[[Run], bool] | None = None,
) -> Run:
    """Run meshlab while watching its process tree; SIGINT it once `interrupt_when` holds."""
    run = Run(-1, "", "", mark=uuid.uuid4().hex)
    env = {**os.environ, MARK_VARIABLE: run.mark}  # inherited by Envoy and every stand-in
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(
            [*MESHLAB, *map(str, args)], cwd=cwd, env=env, stdout=out, stderr=err
        )
        parent = psutil.Process(process.pid)
        deadline = time.monotonic() + timeout
        interrupted = False
        try:
            while process.poll() is None:
                if time.monotonic() > deadline:
                    pytest.fail(f"meshlab {' '.join(map(str, args))} ran over {timeout} s")
                _observe(parent, run)
                if interrupt_when is not None and not interrupted and interrupt_when(run):
                    process.send_signal(signal.SIGINT)
                    interrupted = True
                time.sleep(0.02)
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()
        out.seek(0)
        err.seek(0)
        run.returncode, run.stdout, run.stderr = process.returncode, out.read(), err.read()
    if interrupt_when is not None:  # what the run said, should it end first (a flake's cause)
        assert interrupted, f"the run ended before it could be interrupted: {run}"
    return run


def gone(process: psutil.Process, timeout: float = 10.0) -> bool:
    """True once `process` has exited (a zombie counts: it holds no sockets or memory)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if not process.is_running() or process.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


def _marked(pid: int | None, mark: str, *, unreadable: bool) -> bool:
    """Whether process `pid` inherited `mark` from a watched run; `unreadable` if we can't tell."""
    if pid is None:
        return unreadable
    try:
        return psutil.Process(pid).environ().get(MARK_VARIABLE) == mark
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return unreadable


def _leftovers(run: Run) -> tuple[list[psutil.Process], set[int]]:
    """Processes of the run still alive anywhere (orphans too) and its ports still listening.

    Ownership is the inherited environment mark, not the port number alone: an ephemeral port
    freed by meshlab may already serve another program on a busy machine.
    """
    alive = [p for p in run.descendants.values() if not gone(p, timeout=0)]
    for process in psutil.process_iter():
        if process.pid in run.descendants or process.pid == os.getpid():
            continue
        with contextlib.suppress(psutil.Error):
            if process.status() != psutil.STATUS_ZOMBIE and _marked(
                process.pid, run.mark, unreadable=False
            ):
                alive.append(process)
    ports = {
        c.laddr.port
        for c in psutil.net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN
        and c.laddr.port in run.listening
        and _marked(c.pid, run.mark, unreadable=True)  # a port we saw, owner unknown: flag it
    }
    return alive, ports


def assert_nothing_left(run: Run) -> None:
    deadline = time.monotonic() + 10
    alive, ports = _leftovers(run)
    while (alive or ports) and time.monotonic() < deadline:
        time.sleep(0.05)
        alive, ports = _leftovers(run)
    assert alive == [], f"still running after meshlab exited: {alive}"
    assert ports == set(), f"ports still listening after meshlab exited: {sorted(ports)}"


def copy_lab(tmp_path: Path, name: str = "lab") -> Path:
    copy = tmp_path / name
    shutil.copytree(TRAFFIC_LAB, copy)
    return copy


# --- bad input: exit 2, file:line:col on stderr, no traceback ------------------------------------


def _replace_rules(fixture: str) -> Callable[[Path], None]:
    def setup(lab: Path) -> None:
        shutil.copy(BAD / fixture, lab / "istio-rules.yaml")

    return setup


def _edit(name: str, old: str, new: str) -> Callable[[Path], None]:
    def setup(lab: Path) -> None:
        path = lab / name
        text = path.read_text(encoding="utf-8")
        assert old in text
        path.write_text(text.replace(old, new), encoding="utf-8")

    return setup


def _write_bytes(name: str, data: bytes) -> Callable[[Path], None]:
    def setup(lab: Path) -> None:
        (lab / name).write_bytes(data)

    return setup


def _symlink_outside(lab: Path) -> None:
    outside = lab.parent / "outside.yaml"
    shutil.copy(lab / "istio-rules.yaml", outside)
    (lab / "istio-rules.yaml").unlink()
    (lab / "istio-rules.yaml").symlink_to(outside)


def _remove_lab_yaml(lab: Path) -> None:
    (lab / "lab.yaml").unlink()


@dataclass(frozen=True)
class BadInput:
    setup: Callable[[Path], None]
    expected: str  # a regex that must match a line of stderr
    args: tuple[str, ...] = ()


RULES = r"lab/istio-rules\.yaml"
LAB = r"lab/lab\.yaml"
BAD_INPUTS: dict[str, BadInput] = {
    "yaml-syntax": BadInput(
        _replace_rules("syntax-error.yaml"),
        rf"^{RULES}:7:7: error: invalid YAML: expected ',' or '\]'",
    ),
    "yaml-duplicate-key": BadInput(
        _replace_rules("duplicate-key.yaml"),
        rf'^{RULES}:14:7: error: duplicate key "weight" \(first defined at line 13\)$',
    ),
    "yaml-alias-bomb": BadInput(
        _replace_rules("alias-bomb.yaml"),
        rf"^{RULES}:\d+:\d+: error: YAML expands to more than \d+ nodes",
    ),
    "yaml-python-tag": BadInput(
        _replace_rules("python-tag.yaml"),
        rf"^{RULES}:6:8: error: unsupported YAML tag '.*python/object/apply:os\.system'$",
    ),
    "yaml-not-utf8": BadInput(
        _write_bytes("istio-rules.yaml", "# caf\xe9\nkind: x\n".encode("latin-1")),
        rf"^{RULES}:1:1: error: .*istio-rules\.yaml is not UTF-8 text",
    ),
    "yaml-too-deep": BadInput(
        _write_bytes("istio-rules.yaml", b"a: " + b"[" * 3000 + b"]" * 3000 + b"\n"),
        rf"^{RULES}:1:\d+: error: YAML nested deeper than 64 levels$",
    ),
    "yaml-control-character": BadInput(
        _write_bytes("istio-rules.yaml", b"kind: Virtual\x00Service\n"),
        rf"^{RULES}:1:14: error: invalid YAML: unacceptable character #x0000",
    ),
    "manifest-unknown-field": BadInput(
        _replace_rules("unknown-field.yaml"),
        rf'^{RULES}:12:9: error: VirtualService: unknown field "spec\.http\[0\]\.route\[0\]\.'
        r'destination\.subnet"$',
    ),
    "manifest-api-version": BadInput(
        _replace_rules("wrong-api-version.yaml"),
        rf'^{RULES}:2:13: error: no matches for kind "VirtualService" in version '
        r'"networking\.istio\.io/v2"$',
    ),
    "manifest-several-errors": BadInput(
        _replace_rules("several-errors.yaml"),
        rf"^{RULES}:28:11: error: DestinationRule: spec\.subsets\[0\]\.name",
    ),
    "manifest-in-fleetman": BadInput(
        _edit("fleetman.yaml", "apiVersion: apps/v1\n", "apiVersion: apps/v1beta1\n"),
        r'^lab/fleetman\.yaml:6:13: error: no matches for kind "Deployment"',
    ),
    "lab-unknown-key": BadInput(
        _edit("lab.yaml", "manifests:", "timeout: 5s\nmanifests:"),
        rf'^{LAB}:2:1: error: lab\.yaml: unknown field "timeout"$',
    ),
    "lab-unknown-check-kind": BadInput(
        _edit("lab.yaml", "kind: split", "kind: canary"),
        rf'^{LAB}:5:11: error: unknown check kind "canary"$',
    ),
    "lab-wrong-type": BadInput(
        _edit("lab.yaml", "requests: auto", "requests: many"),
        rf"^{LAB}:10:15: error: check \(split\): checks\[0\]\.requests: ",
    ),
    "lab-manifest-escapes": BadInput(
        _edit("lab.yaml", "[fleetman.yaml,", "[../fleetman.yaml,"),
        rf'^{LAB}:2:13: error: manifest path "\.\./fleetman\.yaml" leaves the lab folder$',
    ),
    "lab-manifest-symlink-outside": BadInput(
        _symlink_outside,
        rf'^{LAB}:2:\d+: error: manifest path "istio-rules\.yaml" leaves the lab folder$',
    ),
    "lab-manifest-missing": BadInput(
        _edit("lab.yaml", "istio-rules.yaml]", "istio-rule.yaml]"),
        rf'^{LAB}:2:\d+: error: manifest "istio-rule\.yaml" not found in ',
    ),
    "lab-empty": BadInput(
        _write_bytes("lab.yaml", b"# TODO\n"),
        rf"^{LAB}:1:1: error: lab\.yaml must hold exactly one mapping",
    ),
    "lab-missing": BadInput(_remove_lab_yaml, r"^error: no lab\.yaml found at lab$"),
    "cli-requests-zero": BadInput(
        lambda lab: None,
        r"Invalid value for '--requests': 0 is not in the range",
        ("--requests=0",),
    ),
    "cli-requests-negative": BadInput(
        lambda lab: None,
        r"Invalid value for '--requests': -5 is not in the range x>=1",
        ("--requests", "-5"),
    ),
    "cli-requests-not-a-number": BadInput(
        lambda lab: None,
        r"Invalid value for '--requests': 'many' is not a whole number",
        ("--requests", "many"),
    ),
    "cli-json-is-a-directory": BadInput(
        lambda lab: None, r"Invalid value for '--json'.*is a directory", ("--json=lab",)
    ),
}


# Each bad-input case needs its own process (exit code, stderr), but a fresh interpreter costs
# about a second of imports. This server imports meshlab once and forks a child per case that
# runs main() exactly as the console script does: real exit code, real stderr, real tracebacks.
FORK_SERVER = r"""
import json, os, sys, traceback
from meshlab.cli import main

for case in json.load(sys.stdin):
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.chdir(case["cwd"])
            for fd, name in ((1, "stdout"), (2, "stderr")):
                os.dup2(os.open(case[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
            sys.argv = ["meshlab", *case["argv"]]
            main(case["argv"])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), flush=True)
"""


def meshlab_many(cases: list[tuple[Path, list[str]]], scratch: Path) -> list[Run]:
    """`meshlab ARGV` in CWD for each case, each in its own process (forked where possible)."""
    if not hasattr(os, "fork"):
        return [meshlab(*argv, cwd=cwd) for cwd, argv in cases]
    jobs = [
        {
            "cwd": str(cwd),
            "argv": argv,
            "stdout": str(scratch / f"{i}.out"),
            "stderr": str(scratch / f"{i}.err"),
        }
        for i, (cwd, argv) in enumerate(cases)
    ]
    done = subprocess.run(
        [sys.executable, "-c", FORK_SERVER],
        input=json.dumps(jobs),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    codes = [int(line) for line in done.stdout.split()]
    assert len(codes) == len(jobs), done.stderr
    return [
        Run(code, Path(job["stdout"]).read_text(), Path(job["stderr"]).read_text())
        for code, job in zip(codes, jobs, strict=True)
    ]


@pytest.fixture(scope="module")
def bad_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    cases = []
    for case, bad in BAD_INPUTS.items():
        cwd = tmp_path_factory.mktemp(case)
        bad.setup(copy_lab(cwd))
        cases.append((cwd, ["run", "lab", *bad.args]))
    runs = meshlab_many(cases, tmp_path_factory.mktemp("outputs"))
    return dict(zip(BAD_INPUTS, runs, strict=True))


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_exits_2_with_a_position_and_no_traceback(
    bad_runs: dict[str, Run], case: str
) -> None:
    run = bad_runs[case]
    assert run.returncode == 2, run
    assert "Traceback" not in run.stderr + run.stdout, run
    assert re.search(BAD_INPUTS[case].expected, run.stderr, re.MULTILINE), run
    assert run.stdout == "", run


def test_several_manifest_errors_come_out_together(bad_runs: dict[str, Run]) -> None:
    lines = bad_runs["manifest-several-errors"].stderr.splitlines()
    positions = [
        m.group(1) for line in lines if (m := re.match(r"lab/istio-rules\.yaml:(\d+)", line))
    ]
    assert positions == ["14", "19", "28"]


def test_hints_follow_their_error(bad_runs: dict[str, Run]) -> None:
    stderr = bad_runs["lab-unknown-check-kind"].stderr
    assert re.search(r'unknown check kind "canary"\n  hint: known kinds: .*split', stderr)
    stderr = bad_runs["manifest-api-version"].stderr
    assert "\n  hint: VirtualService is served as networking.istio.io/v1," in stderr


def test_unknown_command_exits_2() -> None:
    run = meshlab("frobnicate")
    assert run.returncode == 2, run
    assert "No such command 'frobnicate'" in run.stderr
    assert "Traceback" not in run.stderr


def test_list_of_a_missing_folder_exits_2(tmp_path: Path) -> None:
    run = meshlab("list", tmp_path / "nope")
    assert run.returncode == 2, run
    assert "does not exist" in run.stderr
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize("where", ["labs/2-traffic", "docs/reference", "."])
def test_list_finds_the_project_labs_from_any_folder_inside_it(where: str) -> None:
    run = meshlab("list", cwd=REPO / where)
    assert run.returncode == 0, run
    assert run.stdout.startswith("2-traffic: Canary release of the staff service")


def test_list_outside_any_project_says_how_to_point_at_labs(tmp_path: Path) -> None:
    run = meshlab("list", cwd=tmp_path)
    assert run.returncode == 2, run
    assert "give one, e.g. `meshlab list path/to/labs`" in run.stderr


def test_envoy_config_prints_the_bootstrap() -> None:
    run = meshlab("envoy-config", TRAFFIC_LAB)
    assert run.returncode == 0, run
    config = json.loads(run.stdout)
    assert isinstance(config, dict)
    assert RISKY_CLUSTER in run.stdout


def test_envoy_config_on_bad_input_exits_2(tmp_path: Path) -> None:
    lab = copy_lab(tmp_path)
    _replace_rules("unknown-field.yaml")(lab)
    run = meshlab("envoy-config", "lab", cwd=tmp_path)
    assert run.returncode == 2, run
    assert run.stderr.startswith("lab/istio-rules.yaml:12:9: error: ")
    assert "Traceback" not in run.stderr


# --- runs with a real Envoy ------------------------------------------------------------------


@pytest.mark.envoy
def test_doctor_prints_the_envoy_version() -> None:
    run = meshlab("doctor")
    assert run.returncode == 0, run
    assert re.search(
        r"^embedded backend: Envoy \d+\.\d+\.\d+\S* \(from .*\) at /", run.stdout, re.MULTILINE
    )
    assert re.search(r"^mesh CA: ", run.stdout, re.MULTILINE)  # where it is kept, if it is


@pytest.fixture(scope="module")
def passing_run() -> Run:
    return meshlab_watched("run", TRAFFIC_LAB)


@pytest.fixture(scope="module")
def failing_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Run, Path]:
    """Lab 2 with the DestinationRule's `risky` subset renamed: the VirtualService's 10% 503."""
    tmp = tmp_path_factory.mktemp("failing")
    lab = copy_lab(tmp)
    _edit("istio-rules.yaml", "  - name: risky\n", "  - name: canary\n")(lab)
    run = meshlab_watched(
        "run",
        "lab",
        "--requests",
        "200",
        "--json",
        "out/report.json",
        "--junit",
        "junit.xml",
        cwd=tmp,
    )
    return run, tmp


@pytest.mark.envoy
def test_passing_lab_exits_0_and_prints_the_risky_share(passing_run: Run) -> None:
    assert passing_run.returncode == 0, passing_run
    verdict = re.search(
        r"^canary-split passed: risky got (\d+\.\d)% \((\d+)/(\d+)\b.*expected 10\.0%",
        passing_run.stdout,
        re.MULTILINE,
    )
    assert verdict, passing_run
    share, risky, total = float(verdict[1]), int(verdict[2]), int(verdict[3])
    assert share == pytest.approx(100 * risky / total, abs=0.0501)  # printed to 0.1, half to even
    assert 2 < share < 25
    assert passing_run.stdout.splitlines()[0] == (
        "lab 2-traffic: Canary release of the staff service"
    )
    assert re.search(r"^1 passed, 0 failed", passing_run.stdout, re.MULTILINE)
    assert "Traceback" not in passing_run.stderr


@pytest.mark.envoy
def test_passing_run_leaves_no_process_or_socket(passing_run: Run) -> None:
    assert "envoy" in passing_run.names.values()
    assert len(passing_run.descendants) >= 2, "expected Envoy and stand-ins among its children"
    assert passing_run.listening, "expected the children to have listened on some ports"
    assert_nothing_left(passing_run)


@pytest.mark.envoy
def test_failing_lab_exits_1_naming_the_subset_and_503(failing_run: tuple[Run, Path]) -> None:
    run, _ = failing_run
    assert run.returncode == 1, run
    assert re.search(r"^canary-split FAILED: ", run.stdout, re.MULTILINE), run
    assert 'subset "risky"' in run.stdout
    assert "503" in run.stdout
    assert "Traceback" not in run.stderr


@pytest.mark.envoy
def test_failing_run_leaves_no_process_or_socket(failing_run: tuple[Run, Path]) -> None:
    run, _ = failing_run
    assert run.descendants
    assert_nothing_left(run)


@pytest.mark.envoy
def test_json_report_has_the_documented_keys(failing_run: tuple[Run, Path]) -> None:
    _, tmp = failing_run
    report = json.loads((tmp / "out" / "report.json").read_text(encoding="utf-8"))
    assert report["lab"] == "lab"
    assert report["backend"] == "embedded"
    assert report["passed"] is False
    (check,) = report["checks"]
    assert {"name", "kind", "passed", "requests", "expected", "observed"} <= set(check)
    assert (check["name"], check["kind"], check["passed"]) == ("canary-split", "split", False)
    assert check["expected"] == pytest.approx({"safe": 0.9, "risky": 0.1})
    assert check["observed"]["HTTP 503"] > 0
    assert "risky" not in check["observed"]


@pytest.mark.envoy
def test_published_output_carries_no_machine_path(failing_run: tuple[Run, Path]) -> None:
    """The text and the results page (published on the course site) name the Envoy by its
    version and where it came from, never by this machine's paths."""
    run, tmp = failing_run
    page = meshlab("results-page", tmp / "out" / "report.json")
    assert page.returncode == 0, page
    for published in (run.stdout, page.stdout):
        assert "Envoy 1." in published
        assert str(REPO) not in published
        assert "/site-packages/" not in published


@pytest.mark.envoy
def test_requests_option_sends_exactly_that_many(failing_run: tuple[Run, Path]) -> None:
    _, tmp = failing_run
    (check,) = json.loads((tmp / "out" / "report.json").read_text(encoding="utf-8"))["checks"]
    assert check["requests"] == 200
    assert sum(check["observed"].values()) == 200


@pytest.mark.envoy
def test_junit_report_is_valid_xml_with_one_testcase(failing_run: tuple[Run, Path]) -> None:
    _, tmp = failing_run
    root = ET.parse(tmp / "junit.xml").getroot()
    cases = root.findall(".//testcase")
    assert len(cases) == 1
    assert cases[0].get("name") == "canary-split"
    failure = cases[0].find("failure")
    assert failure is not None
    assert "503" in (failure.text or "")
    (suite,) = root.findall("testsuite")
    assert (suite.get("tests"), suite.get("failures")) == ("1", "1")


def _envoy_is_serving(run: Run) -> bool:
    return "envoy" in run.names.values() and len(run.listening) >= 3


@pytest.mark.envoy
def test_ctrl_c_exits_130_and_leaves_nothing_behind() -> None:
    run = meshlab_watched(
        "run",
        TRAFFIC_LAB,
        "--requests",
        "100000",
        "--max-check-requests",
        "100000",
        interrupt_when=_envoy_is_serving,
        timeout=60,
    )
    assert run.returncode == 130, run
    assert "Traceback" not in run.stderr, run
    assert "interrupted" in run.stderr, run
    assert "envoy" in run.names.values()
    assert_nothing_left(run)

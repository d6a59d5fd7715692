"""A hostile or broken world around `meshlab run`, as a grading CI meets it.

* a backend fault (Envoy or a stand-in killed or stopped mid-run) is exit 3 naming what
  broke, within a bounded time, never a failed check;
* SIGTERM and SIGHUP clean up like Ctrl-C (exit 143, 129), and so does a Ctrl-C while the
  stand-ins start: no process, no `meshlab-*` temp folder or log is left;
* no module is imported from the working directory or the lab folder.

Each runs `meshlab` in a process of its own, started as the console script starts it (the
script's folder, not the working directory, on sys.path: `python -P`).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from http.client import HTTPException
from pathlib import Path

import psutil
import pytest

from meshlab.backends.embedded.castore import STORE_ENV
from meshlab.backends.embedded.client import get

pytestmark = pytest.mark.envoy

REPO = Path(__file__).resolve().parents[2]
TRAFFIC_LAB = REPO / "labs" / "2-traffic"
MESHLAB = [sys.executable, "-P", "-c", "from meshlab.cli import main; main()"]
# minutes of traffic: the fault always lands mid-run (over the default request budget, raised)
LONG_RUN = (
    "--requests",
    "200000",
    "--max-check-requests",
    "200000",
    "--max-run-requests",
    "200000",
)
FAULT_BOUND = 15.0  # seconds from the fault to meshlab's exit


def _envoy(procs: list[psutil.Process]) -> psutil.Process | None:
    """The serving Envoy (not `envoy --version`, which runs first)."""
    for p in procs:
        try:
            if p.name() == "envoy" and "--admin-address-path" in p.cmdline():
                return p
        except psutil.Error:
            continue
    return None


def _connections_open(tmpdir: Path) -> int:
    """Connections open on Envoy's listeners (not its admin), from its admin stats
    (`downstream_cx_active` is one Istio's default inclusion list keeps); 0 while Envoy is
    not up."""
    addresses = list(tmpdir.glob("meshlab-*/admin-address"))
    address = addresses[0].read_text().strip() if addresses else ""
    if not address:
        return 0
    try:
        _, body = get(f"http://{address}/stats?filter=downstream_cx_active", 2)
    except (OSError, HTTPException):
        return 0
    open_now = 0
    for line in body.decode().splitlines():
        name, _, value = line.partition(": ")
        if name.startswith("http.outbound_") and value.isdigit():
            open_now += int(value)
    return open_now


def _standin_host(procs: list[psutil.Process]) -> psutil.Process | None:
    """A stand-in host (`--spec PODS.json`); lab 2's seven pods share one."""
    for p in procs:
        try:
            cmd = p.cmdline()
        except psutil.Error:
            continue
        if "--spec" in cmd and any("meshlab.backends.embedded.standins" in c for c in cmd):
            return p
    return None


class Watched:
    """`meshlab run` in a subprocess with its own TMPDIR; its descendants as seen."""

    def __init__(self, *args: str | Path, tmp: Path, cwd: Path | None = None) -> None:
        self.tmpdir = tmp / "tmpdir"
        self.tmpdir.mkdir()
        # an empty mesh CA store: the run starts its CA ahead, as a first run does
        env = {**os.environ, "TMPDIR": str(self.tmpdir), STORE_ENV: str(tmp / "cache")}
        self.out = (tmp / "stdout").open("w+")
        self.err = (tmp / "stderr").open("w+")
        self.process = subprocess.Popen(
            [*MESHLAB, "run", *map(str, args)],
            cwd=cwd or tmp,
            env=env,
            stdout=self.out,
            stderr=self.err,
        )
        self.parent = psutil.Process(self.process.pid)
        self.seen: dict[int, psutil.Process] = {}

    def descendants(self) -> list[psutil.Process]:
        try:
            found = self.parent.children(recursive=True)
        except psutil.Error:
            found = []
        for p in found:
            self.seen.setdefault(p.pid, p)
        return found

    def wait_for(
        self, find: Callable[[list[psutil.Process]], psutil.Process | None], timeout: float = 30
    ) -> psutil.Process:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.output()
            found = find(self.descendants())
            if found is not None:
                return found
            time.sleep(0.01)
        pytest.fail(f"not seen within {timeout} s\n{self.output()}")

    def wait_traffic(self, timeout: float = 30) -> None:
        """Until the probe holds a connection to a sidecar's outbound listener (Envoy's admin
        stats) and some requests have gone: the checks are sending."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _connections_open(self.tmpdir) > 0:
                time.sleep(0.1)
                return
            assert self.process.poll() is None, self.output()
            time.sleep(0.02)
        pytest.fail(f"no traffic within {timeout} s\n{self.output()}")

    def finish(self, timeout: float) -> tuple[int, float]:
        started = time.monotonic()
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"meshlab still running {timeout} s later\n{self.output()}")
        return code, time.monotonic() - started

    def output(self) -> str:
        self.out.seek(0)
        self.err.seek(0)
        return f"--- stdout\n{self.out.read()}\n--- stderr\n{self.err.read()}"

    def stderr(self) -> str:
        self.err.seek(0)
        return self.err.read()

    def assert_nothing_left(self) -> None:
        for p in self.seen.values():
            try:
                status = p.status()
            except psutil.NoSuchProcess:
                continue
            assert status == psutil.STATUS_ZOMBIE, f"{p} still running"
        assert sorted(self.tmpdir.iterdir()) == []

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for p in self.seen.values():
            try:
                p.resume()
                p.kill()
            except psutil.Error:
                pass
        self.out.close()
        self.err.close()


Start = Callable[..., Watched]


@pytest.fixture
def watched(tmp_path: Path) -> Iterator[Start]:
    runs: list[Watched] = []

    def start(*args: str | Path, cwd: Path | None = None) -> Watched:
        folder = tmp_path / f"run{len(runs)}"
        folder.mkdir()
        run = Watched(*args, tmp=folder, cwd=cwd)
        runs.append(run)
        return run

    yield start
    for run in runs:
        run.close()


def test_killed_envoy_is_a_backend_fault(watched: Start) -> None:
    run = watched(TRAFFIC_LAB, *LONG_RUN)
    envoy = run.wait_for(_envoy)
    run.wait_traffic()
    envoy.kill()
    code, _ = run.finish(FAULT_BOUND)
    assert code == 3, run.output()
    assert "Envoy died during the run" in run.stderr()
    assert "killed by SIGKILL" in run.stderr()
    assert "passed" not in run.output().split("--- stderr")[0]
    run.assert_nothing_left()


def test_killed_stand_in_host_is_a_backend_fault_naming_its_pods(watched: Start) -> None:
    run = watched(TRAFFIC_LAB, *LONG_RUN)
    run.wait_for(_envoy)
    host = run.wait_for(_standin_host)
    run.wait_traffic()
    host.kill()
    code, _ = run.finish(FAULT_BOUND)
    assert code == 3, run.output()
    err = run.stderr()
    assert "stand-in host 1/1 (7 pods) died during the run" in err
    assert "pods in it, all down with it (7): " in err
    for pod in ("staff-service-risky", "webapp", "api-gateway", "position-tracker"):
        assert f"default/{pod}" in err
    run.assert_nothing_left()


def test_stopped_envoy_is_a_backend_fault_within_the_bound(watched: Start) -> None:
    run = watched(TRAFFIC_LAB, *LONG_RUN)
    envoy = run.wait_for(_envoy)
    run.wait_traffic()
    envoy.suspend()
    code, seconds = run.finish(FAULT_BOUND)
    assert code == 3, run.output()
    assert "Envoy is stopped" in run.stderr()
    assert seconds < FAULT_BOUND
    run.assert_nothing_left()


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_sigterm_and_sighup_clean_up_like_ctrl_c(watched: Start, sig: int, code: int) -> None:
    run = watched(TRAFFIC_LAB, *LONG_RUN)
    run.wait_for(_envoy)
    run.wait_traffic()
    assert list(run.tmpdir.glob("meshlab-*"))  # the run's folder and the stand-in logs
    run.process.send_signal(sig)
    got, _ = run.finish(FAULT_BOUND)
    assert got == code, run.output()
    assert f"{signal.Signals(sig).name}: stopping every process" in run.stderr()
    assert "Traceback" not in run.stderr()
    run.assert_nothing_left()


TRAP = "import pathlib; pathlib.Path({path!r}).write_text('imported')\nraise ImportError\n"


def test_nothing_is_imported_from_the_working_directory_or_the_lab(
    watched: Start,
    tmp_path: Path,
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    lab = tmp_path / "lab"
    shutil.copytree(TRAFFIC_LAB, lab, ignore=shutil.ignore_patterns("__pycache__", "test_*"))
    workdir = tmp_path / "workdir"
    for folder in (lab, workdir):
        (folder / "meshlab").mkdir(parents=True)
        for module in ("json.py", "yaml.py", "meshlab/__init__.py"):
            path = marks / f"{folder.name}-{module.replace('/', '-')}"
            (folder / module).write_text(TRAP.format(path=str(path)))
    run = watched(lab, cwd=workdir)
    code, _ = run.finish(60)
    assert code == 0, run.output()
    assert sorted(p.name for p in marks.iterdir()) == []
    run.assert_nothing_left()


def _ca_worker(procs: list[psutil.Process]) -> psutil.Process | None:
    """The mesh CA a run starts before reading the lab (backends/embedded/warm.py)."""
    for p in procs:
        try:
            if any("meshlab.backends.embedded.ca_worker" in c for c in p.cmdline()):
                return p
        except psutil.Error:
            continue
    return None


@pytest.mark.parametrize(
    ("started", "sig", "code"),
    [(_standin_host, signal.SIGINT, 130), (_ca_worker, signal.SIGTERM, 143)],
    ids=["ctrl-c-as-the-host-starts", "sigterm-as-the-ca-starts"],
)
def test_a_stop_while_processes_start_leaks_nothing(
    watched: Start,
    started: Callable[[list[psutil.Process]], psutil.Process | None],
    sig: int,
    code: int,
) -> None:
    """Envoy, the host and the CA start before the lab is read: a stop then ends them too."""
    run = watched(TRAFFIC_LAB)
    run.wait_for(started, timeout=60)
    run.process.send_signal(sig)
    got, _ = run.finish(FAULT_BOUND)
    assert got == code, run.output()
    run.assert_nothing_left()


def test_a_lab_that_does_not_load_leaves_nothing_started_ahead(
    watched: Start, tmp_path: Path
) -> None:
    lab = tmp_path / "broken"
    lab.mkdir()
    (lab / "lab.yaml").write_text("title: broken\nmanifests: [missing.yaml]\nchecks: []\n")
    run = watched(lab)
    deadline = time.monotonic() + 60
    while run.process.poll() is None and time.monotonic() < deadline:
        run.descendants()  # every process as it appears, to check each is gone at the end
        time.sleep(0.002)
    got, _ = run.finish(1)
    assert got == 2, run.output()
    assert "lab.yaml:3" in run.stderr()
    assert len(run.seen) >= 3  # Envoy, the stand-in host and the CA had started ahead
    run.assert_nothing_left()

"""ProcessGroup and start_standins: ready lines, error messages, and leaving nothing behind."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from meshlab.backends.embedded import hosts
from meshlab.backends.embedded.hosts import start_standins
from meshlab.backends.embedded.processes import ProcessGroup
from meshlab.backends.embedded.standins import PodSpec
from meshlab.errors import BackendError

STAFF = "richardchesterwood/istio-fleetman-staff-service"
FLEETMAN = "richardchesterwood/istio-fleetman-"


def py(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


def children() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


def listening(ports: set[int]) -> set[int]:
    return {
        c.laddr.port
        for c in psutil.net_connections("tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr.port in ports
    }


def gone(pid: int, timeout: float = 10.0) -> bool:
    """True once `pid` has exited (zombies count: an orphan's reaper may be slow or absent)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def no_leaks() -> Iterator[None]:
    before = children()
    yield
    assert children() - before == set()


FLEET = [
    PodSpec("staff-6", "default", f"{STAFF}:6", {"app": "staff", "version": "6"}, (8080,)),
    PodSpec("staff-ph", "default", f"{STAFF}:6-placeholder", {"app": "staff"}, (8080,)),
    PodSpec("staff-bad", "default", f"{STAFF}:6-bad", {"app": "staff"}, (8080,)),
    PodSpec("tracker", "default", f"{FLEETMAN}position-tracker:6", {}, (8080,)),
    PodSpec("gateway", "default", f"{FLEETMAN}api-gateway:6", {}, (8080,)),
    PodSpec("webapp", "default", f"{FLEETMAN}webapp-angular:6", {}, (80,)),
    PodSpec("telemetry", "default", f"{FLEETMAN}vehicle-telemetry:6", {}, (8080,)),
    PodSpec("echo", "other", "nginx:1.25", {"app": "web"}, (80, 9090)),
]


def test_start_standins_serves_every_pod_then_close_leaves_nothing(
    tmp_path: Path, no_leaks: None
) -> None:
    with ProcessGroup() as group:
        mapping = start_standins(group, FLEET, log_dir=tmp_path)
        assert set(mapping) == {p.name for p in FLEET}
        for pod in FLEET:
            assert set(mapping[pod.name]) == set(pod.container_ports)
            for port in mapping[pod.name].values():
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                try:
                    conn.request("GET", "/")
                    response = conn.getresponse()
                    response.read()
                    assert response.getheader("x-meshlab-pod") == pod.name
                finally:
                    conn.close()
        bound = {p for ports in mapping.values() for p in ports.values()}
        assert listening(bound) == bound
        pids = {p.pid for p in group.processes}
        assert pids <= children()
    assert all(p.returncode == 0 for p in group.processes)  # SIGTERM → quiet exit 0
    assert len(pids) == 1  # eight pods: one host
    logs = sorted(tmp_path.iterdir())
    assert [f.name for f in logs] == ["standins-1.log"]
    assert all(f.read_bytes() == b"" for f in logs)  # no access log, no traceback on exit
    assert pids & children() == set()
    assert listening(bound) == set()


def test_keyboard_interrupt_during_startup_tears_down(no_leaks: None) -> None:
    group = ProcessGroup()
    mapping: dict[str, dict[int, int]] = {}

    def interrupted_startup() -> None:
        with group:
            mapping.update(start_standins(group, FLEET[:3]))
            raise KeyboardInterrupt  # as if Ctrl-C landed right after start-up

    with pytest.raises(KeyboardInterrupt):
        interrupted_startup()
    assert len(mapping) == 3
    bound = {p for ports in mapping.values() for p in ports.values()}
    assert listening(bound) == set()
    assert not any(p.alive for p in group.processes)


def test_spawn_read_json_line_and_state(no_leaks: None) -> None:
    with ProcessGroup() as group:
        proc = group.spawn("talker", py("print('{\"a\": 1}', flush=True); input()"))
        assert group["talker"] is proc
        assert proc.read_json_line(timeout=10) == {"a": 1}
        assert proc.alive
        assert proc.poll() is None
        assert proc.pid > 0
    assert not proc.alive


def test_read_json_line_timeout_names_process_argv_state_and_stderr(no_leaks: None) -> None:
    code = "import sys, time; print('warming up', file=sys.stderr, flush=True); time.sleep(60)"
    with ProcessGroup() as group:
        proc = group.spawn("slowpoke", py(code))
        # wait until the child has said something, so the tail is deterministic
        deadline = time.monotonic() + 10
        while "warming up" not in proc.log_tail() and time.monotonic() < deadline:
            time.sleep(0.01)
        with pytest.raises(BackendError) as info:
            proc.read_json_line(timeout=0.2)
    message = str(info.value)
    assert "slowpoke" in message
    assert "time.sleep(60)" in message  # argv
    assert f"still running (pid {proc.pid})" in message
    assert "warming up" in message
    assert info.value.exit_code == 3


def test_read_json_line_after_early_exit_reports_exit_code(no_leaks: None) -> None:
    code = "import sys; print('boom: no such port', file=sys.stderr); sys.exit(7)"
    with ProcessGroup() as group:
        proc = group.spawn("quitter", py(code))
        with pytest.raises(BackendError, match="exited before") as info:
            proc.read_json_line(timeout=10)
        with pytest.raises(BackendError, match="closed its stdout"):
            proc.read_json_line(timeout=10)
    message = str(info.value)
    assert "quitter" in message
    assert "exit code 7" in message
    assert "boom: no such port" in message


def test_read_json_line_rejects_non_json(no_leaks: None) -> None:
    with ProcessGroup() as group:
        proc = group.spawn("chatty", py("print('hello there', flush=True); input()"))
        with pytest.raises(BackendError, match=r"not JSON.*hello there"):
            proc.read_json_line(timeout=10)
        proc2 = group.spawn("listy", py("print('[1, 2]', flush=True); input()"))
        with pytest.raises(BackendError, match="not an object"):
            proc2.read_json_line(timeout=10)


def test_close_kills_a_child_that_ignores_sigterm(no_leaks: None) -> None:
    code = """
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print('{"ready": true}', flush=True)
        time.sleep(60)
    """
    group = ProcessGroup(terminate_timeout=0.3)
    try:
        proc = group.spawn("stubborn", py(code))
        proc.read_json_line(timeout=10)  # SIG_IGN is in place once it talks
    finally:
        group.close()
    assert proc.returncode == -signal.SIGKILL


def test_close_is_idempotent_and_fine_after_a_child_died(no_leaks: None) -> None:
    group = ProcessGroup()
    dead = group.spawn("dead", py("import time; time.sleep(60)"))
    alive = group.spawn("alive", py("import time; time.sleep(60)"))
    dead_pid = dead.pid
    psutil.Process(dead_pid).kill()
    assert dead.wait(timeout=10) == -signal.SIGKILL
    group.close()
    group.close()
    assert alive.returncode == -signal.SIGTERM
    with pytest.raises(RuntimeError, match="closed"):
        group.spawn("late", py("pass"))


def test_spawn_rejects_duplicate_names_and_keeps_logs_where_asked(
    tmp_path: Path, no_leaks: None
) -> None:
    log = tmp_path / "logs" / "envoy.log"
    with ProcessGroup() as group:
        proc = group.spawn(
            "envoy-like",
            py("import sys\nfor i in range(50): print('line', i, file=sys.stderr)"),
            log_path=log,
        )
        proc.wait(timeout=10)
        assert proc.log_tail(3) == "line 47\nline 48\nline 49"
        with pytest.raises(ValueError, match="already exists"):
            group.spawn("envoy-like", py("pass"))
    assert log.read_text().count("\n") == 50  # a log the caller named outlives the group


def test_start_standins_reports_a_stand_in_that_dies(
    monkeypatch: pytest.MonkeyPatch, no_leaks: None
) -> None:
    def broken_argv(spec: Path, root: str | None = None) -> list[str]:
        return py("import sys; print('cannot bind', file=sys.stderr); sys.exit(1)")

    monkeypatch.setattr(hosts, "host_argv", broken_argv)
    with ProcessGroup() as group, pytest.raises(BackendError) as info:
        start_standins(group, FLEET[:2])
    message = str(info.value)
    assert "stand-in host 1/1 (2 pods) exited before printing its ready line" in message
    assert "(2): default/staff-6, default/staff-ph" in message
    assert "exit code 1" in message
    assert "cannot bind" in message


def test_start_standins_checks_the_ready_line(
    monkeypatch: pytest.MonkeyPatch, no_leaks: None
) -> None:
    line = json.dumps({"ready": True, "pods": {"someone-else": {"8080": 1}}})
    monkeypatch.setattr(hosts, "host_argv", lambda spec, root=None: py(f"print({line!r}); input()"))
    with ProcessGroup() as group, pytest.raises(BackendError, match="unexpected ready line"):
        start_standins(group, FLEET[:1])


def test_start_standins_rejects_duplicate_pod_names() -> None:
    with ProcessGroup() as group, pytest.raises(ValueError, match="duplicate pod names: staff-6"):
        start_standins(group, [FLEET[0], FLEET[0]])
    assert group.processes == []


ORPHANING_PARENT = """
    import sys, threading, time
    from meshlab.backends.embedded.hosts import start_standins
    from meshlab.backends.embedded.processes import ProcessGroup
    from meshlab.backends.embedded.standins import PodSpec
    group = ProcessGroup()
    if sys.argv[1] == "standin-from-thread":  # no PDEATHSIG off the main thread: stdin only
        pod = PodSpec("orphan", "default", "nginx", {}, (80,))
        box = []
        t = threading.Thread(target=lambda: box.append(start_standins(group, [pod])))
        t.start(); t.join()
        pid = group.processes[0].pid
    else:  # a child that never reads stdin: only PR_SET_PDEATHSIG can end it
        pid = group.spawn("deaf", [sys.executable, "-c", "import time; time.sleep(60)"]).pid
    print(pid, flush=True)
    time.sleep(60)
"""


@pytest.mark.parametrize(
    "mode",
    [
        "standin-from-thread",
        pytest.param(
            "deaf-child",
            marks=pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl"),
        ),
    ],
)
def test_children_die_with_a_killed_parent(mode: str, tmp_path: Path) -> None:
    # a killed parent removes none of its children's log files: they go to tmp_path
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    parent = subprocess.Popen([*py(ORPHANING_PARENT), mode], stdout=subprocess.PIPE, env=env)
    try:
        assert parent.stdout is not None
        pid = int(parent.stdout.readline())
        assert not gone(pid, timeout=0.05)
        parent.kill()  # no finally, no atexit: the safeguards must do it
        parent.wait(timeout=10)
        assert gone(pid)
    finally:
        if parent.poll() is None:
            parent.kill()
        parent.communicate(timeout=10)


# --- isolation: nothing from the caller's folder, environment or PYTHONPATH -------------

TRAP = "import pathlib; pathlib.Path({path!r}).write_text('imported')\nraise ImportError\n"


def _trap_folder(folder: Path, marks: Path) -> None:
    """A json.py and a meshlab/ package that leave a mark if anything imports them."""
    (folder / "meshlab").mkdir(parents=True)
    (folder / "json.py").write_text(TRAP.format(path=str(marks / f"{folder.name}-json")))
    init = folder / "meshlab" / "__init__.py"
    init.write_text(TRAP.format(path=str(marks / f"{folder.name}-meshlab")))


def test_stand_ins_import_nothing_from_cwd_or_pythonpath(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_leaks: None
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    for name in ("cwd", "on-path", "given-cwd"):
        _trap_folder(tmp_path / name, marks)
    monkeypatch.chdir(tmp_path / "cwd")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "on-path"))
    monkeypatch.setenv("MESHLAB_SECRET_TEST_TOKEN", "kept: ours")
    monkeypatch.setenv("SOME_API_TOKEN", "not for children")
    with ProcessGroup() as group:
        ports = start_standins(group, FLEET[:2])
        assert set(ports) == {"staff-6", "staff-ph"}
        start_standins(
            group, [PodSpec("other", "default", "nginx", {}, (80,))], cwd=tmp_path / "given-cwd"
        )
        child = psutil.Process(group.processes[0].pid)
        assert child.cwd() != str(tmp_path / "cwd")
        assert psutil.Process(group.processes[-1].pid).cwd() == str(tmp_path / "given-cwd")
        env = child.environ()
        assert "PYTHONPATH" not in env
        assert "SOME_API_TOKEN" not in env
        assert env["MESHLAB_SECRET_TEST_TOKEN"] == "kept: ours"
        assert "-I" in child.cmdline()
    assert list(marks.iterdir()) == []


def test_spawned_children_get_a_fixed_cwd_and_a_clean_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_leaks: None
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    show = "import os, json; print(json.dumps([os.getcwd(), sorted(os.environ)]))"
    with ProcessGroup() as group:
        proc = group.spawn("show", [sys.executable, "-I", "-c", show])
        cwd, names = json.loads(proc._lines.get(timeout=10))
    assert Path(cwd) != tmp_path
    assert "AWS_SECRET_ACCESS_KEY" not in names
    assert not [n for n in names if n.startswith(("PYTHON", "LD_"))]


HANGING_ENVOY = """#!/bin/sh
sleep 300 &
echo $! > "{pidfile}"
sleep 300
"""


@pytest.mark.skipif(sys.platform == "win32", reason="a POSIX shell script")
def test_a_hanging_envoy_version_is_killed_with_its_child(tmp_path: Path) -> None:
    from meshlab.backends.embedded.envoy import binary

    pidfile = tmp_path / "child.pid"
    fake = tmp_path / "fake-envoy"
    fake.write_text(HANGING_ENVOY.format(pidfile=pidfile))
    fake.chmod(0o755)
    started = time.monotonic()
    assert binary._version_of(fake, timeout=0.5) is None
    assert time.monotonic() - started < 5
    assert gone(int(pidfile.read_text()), timeout=2)


def test_wait_answers_at_the_exit_or_none_at_the_timeout(no_leaks: None) -> None:
    with ProcessGroup() as group:
        quick = group.spawn("quick", py("import sys; sys.exit(7)"))
        slow = group.spawn("slow", py("import time; time.sleep(60)"))
        assert quick.wait(timeout=30) == 7
        assert quick.wait(timeout=0) == 7  # reaped: the same answer again
        assert slow.wait(timeout=0.05) is None
        assert slow.alive


def test_a_child_spawned_with_another_stop_signal_gets_it_first(no_leaks: None) -> None:
    """Envoy is stopped with SIGKILL (its shutdown costs a run time, and nothing of it is
    needed afterwards); others get SIGTERM."""
    with ProcessGroup() as group:
        killed = group.spawn(
            "killed", py("import time; time.sleep(60)"), stop_signal=signal.SIGKILL
        )
        termed = group.spawn("termed", py("import time; time.sleep(60)"))
    assert killed.returncode == -signal.SIGKILL
    assert termed.returncode == -signal.SIGTERM

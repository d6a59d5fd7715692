"""Child-process supervision for stand-in pods and Envoy: start, read ready lines, tear down.

Children never outlive us. Three independent safeguards, because each misses a case:
  * `ProcessGroup.close()` (from `with`, finally, atexit): SIGTERM to each child's process
    group, then SIGKILL after a grace period;
  * stdin is a pipe we never write to: if we die, it closes and the stand-in sees EOF;
  * on Linux, PR_SET_PDEATHSIG=SIGTERM, for children that never read stdin (Envoy).
Children run in their own session, so a terminal Ctrl-C reaches only us and we tear down in
order instead of every process dying at once mid-write.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import queue
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from meshlab.backends.embedded.standins import PodSpec
from meshlab.errors import BackendError

__all__ = ["ManagedProcess", "ProcessGroup", "standin_argv", "start_standins"]

TERMINATE_TIMEOUT = 3.0
_PR_SET_PDEATHSIG = 1
_EOF = b""


def _pdeathsig_preexec() -> Callable[[], None] | None:
    """A preexec_fn asking Linux to SIGTERM the child when its parent thread dies.

    The kernel ties this to the *thread* that forked, so only the main thread (which lives as
    long as the process) uses it; spawns from other threads rely on the stdin lifeline.
    """
    if not sys.platform.startswith("linux"):
        return None
    if threading.current_thread() is not threading.main_thread():
        return None
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


class ManagedProcess:
    """One child: its Popen, a stdout line reader, and its stderr log file."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        log_path: str | Path | None = None,
    ) -> None:
        self.name = name
        self.argv = [str(a) for a in argv]
        self._owns_log = log_path is None
        if log_path is None:
            fd, tmp = tempfile.mkstemp(prefix=f"meshlab-{_slug(name)}-", suffix=".log")
            os.close(fd)
            log_path = tmp
        self.log_path = Path(log_path)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log: IO[bytes] = self.log_path.open("wb")
        self._lines: queue.Queue[bytes] = queue.Queue()
        self._eof = False
        try:
            self._popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._log,
                env=None if env is None else dict(env),
                cwd=cwd,
                **_platform_kwargs(),
            )
        except BaseException:
            self._log.close()
            self._drop_log()
            raise
        self._reader = threading.Thread(
            target=self._read_stdout, name=f"stdout-{name}", daemon=True
        )
        self._reader.start()

    def _read_stdout(self) -> None:
        """Drain stdout eagerly so a chatty child can never block on a full pipe."""
        stdout = self._popen.stdout
        assert stdout is not None
        with stdout:
            for line in iter(stdout.readline, _EOF):
                self._lines.put(line)
        self._lines.put(_EOF)

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def returncode(self) -> int | None:
        return self._popen.returncode

    @property
    def alive(self) -> bool:
        return self._popen.poll() is None

    def poll(self) -> int | None:
        return self._popen.poll()

    def read_json_line(self, timeout: float) -> dict[str, Any]:
        """The next stdout line as a JSON object; BackendError on timeout, exit or garbage."""
        if self._eof:
            raise self.failure("closed its stdout")
        try:
            line = self._lines.get(timeout=max(timeout, 0.0))
        except queue.Empty:
            raise self.failure(f"printed no line within {timeout:g} s") from None
        if line == _EOF:
            self._eof = True
            self.wait(timeout=1.0)  # stdout closes just before exit: let the exit code exist
            raise self.failure("exited before printing its ready line")
        text = line.decode("utf-8", "replace").strip()
        try:
            value = json.loads(text)
        except ValueError:
            raise self.failure(f"printed a line that is not JSON: {text[:200]!r}") from None
        if not isinstance(value, dict):
            raise self.failure(f"printed JSON that is not an object: {text[:200]!r}")
        return value

    def log_tail(self, lines: int = 20) -> str:
        """The last `lines` lines the child wrote to stderr."""
        try:
            with self.log_path.open("rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(f.tell() - 64 * 1024, 0))
                data = f.read()
        except OSError:
            return ""
        return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])

    def describe_state(self) -> str:
        code = self._popen.poll()
        if code is None:
            return f"still running (pid {self.pid})"
        if code < 0:
            return f"exit code {code} (killed by {_signal_name(-code)})"
        return f"exit code {code}"

    def wait(self, timeout: float | None = None) -> int | None:
        """The exit code, or None if still running after `timeout` seconds."""
        try:
            return self._popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def failure(self, what: str) -> BackendError:
        """A BackendError saying `<name> <what>`, with argv, exit state and stderr tail."""
        tail = self.log_tail()
        shown = "\n".join(f"    {line}" for line in tail.splitlines()) if tail else "    (empty)"
        return BackendError(
            f"{self.name} {what}\n"
            f"  argv: {shlex.join(self.argv)}\n"
            f"  {self.describe_state()}\n"
            f"  stderr tail ({self.log_path}):\n{shown}"
        )

    def send_signal(self, sig: int) -> None:
        """Signal the child's whole process group (it is the group leader) until reaped."""
        if self._popen.returncode is not None:
            return  # reaped: its pid may already belong to someone else
        if sys.platform == "win32":
            self._popen.terminate()  # TerminateProcess: Windows has no gentler signal to send
            return
        try:
            os.killpg(self._popen.pid, sig)
        except (ProcessLookupError, PermissionError):
            with contextlib.suppress(ProcessLookupError):
                self._popen.send_signal(sig)

    def release(self) -> None:
        """Close our ends once the child is gone: lifeline, stdout reader, log file."""
        if self._popen.stdin is not None:
            with contextlib.suppress(OSError):
                self._popen.stdin.close()
        self._reader.join(timeout=1.0)
        self._log.close()
        self._drop_log()

    def _drop_log(self) -> None:
        if self._owns_log:
            self.log_path.unlink(missing_ok=True)

    def __repr__(self) -> str:
        return f"<ManagedProcess {self.name} pid={self.pid} {self.describe_state()}>"


def _platform_kwargs() -> dict[str, Any]:
    if sys.platform == "win32":
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    return {"start_new_session": True, "preexec_fn": _pdeathsig_preexec()}


def _signal_name(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:40]


class ProcessGroup:
    """Owns child processes and tears all of them down on close(), however we got there."""

    def __init__(self, terminate_timeout: float = TERMINATE_TIMEOUT) -> None:
        self.terminate_timeout = terminate_timeout
        self._procs: dict[str, ManagedProcess] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._atexit = False

    def spawn(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        log_path: str | Path | None = None,
    ) -> ManagedProcess:
        """Start `argv` as `name` (unique here); stderr goes to `log_path` or a temp file."""
        with self._lock:
            if self._closed:
                raise RuntimeError("ProcessGroup is closed")
            if name in self._procs:
                raise ValueError(f"a process named {name!r} already exists in this group")
            if not self._atexit:
                atexit.register(self.close)
                self._atexit = True
            proc = ManagedProcess(name, argv, env=env, cwd=cwd, log_path=log_path)
            self._procs[name] = proc
            return proc

    @property
    def processes(self) -> list[ManagedProcess]:
        return list(self._procs.values())

    def __getitem__(self, name: str) -> ManagedProcess:
        return self._procs[name]

    def close(self) -> None:
        """SIGTERM every child group, wait up to terminate_timeout, then SIGKILL. Idempotent.

        A KeyboardInterrupt while waiting skips straight to SIGKILL, then propagates.
        """
        self._closed = True
        procs = [p for p in self._procs.values() if p.returncode is None]
        try:
            for p in procs:
                p.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + self.terminate_timeout
            for p in procs:
                p.wait(timeout=max(deadline - time.monotonic(), 0.0))
        finally:
            kill = getattr(signal, "SIGKILL", signal.SIGTERM)
            for p in procs:
                if p.poll() is None:
                    p.send_signal(kill)
            for p in procs:
                p.wait(timeout=10.0)
            for p in self._procs.values():
                p.release()
            if self._atexit:
                atexit.unregister(self.close)
                self._atexit = False

    def __enter__(self) -> ProcessGroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def standin_argv(pod: PodSpec) -> list[str]:
    """The command line that runs `pod` as a stand-in with this interpreter."""
    argv = [sys.executable, "-m", "meshlab.backends.embedded.standins", "--pod", pod.name]
    argv += ["--namespace", pod.namespace, "--image", pod.image]
    for port in pod.container_ports:
        argv += ["--port", str(port)]
    for key, value in pod.labels.items():
        argv += ["--label", f"{key}={value}"]
    return argv


def _standin_env() -> dict[str, str]:
    """Our environment, plus our source tree on PYTHONPATH when meshlab is not installed."""
    import site

    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[3])  # the folder holding the meshlab package
    site_dirs = [*site.getsitepackages(), site.getusersitepackages()]
    site_dirs = [str(Path(d).resolve()) for d in site_dirs]
    if root not in site_dirs:  # adding site-packages itself would shadow the stdlib
        paths = [root, *(p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p)]
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


def start_standins(
    group: ProcessGroup,
    pods: Sequence[PodSpec],
    timeout: float = 20.0,
    *,
    log_dir: str | Path | None = None,
) -> dict[str, dict[int, int]]:
    """Start one stand-in per pod, all at once, and wait for every ready line.

    Returns pod name → {containerPort: local port}. Each stderr goes to
    `log_dir/<namespace>.<pod>.log` (kept) or to a temp file (removed on close). On failure
    raises BackendError; stand-ins already started stay in `group`, whose close() ends them.
    """
    names = [p.name for p in pods]
    if dupes := sorted({n for n in names if names.count(n) > 1}):
        raise ValueError(f"duplicate pod names: {', '.join(dupes)}")
    env = _standin_env()
    started = []
    for pod in pods:
        log = Path(log_dir, f"{pod.namespace}.{pod.name}.log") if log_dir is not None else None
        name = f"stand-in {pod.namespace}/{pod.name}"
        started.append((pod, group.spawn(name, standin_argv(pod), env=env, log_path=log)))
    deadline = time.monotonic() + timeout
    result: dict[str, dict[int, int]] = {}
    for pod, proc in started:
        line = proc.read_json_line(max(deadline - time.monotonic(), 0.0))
        result[pod.name] = _check_ready(pod, proc, line)
    return result


def _check_ready(pod: PodSpec, proc: ManagedProcess, line: dict[str, Any]) -> dict[int, int]:
    ports = line.get("ports")
    mapping: dict[int, int] | None = None
    if line.get("ready") is True and line.get("pod") == pod.name and isinstance(ports, dict):
        with contextlib.suppress(TypeError, ValueError):
            mapping = {int(k): int(v) for k, v in ports.items()}
    if mapping is None or set(mapping) != set(pod.container_ports):
        raise proc.failure(f"sent an unexpected ready line: {json.dumps(line)[:300]}")
    return mapping

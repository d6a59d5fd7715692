"""Child-process supervision for stand-in hosts (`hosts.py`) and Envoy: start, read ready
lines, tear down.

Children never outlive us. Three independent safeguards, because each misses a case:
  * `ProcessGroup.close()` (from `with`, finally, atexit): SIGTERM to each child's process
    group, then SIGKILL after a grace period;
  * stdin is a pipe we never write to: if we die, it closes and the stand-in sees EOF;
  * on Linux, PR_SET_PDEATHSIG=SIGTERM, for children that never read stdin (Envoy).
Children run in their own session, so a terminal Ctrl-C reaches only us and we tear down in
order instead of every process dying at once mid-write.

Children are also isolated from whatever folder meshlab runs in (graders run it on student
submissions): a fixed working directory, an environment holding only what they need
(`child_env`), and stand-ins run by an isolated interpreter (`-I`) that never imports from
the working directory, the lab or $PYTHONPATH.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import queue
import select
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from meshlab.errors import BackendError

__all__ = ["ManagedProcess", "ProcessGroup", "child_env", "module_argv", "source_root"]

TERMINATE_TIMEOUT = 3.0
# what a child may inherit from us: locale, temp dir, PATH for tools, Windows' system root,
# and MESHLAB_* (ours, e.g. a grader's tag); never PYTHON*, LD_*, proxies or secrets
_KEPT_VARIABLES = ("PATH", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TEMP", "TMP", "SYSTEMROOT")
_KEPT_PREFIXES = ("LC_", "MESHLAB_")
# ours, yet per child: a stand-in's sidecar (egress.py's MESHLAB_EGRESS) is never inherited
_PER_CHILD = ("MESHLAB_EGRESS",)
# signals a user sends to stop a run: while a child is being started they wait, so that
# every child (and its log) is registered before the stop unwinds into close()
_STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)
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
        members: Sequence[str] = (),
        pass_fds: Sequence[int] = (),
        stop_signal: int = signal.SIGTERM,
    ) -> None:
        self.name = name
        self.members = tuple(members)  # what lives and dies with this process (a host's pods)
        self.stop_signal = stop_signal  # what close() sends first
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
                env=child_env() if env is None else dict(env),
                cwd=tempfile.gettempdir() if cwd is None else cwd,
                pass_fds=tuple(pass_fds),  # listening sockets bound for it (hosts.py)
                **_platform_kwargs(),
            )
        except BaseException:
            self._log.close()
            self._drop_log()
            raise
        self._reader = threading.Thread(
            target=self._read_stdout, name=f"stdout-{name}", daemon=True
        )
        try:
            self._reader.start()
        except BaseException:
            self.send_signal(getattr(signal, "SIGKILL", signal.SIGTERM))
            self._popen.wait()
            self._log.close()
            self._drop_log()
            raise

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

    def send_json_line(self, value: Any) -> None:
        """One JSON line on the child's stdin, which stays open (the lifeline): how a child
        started before the lab was read gets its work. BackendError if it is gone."""
        stdin = self._popen.stdin
        try:
            assert stdin is not None
            stdin.write(json.dumps(value, separators=(",", ":")).encode() + b"\n")
            stdin.flush()
        except (OSError, ValueError):
            raise self.failure("was gone before it got its work") from None

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
        """The exit code, or None if still running after `timeout` seconds. Woken by the
        exit itself where Linux gives a pidfd: Popen.wait(timeout) polls with sleeps growing
        to 50 ms, which made a run's teardown wait ~45 ms after Envoy had gone."""
        code = self._popen.poll()
        if code is not None or timeout is None or not hasattr(os, "pidfd_open"):
            try:
                return code if code is not None else self._popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                return None
        try:  # not reaped yet (poll() said so): the pid is still this child's
            fd = os.pidfd_open(self._popen.pid)
        except OSError:  # an older kernel
            try:
                return self._popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                return None
        try:
            select.select([fd], [], [], max(timeout, 0.0))  # readable once the child exits
        finally:
            os.close(fd)
        return self._popen.poll()

    def failure(self, what: str) -> BackendError:
        """A BackendError saying `<name> <what>`, with argv, exit state and stderr tail."""
        tail = self.log_tail()
        shown = "\n".join(f"    {line}" for line in tail.splitlines()) if tail else "    (empty)"
        members = (
            f"  pods in it, all down with it ({len(self.members)}): {', '.join(self.members)}\n"
            if self.members
            else ""
        )
        return BackendError(
            f"{self.name} {what}\n"
            f"{members}"
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


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM/SIGHUP for the block, then deliver them to their usual handlers.

    Python runs signal handlers in the main thread between bytecodes, so the handler in force
    when the main thread looks is the one that runs; elsewhere there is nothing to defer.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = {}
    for sig in _STOP_SIGNALS:
        handler = signal.getsignal(sig)
        if callable(handler):  # SIG_DFL/SIG_IGN kill or ignore in C: nothing to defer there
            previous[sig] = signal.signal(sig, lambda num, frame: held.append(num))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for sig in dict.fromkeys(held):
            signal.raise_signal(sig)


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
        members: Sequence[str] = (),
        pass_fds: Sequence[int] = (),
        stop_signal: int = signal.SIGTERM,
    ) -> ManagedProcess:
        """Start `argv` as `name` (unique here); stderr goes to `log_path` or a temp file;
        `members` names what goes down with it, for error messages; `pass_fds` stay open in
        the child (POSIX); `stop_signal` is what close() sends it first."""
        with self._lock:
            if self._closed:
                raise RuntimeError("ProcessGroup is closed")
            if name in self._procs:
                raise ValueError(f"a process named {name!r} already exists in this group")
            if not self._atexit:
                atexit.register(self.close)
                self._atexit = True
            with _signals_deferred():  # a stop now would leave this child (and log) unowned
                proc = ManagedProcess(
                    name,
                    argv,
                    env=env,
                    cwd=cwd,
                    log_path=log_path,
                    members=members,
                    pass_fds=pass_fds,
                    stop_signal=stop_signal,
                )
                self._procs[name] = proc
            return proc

    @property
    def processes(self) -> list[ManagedProcess]:
        return list(self._procs.values())

    def __getitem__(self, name: str) -> ManagedProcess:
        return self._procs[name]

    def close(self) -> None:
        """Each child group its stop signal (SIGTERM unless spawned with another), wait up to
        terminate_timeout, then SIGKILL. Idempotent.

        A KeyboardInterrupt while waiting skips straight to SIGKILL, then propagates.
        """
        self._closed = True
        procs = [p for p in self._procs.values() if p.returncode is None]
        try:
            for p in procs:
                p.send_signal(p.stop_signal)
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


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a child starts with: the few variables of ours it needs, plus `extra`."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key.upper() in _KEPT_VARIABLES or key.upper().startswith(_KEPT_PREFIXES)
    }
    for name in _PER_CHILD:
        env.pop(name, None)
    return {**env, **(extra or {})}


def module_argv(module: str, args: Sequence[str], root: str | None = None) -> list[str]:
    """`python -I -m MODULE ARGS` with this interpreter, isolated (`-I`: no working directory,
    user site or PYTHON* variables on its path). `root`, when meshlab runs from a source tree
    rather than an install (`source_root()`), goes first on the path, passed explicitly
    instead of through an environment variable."""
    if root is None:
        return [sys.executable, "-I", "-m", module, *args]
    return [sys.executable, "-I", "-c", _FROM_SOURCE.format(module=module), root, *args]


# `python -I -c _FROM_SOURCE ROOT ARGS...`: like `-m`, with ROOT first on sys.path
_FROM_SOURCE = (
    "import runpy, sys; sys.path.insert(0, sys.argv.pop(1)); "
    "runpy.run_module({module!r}, run_name='__main__', alter_sys=True)"
)


def source_root() -> str | None:
    """The folder holding the meshlab package when it is not an installed one, else None."""
    import site

    root = str(Path(__file__).resolve().parents[3])
    site_dirs = [*site.getsitepackages(), site.getusersitepackages()]
    if root in {str(Path(d).resolve()) for d in site_dirs}:
        return None  # installed: an isolated interpreter finds it in site-packages
    return root

"""`python bench/phases.py OUT.json meshlab-args...`: the `meshlab` CLI with a clock on its
phases, for bench/run.py's process_wall breakdown.

meshlab has no timing option, so this wrapper times it from outside: it stamps the wall clock
(time.time(), comparable with the parent's) when the interpreter reaches it, once the backend
is made (so "import" holds the CLI's imports, the processes a run starts ahead where it does,
and the pipeline's imports), around `prepare`, at the embedded backend's deployment (entered,
yielded, left) and when `main` returns, and writes them to OUT.json at exit, with the CPU
seconds each process of the run spent (`cpu`: the run's own, Envoy's and the stand-in
hosts' read as the run stops them, the rest of its children's, such as the CA, after). The
parent adds the spawn and exit times. Nothing is imported ahead of the run: the pipeline and
the embedded backend are clocked as the run imports them (where a checkout has no
`get_backend` hook point, they are imported first, as before).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

STAMPS: dict[str, float] = {"started": time.time()}
CPU: dict[str, float] = {}  # CPU seconds (user + system) by process role


def _stamp(name: str) -> None:
    STAMPS.setdefault(name, time.time())  # the first deployment and check only


def _clock(pipeline: Any, backend: Any) -> None:
    """Wrap `prepare` and the embedded backend's `deploy` with stamps."""
    prepare = pipeline.prepare

    def timed_prepare(*a: Any, **k: Any) -> Any:
        _stamp("prepare")
        try:
            return prepare(*a, **k)
        finally:
            _stamp("prepared")

    deploy = backend.EmbeddedBackend.deploy

    @contextmanager
    def timed_deploy(self: Any, lab: Any) -> Iterator[Any]:
        _stamp("deploy")
        with deploy(self, lab) as mesh:
            _stamp("deployed")
            try:
                yield mesh
            finally:
                _stamp("checked")
        _stamp("torn_down")

    pipeline.prepare = timed_prepare
    backend.EmbeddedBackend.deploy = timed_deploy


def _count_cpu() -> None:
    """Read each live child's CPU time as the run stops its processes (ProcessGroup.close):
    Envoy and the stand-in hosts by name; whatever ended before (the CA) is counted at exit
    from this process's reaped children, less what was read here."""
    try:
        from meshlab.backends.embedded import processes
    except ImportError:
        return
    close = processes.ProcessGroup.close

    def counted_close(self: Any) -> None:
        import psutil

        for child in self.processes:
            if child.name == "Envoy":
                role = "envoy"
            elif child.name.startswith("stand-in"):
                role = "hosts"
            else:
                continue
            try:
                used = psutil.Process(child.pid).cpu_times()
            except psutil.Error:
                continue
            CPU[role] = CPU.get(role, 0.0) + used.user + used.system
        close(self)

    processes.ProcessGroup.close = counted_close


def _total_cpu() -> None:
    import resource

    me = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU["main"] = me.ru_utime + me.ru_stime
    reaped = children.ru_utime + children.ru_stime
    CPU["others"] = max(reaped - CPU.get("envoy", 0.0) - CPU.get("hosts", 0.0), 0.0)


def main() -> None:
    out, args = sys.argv[1], sys.argv[2:]
    _count_cpu()
    from meshlab import cli
    from meshlab.backends import registry

    if "warm_start" in vars(registry):  # the run starts processes before its imports
        get_backend = registry.get_backend

        def clocked_backend(*a: Any, **k: Any) -> Any:
            made = get_backend(*a, **k)
            from meshlab import pipeline  # the run imports it next, before `prepare`
            from meshlab.backends.embedded import backend

            _clock(pipeline, backend)
            _stamp("imported")
            return made

        registry.get_backend = clocked_backend
    else:
        from meshlab import pipeline
        from meshlab.backends.embedded import backend

        _stamp("imported")
        _clock(pipeline, backend)
    sys.argv = ["meshlab", *args]
    try:
        cli.main(None)
    except SystemExit as done:
        STAMPS["exit_code"] = float(done.code if isinstance(done.code, int) else 0)
    finally:
        _stamp("returned")
        _total_cpu()
        with open(out, "w", encoding="utf-8") as f:
            json.dump({**STAMPS, "cpu": CPU}, f)


if __name__ == "__main__":
    main()

"""Stand-in pods on a few host processes: spread them, start the hosts, read their ports.

A process per pod cost ~35 ms and ~12 MB each (a 200-pod lab: ~18 s and ~4 GB); a host
(`standins/host.py`) costs that once for all its pods, each pod adding well under a
millisecond (figures in docs/reference/backends.md). Pods are dealt round-robin, so a
Deployment's pods land on different hosts.

What "a pod crashes" means now: the host is the unit that can die (killed, out of memory, a
crash of the interpreter); every pod on it goes down with it, as the pods of a failed node do,
and the error names them all (`ManagedProcess.members`, which the watchdog prints). A
behaviour's exception stays that one pod's HTTP 500, and a hung behaviour holds up only its
own connection (a thread per connection): neither touches the host's other pods.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, TypedDict, Unpack

from meshlab.backends.embedded.egress import EGRESS_ENV
from meshlab.backends.embedded.processes import (
    ManagedProcess,
    ProcessGroup,
    child_env,
    module_argv,
    source_root,
)
from meshlab.backends.embedded.standins import PodSpec
from meshlab.backends.embedded.standins.pods import HOST, LISTEN_BACKLOG, pod_record

__all__ = [
    "PODS_PER_HOST",
    "StandinLaunch",
    "check_ready",
    "host_argv",
    "host_name",
    "source_root",
    "spread",
    "start_standins",
    "with_egress",
]

# A host costs ~35 ms of interpreter start and imports, a pod in it well under 1 ms: a new
# host per PODS_PER_HOST pods, and no more hosts than cores (more only add start-up CPU;
# measured with bench/run.py many_pods, figures in docs/reference/backends.md)
PODS_PER_HOST = 64
MAX_HOSTS = max(os.cpu_count() or 1, 1)
STANDIN_MODULE = "meshlab.backends.embedded.standins"


def host_argv(spec: Path | str, source_root: str | None = None) -> list[str]:
    """The command line that runs a stand-in host for the pods in `spec` (a file, or "-":
    one line on stdin) with this interpreter, isolated (`module_argv`)."""
    return module_argv(STANDIN_MODULE, ["--spec", str(spec)], source_root)


def spread(pods: Sequence[PodSpec], per_host: int, max_hosts: int) -> list[list[PodSpec]]:
    """Pods dealt round-robin over ceil(n / per_host) hosts (at most `max_hosts`): a
    Deployment's pods (adjacent in the registry) land on different hosts, so its load is
    shared and one host's death takes down only part of it, as a node failure would."""
    hosts = min(max(1, -(-len(pods) // max(per_host, 1))), max(max_hosts, 1))
    return [list(pods[i::hosts]) for i in range(min(hosts, len(pods)))]


class LaunchOptions(TypedDict, total=False):
    """Where the hosts log and run, which pods have a sidecar, how pods are spread."""

    log_dir: str | Path | None
    cwd: str | Path | None
    egress: Mapping[str, Path] | None
    per_host: int | None
    max_hosts: int | None


def start_standins(
    group: ProcessGroup,
    pods: Sequence[PodSpec],
    timeout: float = 20.0,
    **options: Unpack[LaunchOptions],
) -> dict[str, dict[int, int]]:
    """Start the pods on a few stand-in hosts (`spread`: `per_host` pods to a host, at most
    `max_hosts`; defaults PODS_PER_HOST, MAX_HOSTS), all at once; wait for every ready line.

    Returns pod name → {containerPort: local port}. Each host's stderr goes to
    `log_dir/standins-<n>.log` (kept) or to a temp file (removed on close); each runs in
    `cwd` (default: the temp folder), never where meshlab was started. A pod named in
    `egress` has a sidecar: its stand-in reads that file to call out (its spec's `egress`).
    On failure raises BackendError; hosts already started stay in `group`, whose close() ends
    them.
    """
    return StandinLaunch(group, pods, timeout, **options).wait()


class StandinLaunch:
    """`start_standins` in two halves: the hosts start at construction, on listening sockets
    bound here (POSIX) and inherited, so `addresses` is known at once and Envoy can start
    while the hosts import and print their ready lines; `wait()` then reads those lines.
    (Where sockets cannot be passed on, each host binds its own and `addresses` is None
    until `wait()`.)"""

    def __init__(
        self,
        group: ProcessGroup,
        pods: Sequence[PodSpec],
        timeout: float = 20.0,
        **options: Unpack[LaunchOptions],
    ) -> None:
        log_dir, cwd = options.get("log_dir"), options.get("cwd")
        egress = options.get("egress")
        per_host, max_hosts = options.get("per_host"), options.get("max_hosts")
        if dupes := sorted(n for n, k in Counter(p.name for p in pods).items() if k > 1):
            raise ValueError(f"duplicate pod names: {', '.join(dupes)}")
        root = source_root()
        env = child_env()
        env.pop(EGRESS_ENV, None)  # a sidecar is per pod: never one inherited from our env
        hosts = spread(
            with_egress(pods, egress),
            PODS_PER_HOST if per_host is None else per_host,
            MAX_HOSTS if max_hosts is None else max_hosts,
        )
        folder = Path(cwd) if cwd is not None else Path(tempfile.gettempdir())
        self._specs: list[Path] = []
        self._started: list[tuple[list[PodSpec], ManagedProcess]] = []
        self._bound: dict[str, dict[int, int]] | None = {} if PASS_SOCKETS else None
        self._deadline = time.monotonic() + timeout
        self._ready: dict[str, dict[int, int]] | None = None
        try:
            for n, members in enumerate(hosts, 1):
                with _listeners(members) as sockets:
                    fds = {p: {cp: s.fileno() for cp, s in ss.items()} for p, ss in sockets.items()}
                    spec = _write_spec(folder, members, fds)
                    self._specs.append(spec)
                    log = Path(log_dir, f"standins-{n}.log") if log_dir is not None else None
                    name = host_name(n, len(hosts), members, {p.name for p in group.processes})
                    shown = [f"{p.namespace}/{p.name}" for p in members]
                    proc = group.spawn(
                        name,
                        host_argv(spec, root),
                        env=env,
                        cwd=cwd,
                        log_path=log,
                        members=shown,
                        pass_fds=[fd for ports in fds.values() for fd in ports.values()],
                    )
                    if self._bound is not None:
                        self._bound.update(
                            {
                                p: {cp: s.getsockname()[1] for cp, s in ss.items()}
                                for p, ss in sockets.items()
                            }
                        )
                self._started.append((members, proc))
        except BaseException:
            self._drop_specs()
            raise

    @property
    def addresses(self) -> dict[str, dict[int, int]] | None:
        """Pod name → {containerPort: local port}, before the hosts are ready (None where
        sockets cannot be passed on: then from `wait()`)."""
        return self._bound

    def wait(self) -> dict[str, dict[int, int]]:
        """Every host's ready line: pod name → {containerPort: local port}; BackendError if a
        host fails, or answers with ports other than the ones bound for it. Once read, the
        same answer again."""
        if self._ready is not None:
            return self._ready
        try:
            result: dict[str, dict[int, int]] = {}
            for members, proc in self._started:
                line = proc.read_json_line(max(self._deadline - time.monotonic(), 0.0))
                ready = check_ready(members, proc, line)
                if self._bound is not None and any(
                    ready[p.name] != self._bound[p.name] for p in members
                ):
                    raise proc.failure(f"serves other ports than bound for it: {line}"[:300])
                result.update(ready)
            self._ready = result
            return result
        finally:  # every host read its spec before its ready line (or failed)
            self._drop_specs()

    def _drop_specs(self) -> None:
        for spec in self._specs:
            spec.unlink(missing_ok=True)


# POSIX passes listening sockets on to a child (subprocess's pass_fds); Windows does not
PASS_SOCKETS = sys.platform != "win32"


@contextmanager
def _listeners(members: Sequence[PodSpec]) -> Iterator[dict[str, dict[int, socket.socket]]]:
    """A listening socket on 127.0.0.1:<ephemeral> per pod port, closed here once the host
    has its copies (none where sockets cannot be passed on)."""
    sockets: dict[str, dict[int, socket.socket]] = {}
    try:
        if PASS_SOCKETS:
            for pod in members:
                ports = sockets.setdefault(pod.name, {})
                for cp in pod.container_ports:
                    ports[cp] = socket.create_server((HOST, 0), backlog=LISTEN_BACKLOG)
        yield sockets
    finally:
        for ports in sockets.values():
            for s in ports.values():
                s.close()


def with_egress(pods: Sequence[PodSpec], egress: Mapping[str, Path] | None) -> list[PodSpec]:
    """The pods, each with its egress file when it has a sidecar (`egress` names those)."""
    paths = egress or {}
    return [replace(p, egress=_egress(paths.get(p.name))) for p in pods]


def _egress(path: Path | None) -> str | None:
    return None if path is None else str(path)


def host_name(n: int, hosts: int, members: Sequence[PodSpec], taken: set[str]) -> str:
    """`stand-in host 2/3 (67 pods)`, or the pod's own name for a host of one; unique in the
    group (a second start in the same group numbers its hosts on)."""
    if len(members) == 1:
        return f"stand-in {members[0].namespace}/{members[0].name}"
    name = f"stand-in host {n}/{hosts} ({len(members)} pods)"
    again = 2
    while name in taken:
        name, again = f"stand-in host {n}/{hosts} #{again} ({len(members)} pods)", again + 1
    return name


def _write_spec(
    folder: Path, members: Sequence[PodSpec], listeners: Mapping[str, Mapping[int, int]]
) -> Path:
    fd, name = tempfile.mkstemp(prefix="meshlab-standins-", suffix=".json", dir=folder)
    spec: dict[str, Any] = {"pods": [pod_record(p) for p in members]}
    if listeners:
        spec["listeners"] = {
            p: {str(cp): n for cp, n in fds.items()} for p, fds in listeners.items()
        }
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(spec, f)
    return Path(name)


def check_ready(
    members: Sequence[PodSpec], proc: ManagedProcess, line: dict[str, Any]
) -> dict[str, dict[int, int]]:
    """Each pod's ports from a host's ready line, which must name exactly its pods and ports."""
    pods = line.get("pods")
    result: dict[str, dict[int, int]] = {}
    if line.get("ready") is True and isinstance(pods, dict) and len(pods) == len(members):
        for pod in members:
            ports = pods.get(pod.name)
            if not isinstance(ports, dict):
                break
            try:
                mapping = {int(k): int(v) for k, v in ports.items()}
            except (TypeError, ValueError):
                break
            if set(mapping) != set(pod.container_ports):
                break
            result[pod.name] = mapping
        else:
            return result
    raise proc.failure(f"sent an unexpected ready line: {json.dumps(line)[:300]}")

"""A stand-in host: one process serving many pods, each on its own 127.0.0.1 listener(s).

A process per pod cost ~35 ms and ~12 MB each, so a 200-pod lab took seconds and gigabytes;
a host costs that once for all its pods. Each pod keeps what made it a pod: its own listening
sockets, its own PodSpec (name, labels, image, behaviour) and its own egress file (so its
calls leave through its own sidecar). The supervisor (`processes.py`) spreads a lab's pods over
a few hosts and names a dead host's pods when it dies.

The spec file (`--spec`) is JSON written by the supervisor (`--spec -`: the same JSON as one
line on stdin, for a host started before the lab was read):
`{"pods": [{"name", "namespace", "image", "labels": {..}, "ports": [8080], "egress": path|null}]}`.
The host binds every pod's ports, prints ONE ready line naming each pod's ports
(`{"ready": true, "pods": {"<pod>": {"8080": 40123}}}`), then serves until SIGTERM, SIGINT,
SIGHUP or EOF on stdin (the supervisor's lifeline), which end the host and all its pods.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import FrameType
from typing import Any, TextIO

from meshlab.backends.embedded.standins.pods import HOST, Behaviour, PodSpec, pod_record
from meshlab.backends.embedded.standins.server import Acceptor, Standin

__all__ = [
    "load_listeners",
    "load_spec",
    "parse_spec",
    "pod_record",
    "read_spec_line",
    "ready_line",
    "run",
]

# a host holds a listener per pod port plus the connections Envoy and the pods' own egress
# pools open: more than the usual soft limit of 1024 descriptors in a large lab
WANTED_FILES = 65536


def load_spec(path: str) -> list[PodSpec]:
    """The pods a spec file lists; ValueError saying which entry is wrong and why."""
    with open(path, encoding="utf-8") as f:
        return parse_spec(json.load(f))


def read_spec_line(fd: int) -> list[PodSpec] | None:
    """The pods of a spec sent as one JSON line on `fd` (a host started before the lab was
    read waits for it there); None at EOF before a whole line (the supervisor let it go).
    os.read, byte by byte: what follows the line is the lifeline's, never buffered here."""
    data = bytearray()
    while not data.endswith(b"\n"):
        chunk = os.read(fd, 1)
        if not chunk:
            return None
        data += chunk
    return parse_spec(json.loads(data))


def parse_spec(data: Any) -> list[PodSpec]:
    """The pods of a decoded spec; ValueError saying which entry is wrong and why."""
    records = data.get("pods") if isinstance(data, dict) else None
    if not isinstance(records, list) or not records:
        raise ValueError('expected {"pods": [{"name": ..., "image": ..., "ports": [...]}, ...]}')
    pods = [_pod(i, r) for i, r in enumerate(records)]
    names = [p.name for p in pods]
    if dupes := sorted({n for n in names if names.count(n) > 1}):
        raise ValueError(f"duplicate pod names: {', '.join(dupes)}")
    return pods


def load_listeners(path: str, pods: Sequence[PodSpec]) -> dict[str, dict[int, int]]:
    """The listening sockets the supervisor bound for the pods (`"listeners": {pod:
    {containerPort: fd}}` in the spec; none: each pod binds its own); ValueError if they do
    not match the pods' ports."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    listeners = data.get("listeners", {}) if isinstance(data, dict) else None
    if not isinstance(listeners, dict):
        raise ValueError("listeners must map pod names to {containerPort: fd}")
    out: dict[str, dict[int, int]] = {}
    ports = {p.name: set(p.container_ports) for p in pods}
    for name, fds in listeners.items():
        if name not in ports or not isinstance(fds, dict):
            raise ValueError(f"listeners[{name!r}]: not a pod of this spec")
        try:
            mapping = {int(cp): int(fd) for cp, fd in fds.items()}
        except (TypeError, ValueError):
            raise ValueError(f"listeners[{name!r}]: expected {{containerPort: fd}}") from None
        if set(mapping) != ports[name]:
            raise ValueError(f"listeners[{name!r}]: ports {sorted(mapping)} != {ports[name]}")
        out[name] = mapping
    return out


def _pod(index: int, record: Any) -> PodSpec:
    where = f"pods[{index}]"
    if not isinstance(record, dict):
        raise ValueError(f"{where}: expected an object")
    name, image = record.get("name"), record.get("image")
    namespace = record.get("namespace", "default")
    labels, ports = record.get("labels", {}), record.get("ports", [])
    egress = record.get("egress")
    if not (isinstance(name, str) and isinstance(image, str) and isinstance(namespace, str)):
        raise ValueError(f"{where}: name, namespace and image must be strings")
    if not isinstance(labels, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
    ):
        raise ValueError(f"{where}: labels must map strings to strings")
    if not isinstance(ports, list) or not all(
        isinstance(p, int) and not isinstance(p, bool) for p in ports
    ):
        raise ValueError(f"{where}: ports must be a list of integers")
    if egress is not None and not isinstance(egress, str):
        raise ValueError(f"{where}: egress must be a path or null")
    return PodSpec(name, namespace, image, labels, tuple(ports), egress)


def ready_line(ports: Mapping[str, Mapping[int, int]]) -> str:
    """The one stdout line the supervisor waits for: pod → {containerPort: local port}."""
    pods = {pod: {str(cp): p for cp, p in mapping.items()} for pod, mapping in ports.items()}
    return json.dumps({"ready": True, "pods": pods}, separators=(",", ":"))


def _raise_file_limit() -> None:
    with contextlib.suppress(ImportError, ValueError, OSError):
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        wanted = WANTED_FILES if hard == resource.RLIM_INFINITY else min(hard, WANTED_FILES)
        if soft != resource.RLIM_INFINITY and soft < wanted:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def _watch_lifeline(fd: int, wake: socket.socket) -> None:
    """EOF on stdin means the supervisor is gone. os.read, not sys.stdin: no buffer lock that
    interpreter shutdown might need while this daemon thread sits in read()."""
    with contextlib.suppress(OSError):
        while os.read(fd, 65536):
            pass
    with contextlib.suppress(OSError):
        wake.send(b"L")


@contextmanager
def _signals_to(wake: socket.socket) -> Iterator[None]:
    """Make SIGTERM/SIGINT/SIGHUP write a byte to `wake` instead of killing or raising.

    The kernel may deliver a signal to any thread; Python then runs its handler only when the
    main thread next runs bytecode, which a blocked wait never does. The wakeup fd is written
    by the C-level handler whichever thread took the signal, so the main thread's recv() on
    the other end of the socketpair always returns.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def ignore(signum: int, frame: FrameType | None) -> None:
        """The wakeup byte does the work; the handler only stops the default action."""

    sigs = [getattr(signal, n) for n in ("SIGTERM", "SIGINT", "SIGHUP") if hasattr(signal, n)]
    previous_fd = signal.set_wakeup_fd(wake.fileno(), warn_on_full_buffer=False)
    previous = {s: signal.signal(s, ignore) for s in sigs}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        signal.set_wakeup_fd(previous_fd)


def run(
    pods: Sequence[tuple[PodSpec, Behaviour]],
    *,
    lifeline_fd: int | None,
    out: TextIO,
    listeners: Mapping[str, Mapping[int, int]] | None = None,
) -> int:
    """Bind every pod's ports (or take the listening sockets `listeners` names), print the
    ready line, serve until a stop signal or EOF."""
    given = listeners or {}
    _raise_file_limit()
    waiter, wake = socket.socketpair()
    wake.setblocking(False)
    standins: list[Standin] = []
    acceptor: Acceptor | None = None
    with waiter, wake, _signals_to(wake):
        try:
            for pod, behaviour in pods:
                try:
                    standins.append(Standin(pod, behaviour, fds=given.get(pod.name)))
                except OSError as exc:
                    print(f"stand-in {pod.name}: cannot listen on {HOST}: {exc}", file=sys.stderr)
                    return 1
            acceptor = Acceptor(s for st in standins for s in st.servers.values())
            acceptor.start()
            try:
                out.write(ready_line({st.pod.name: st.ports for st in standins}) + "\n")
                out.flush()
            except (BrokenPipeError, ValueError):
                return 1  # nobody is listening for the ready line: nothing to serve
            if lifeline_fd is not None:
                args = (lifeline_fd, wake)
                threading.Thread(target=_watch_lifeline, args=args, daemon=True).start()
            waiter.recv(1)
        finally:
            if acceptor is not None:
                acceptor.close(wait=False)
            for standin in standins:
                standin.close(graceful=False)
    return 0

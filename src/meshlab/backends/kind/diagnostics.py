"""What helps when a run on a real cluster goes wrong: pod states, events, the probe
sidecar's routes for the lab's services. Best effort: a part that cannot be read says why."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from meshlab.backends.kind.apply import pod_state
from meshlab.backends.kind.kube import Kube, Obj

MAX_EVENTS = 25


def collect(kube: Kube, namespace: str, routes: Callable[[], str] | None) -> dict[str, str]:
    """{"pods": ..., "events": ..., "routes": ...}, each a few lines of text; `routes` reads
    the probe sidecar's routes (None: no probe pod yet)."""
    parts: dict[str, Callable[[], str]] = {
        "pods": lambda: render_pods(kube.list("v1", "Pod", namespace)),
        "events": lambda: render_events(kube.list("v1", "Event", namespace)),
    }
    if routes is not None:
        parts["routes"] = routes
    out = {}
    for key, read in parts.items():
        try:
            out[key] = read()
        except Exception as exc:  # diagnostics must never hide the failure they explain
            out[key] = f"(could not read {key}: {exc})"
    return out


def render_pods(pods: Iterable[Obj]) -> str:
    lines = []
    for pod in sorted(pods, key=lambda p: str((p.get("metadata") or {}).get("name"))):
        meta, status = pod.get("metadata") or {}, pod.get("status") or {}
        containers = status.get("containerStatuses") or []
        ready = sum(1 for c in containers if c.get("ready"))
        restarts = sum(int(c.get("restartCount", 0)) for c in containers)
        _, why = pod_state(pod)
        lines.append(
            f"{meta.get('name')}: {ready}/{len(containers)} ready, {why}, "
            f"{restarts} restarts, IP {status.get('podIP', '-')}"
        )
    return "\n".join(lines) or "(no pods)"


def _event_time(event: Mapping[str, Any]) -> str:
    return str(
        event.get("lastTimestamp")
        or event.get("eventTime")
        or (event.get("metadata") or {}).get("creationTimestamp")
        or ""
    )


def render_events(events: Iterable[Obj]) -> str:
    ordered = sorted(events, key=_event_time)[-MAX_EVENTS:]
    lines = []
    for event in ordered:
        involved = event.get("involvedObject") or {}
        count = int(event.get("count") or 1)
        lines.append(
            f"{_event_time(event)} {event.get('type', '')} {event.get('reason', '')} "
            f"{involved.get('kind', '')}/{involved.get('name', '')}: "
            f"{str(event.get('message', '')).strip()}" + (f" (x{count})" if count > 1 else "")
        )
    return "\n".join(lines) or "(no events)"


def render(diagnostics: Mapping[str, str]) -> str:
    """For a terminal or a failure message: a titled block per part."""
    blocks = []
    for key, text in diagnostics.items():
        body = "\n".join(f"    {line}" for line in text.splitlines())
        blocks.append(f"  {key}:\n{body}")
    return "cluster diagnostics:\n" + "\n".join(blocks)

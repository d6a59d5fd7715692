"""The sidecars' access logs: Istio's default text format (or its JSON one) parsed back into
entries, so each outcome learns the pods that served it and the calls behind it.

Every proxy logs each HTTP request with its `x-request-id`, which the probe sets and the
course's tag-6 images pass on to their own calls, so one id ties a request's lines together
across pods (see chain.py for how they become hops).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from meshlab.backends.kind.kube import Kube
from meshlab.records import dataclass

PROBE_POD = "meshlab-probe"
SIDECAR = "istio-proxy"
TELEMETRY_NAME = "meshlab-access-log"


@dataclass(frozen=True)
class AccessEntry:
    """One request as one proxy logged it. `inbound` lines were written by the sidecar of
    the pod that served the call; the others by the caller's proxy (sidecar or gateway)."""

    request_id: str
    response_code: int | None
    response_flags: str
    upstream_host: str | None
    upstream_cluster: str | None
    method: str = ""
    path: str = ""
    authority: str = ""
    user_agent: str = ""
    downstream_remote: str | None = None  # the caller's address, as this proxy saw it
    start: str = ""  # START_TIME, ISO 8601 in UTC: sorts as text

    @property
    def inbound(self) -> bool:
        """Written by the serving pod's sidecar: Istio names inbound clusters `inbound|...`
        (pilot/pkg/model/service.go, BuildInboundSubsetKey; InboundPassthroughCluster*)."""
        cluster = self.upstream_cluster or ""
        return cluster.startswith("inbound|") or cluster.startswith("InboundPassthroughCluster")


# Istio's default TEXT format (pilot/pkg/model/telemetry_logging.go, EnvoyTextLogFormat):
# [START] "METHOD PATH PROTO" CODE FLAGS DETAILS TERMINATION "FAILURE" RX TX DURATION
# UPSTREAM_TIME "XFF" "USER-AGENT" "REQUEST-ID" "AUTHORITY" "UPSTREAM_HOST" UPSTREAM_CLUSTER
# UPSTREAM_LOCAL DOWNSTREAM_LOCAL DOWNSTREAM_REMOTE SNI ROUTE
_TEXT_LINE = re.compile(
    r'^\[(?P<start>[^\]]*)\] "(?P<method>\S*) ?(?P<path>\S*)[^"]*" (?P<code>\d+) (?P<flags>\S+) '
    r'\S+ \S+ "[^"]*" \S+ \S+ \S+ \S+ "[^"]*" "(?P<ua>[^"]*)" "(?P<rid>[^"]*)" '
    r'"(?P<authority>[^"]*)" "(?P<host>[^"]*)" (?P<cluster>\S+)'
    r"(?: \S+ \S+ (?P<remote>\S+))?"
)


def _present(value: Any) -> str | None:
    text = None if value is None else str(value)
    return None if text in (None, "", "-") else text


def _code(value: Any) -> int | None:
    """Envoy logs 0 when no response was sent (the caller went away first)."""
    text = _present(value)
    return int(text) if text and text.isdigit() and int(text) > 0 else None


def parse_access_log_line(line: str) -> AccessEntry | None:
    """One access-log line in Istio's JSON (accessLogEncoding: JSON; EnvoyJSONLogFormatIstio)
    or default TEXT format; None for anything else the sidecar prints (TCP lines too)."""
    line = line.strip()
    if line.startswith("{"):
        try:
            data = json.loads(line)
        except ValueError:
            return None
        if not isinstance(data, dict) or not _present(data.get("request_id")):
            return None
        return AccessEntry(
            str(data["request_id"]),
            _code(data.get("response_code")),
            _present(data.get("response_flags")) or "-",
            _present(data.get("upstream_host")),
            _present(data.get("upstream_cluster")),
            method=_present(data.get("method")) or "",
            path=_present(data.get("path")) or "",
            authority=_present(data.get("authority")) or "",
            user_agent=_present(data.get("user_agent")) or "",
            downstream_remote=_present(data.get("downstream_remote_address")),
            start=_present(data.get("start_time")) or "",
        )
    match = _TEXT_LINE.match(line)
    if match is None or not _present(match["rid"]):
        return None
    return AccessEntry(
        match["rid"],
        _code(match["code"]),
        match["flags"],
        _present(match["host"]),
        _present(match["cluster"]),
        method=_present(match["method"]) or "",
        path=_present(match["path"]) or "",
        authority=_present(match["authority"]) or "",
        user_agent=_present(match["ua"]) or "",
        downstream_remote=_present(match["remote"]),
        start=match["start"],
    )


def parse_access_log(text: str) -> list[AccessEntry]:
    """Every HTTP access-log line of one proxy's output, each once (a proxy that both the
    mesh config and a Telemetry object tell to log may print a line twice)."""
    seen: set[str] = set()
    entries = []
    for raw in text.splitlines():
        entry = parse_access_log_line(raw)
        if entry is not None and raw not in seen:
            seen.add(raw)
            entries.append(entry)
    return entries


@dataclass(frozen=True)
class LogSource:
    """One proxy whose log meshlab reads: a pod's sidecar, or a gateway pod."""

    namespace: str
    pod: str
    container: str = SIDECAR


def read_logs(
    kube: Kube, sources: Iterable[LogSource], since_seconds: int
) -> Mapping[LogSource, list[AccessEntry]]:
    """The access-log entries each proxy wrote in the last `since_seconds`."""
    return {
        source: parse_access_log(
            kube.logs(source.namespace, source.pod, source.container, since_seconds)
        )
        for source in sources
    }

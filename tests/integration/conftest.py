"""What the real-Envoy integration tests share: the embedded backend, once per module."""

from __future__ import annotations

import pytest

from meshlab.backends.embedded.backend import EmbeddedBackend
from meshlab.backends.embedded.options import EmbeddedOptions
from meshlab.errors import BackendUnavailable


@pytest.fixture(scope="module")
def backend(request: pytest.FixtureRequest) -> EmbeddedBackend:
    embedded = EmbeddedBackend(EmbeddedOptions(request.config.getoption("envoy", default=None)))
    try:
        embedded.binary  # noqa: B018 (resolves the binary now, to skip cleanly)
    except BackendUnavailable as exc:
        pytest.skip(str(exc))
    return embedded

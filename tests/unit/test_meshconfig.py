"""The `istio` ConfigMap's outboundTrafficPolicy read as istiod decodes it (mesh/meshconfig.py):
a written policy replaces the default whole, and its enum's zero value is REGISTRY_ONLY."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshlab.load.manifests import load_manifests
from meshlab.mesh.meshconfig import MeshSettings, mesh_settings
from staff_rules import mesh_config


def settings(tmp_path: Path, mesh: str) -> MeshSettings:
    file = tmp_path / "mesh-config.yaml"
    file.write_text(mesh_config(mesh))
    return mesh_settings(load_manifests([file], "default"))


@pytest.mark.parametrize(
    ("mesh", "mode"),
    [
        ("rootNamespace: istio-system", "ALLOW_ANY"),  # no policy: DefaultMeshConfig's
        ("outboundTrafficPolicy:", "ALLOW_ANY"),  # null: jsonpb skips the field
        ("outboundTrafficPolicy: {mode: REGISTRY_ONLY}", "REGISTRY_ONLY"),
        ("outboundTrafficPolicy: {mode: ALLOW_ANY}", "ALLOW_ANY"),
        ("outboundTrafficPolicy: {}", "REGISTRY_ONLY"),  # a new message: mode 0
        ("outboundTrafficPolicy: {mode: null}", "REGISTRY_ONLY"),
    ],
)
def test_the_mode_istiod_would_use(tmp_path: Path, mesh: str, mode: str) -> None:
    found = settings(tmp_path, mesh)
    assert found.problem is None
    assert found.outbound_mode == mode


@pytest.mark.parametrize(
    ("mesh", "problem"),
    [
        ("outboundTrafficPolicy: REGISTRY_ONLY", "outboundTrafficPolicy is not a mapping"),
        ("outboundTrafficPolicy: {mode: registry_only}", "'registry_only' is neither"),
    ],
)
def test_a_policy_istiod_cannot_decode_keeps_the_default(
    tmp_path: Path, mesh: str, problem: str
) -> None:
    found = settings(tmp_path, mesh)
    assert found.outbound_mode == "ALLOW_ANY"
    assert found.problem is not None
    assert problem in found.problem
    assert "istiod ignores such a mesh config" in found.problem

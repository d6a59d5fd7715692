"""The whole mesh's Envoy config with mTLS, pinned by a golden file, and Envoy's verdict on
it. Certificate paths are relative (`certs/...`, Envoy resolves them from its working
directory), so the golden file does not depend on the run's temporary directory; regenerate
with `MESHLAB_UPDATE_GOLDEN=1` and review the diff."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from meshlab.backends.embedded.certs import Identity, MeshCerts, write_mesh_certs
from meshlab.backends.embedded.envoy.binary import EnvoyBinary, find_envoy
from meshlab.backends.embedded.envoy.bootstrap import placeholder_addresses, render_mesh
from meshlab.backends.embedded.envoy.mtls import identities, mesh_tls
from meshlab.backends.embedded.envoy.process import validate_bootstrap
from meshlab.errors import BackendUnavailable
from meshlab.load.manifests import load_manifests
from meshlab.mesh.plan import build_plan
from meshlab.mesh.proxies import build_proxies

ROOT = Path(__file__).resolve().parents[2]
FILES = [ROOT / "tests/data/mesh/apps.yaml", ROOT / "tests/data/mtls/golden.yaml"]
GOLDEN = ROOT / "tests" / "golden" / "mesh-mtls.json"
UPDATE = os.environ.get("MESHLAB_UPDATE_GOLDEN") == "1"


def render(workdir: Path) -> str:
    """The config, with certificates written under workdir/certs but named relatively."""
    resources = [r for r in load_manifests(FILES, "default") if r.simulated]
    proxies = build_proxies(resources, build_plan(resources, "default"))
    made = write_mesh_certs(workdir / "certs", identities(proxies)[1])
    relative = MeshCerts(
        made.ca.relative_to(workdir),
        {
            k: Identity(v.spiffe, v.certificate.relative_to(workdir), v.key.relative_to(workdir))
            for k, v in made.identities.items()
        },
    )
    addresses = placeholder_addresses(proxies.client.plan)
    config: dict[str, Any] = render_mesh(
        proxies, addresses, tls=mesh_tls(proxies, resources, relative)
    )
    return json.dumps(config, indent=1, sort_keys=True) + "\n"


def test_mesh_with_mtls_matches_golden(tmp_path: Path) -> None:
    text = render(tmp_path)
    if UPDATE:
        GOLDEN.write_text(text, encoding="utf-8")
    assert GOLDEN.exists(), f"{GOLDEN} is missing: run with MESHLAB_UPDATE_GOLDEN=1"
    assert text == GOLDEN.read_text(encoding="utf-8"), (
        f"{GOLDEN.name} differs; if intended, regenerate with MESHLAB_UPDATE_GOLDEN=1"
    )


@pytest.mark.envoy
def test_envoy_accepts_the_golden_mtls_config(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    try:
        binary: EnvoyBinary = find_envoy(request.config.getoption("envoy", default=None))
    except BackendUnavailable as exc:
        pytest.skip(str(exc))
    render(tmp_path)  # the certificates the golden file names, under tmp_path/certs
    config = tmp_path / "envoy.json"
    config.write_text(GOLDEN.read_text(encoding="utf-8"), encoding="utf-8")
    ok, output = validate_bootstrap(binary, config)
    assert ok, f"envoy --mode validate rejected {GOLDEN.name}:\n{output}"

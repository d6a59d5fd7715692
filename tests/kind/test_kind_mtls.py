"""A lab's mesh-wide PeerAuthentication on the kind backend: applied as the run namespace's
policy (a shared cluster's istio-system is never changed), with the same effect on the lab's
pods."""

from __future__ import annotations

from pathlib import Path

from meshlab.backends.kind.apply import Retarget, lab_objects
from meshlab.load.manifests import load_manifests

RUN = Retarget("default", "meshlab-7-mtls-abc123")
MESH = """
apiVersion: security.istio.io/v1beta1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: STRICT}}
"""


def policies(tmp_path: Path, text: str) -> list[dict[str, object]]:
    manifest = tmp_path / "pa.yaml"
    manifest.write_text(text)
    resources = [r for r in load_manifests([manifest]) if r.simulated]
    return [o for o in lab_objects(resources, RUN) if o["kind"] == "PeerAuthentication"]


def test_a_mesh_wide_policy_becomes_the_run_namespaces(tmp_path: Path) -> None:
    (policy,) = policies(tmp_path, MESH)
    assert policy["metadata"] == {"name": "meshlab-mesh-wide", "namespace": RUN.run_namespace}
    assert policy["spec"] == {"mtls": {"mode": "STRICT"}}


def test_the_labs_namespace_policy_keeps_its_mode_or_inherits(tmp_path: Path) -> None:
    own = "---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\n"
    own += "metadata: {name: ns}\nspec: {mtls: {mode: PERMISSIVE}}\n"
    (policy,) = policies(tmp_path, MESH + own)
    assert policy["spec"] == {"mtls": {"mode": "PERMISSIVE"}}  # the namespace's wins
    unset = own.replace("{mtls: {mode: PERMISSIVE}}", "{}")
    (policy,) = policies(tmp_path, MESH + unset)
    assert policy["spec"] == {"mtls": {"mode": "STRICT"}}  # UNSET inherits the mesh's

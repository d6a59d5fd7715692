"""A course section as a student applies it (the shapes of the course's files, written
here): Istio's install files first, the app, then the rules. meshlab analyzes it with no
false error or warning, and a real mistake still shows."""

from __future__ import annotations

import shutil
from pathlib import Path

from meshlab.analysis import analyze_paths

INSTALL = Path(__file__).parent / "corpus" / "ml0002-install-files"

NAMESPACE = """\
apiVersion: v1
kind: Namespace
metadata:
  name: default
  labels:
    istio-injection: enabled
"""


def _app() -> str:
    parts = []
    for name, port, versions in (
        ("fleetman-webapp", 80, ("original", "experimental")),
        ("fleetman-staff-service", 8080, ("safe", "risky")),
        ("fleetman-position-tracker", 8080, ("v1",)),
    ):
        app = name.removeprefix("fleetman-")
        parts.append(
            f"apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  annotations:\n"
            f"spec:\n  selector:\n    app: {app}\n  ports:\n  - name: http\n"
            f"    port: {port}\n  type: ClusterIP\n"
        )
        for version in versions:
            parts.append(
                f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {app}-{version}\n"
                f"spec:\n  selector:\n    matchLabels:\n      app: {app}\n  replicas: 1\n"
                f"  template:\n    metadata:\n      labels:\n        app: {app}\n"
                f"        version: {version}\n    spec:\n      containers:\n"
                f"      - name: {app}\n        image: richardchesterwood/k8s-fleetman-{app}:6\n"
                f"        env:\n        - name: SPRING_PROFILES_ACTIVE\n"
                f"          value: production-microservice\n        ports:\n"
                f"        - containerPort: {port}\n"
            )
    return "---\n".join(parts)


RULES = """\
apiVersion: networking.istio.io/v1alpha3
kind: Gateway
metadata:
  name: ingress-gateway-configuration
spec:
  selector:
    istio: ingressgateway
  servers:
  - port:
      number: 80
      name: http
      protocol: HTTP
    hosts:
    - "*"
---
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata:
  name: fleetman-webapp
spec:
  hosts:
  - "*"
  gateways:
  - ingress-gateway-configuration
  http:
  - route:
    - destination:
        host: fleetman-webapp
        subset: original
      weight: 90
    - destination:
        host: fleetman-webapp
        subset: experimental
      weight: 10
---
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata:
  name: fleetman-staff-service
spec:
  hosts:
  - fleetman-staff-service
  http:
  - route:
    - destination:
        host: fleetman-staff-service
        subset: safe
      weight: 90
    - destination:
        host: fleetman-staff-service
        subset: risky
      weight: 10
---
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata:
  name: fleetman-webapp
spec:
  host: fleetman-webapp
  subsets:
  - labels:
      version: original
    name: original
  - labels:
      version: experimental
    name: experimental
---
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata:
  name: fleetman-staff-service
spec:
  host: fleetman-staff-service
  subsets:
  - labels:
      version: safe
    name: safe
  - labels:
      version: risky
    name: risky
"""


def section(folder: Path, rules: str = RULES) -> Path:
    for name in ("1-init.yaml", "2-install.yaml", "4-kiali-secret.yaml"):
        shutil.copy(INSTALL / name, folder / name.replace("4-", "3-"))
    (folder / "4-label-default-namespace.yaml").write_bytes(
        NAMESPACE.replace("\n", "\r\n").encode()
    )
    (folder / "5-application-no-istio.yaml").write_text(_app())
    (folder / "6-istio-rules.yaml").write_text(rules)
    return folder


def loud(folder: Path) -> list[str]:
    return [str(d) for d in analyze_paths([folder]).diagnostics if d.level != "info"]


def test_a_section_with_its_install_files_analyzes_without_false_findings(
    tmp_path: Path,
) -> None:
    found = analyze_paths([section(tmp_path)])
    assert not [str(d) for d in found.diagnostics if d.level != "info"]
    listed = {d.message for d in found.diagnostics if d.code == "ML0002"}
    assert "not simulated: CustomResourceDefinition ×2 — part of Istio's install" in listed
    assert len(found.resources) > 25


def test_a_real_mistake_in_such_a_section_still_shows(tmp_path: Path) -> None:
    rules = RULES.replace("  - ingress-gateway-configuration\n", "  - ingress-gateway\n", 1)
    rules = rules.replace(
        "  - fleetman-staff-service\n  http:", "  - fleetman-staf-service\n  http:"
    )
    codes = sorted(line.split()[2] for line in loud(section(tmp_path, rules)))
    assert "IST0101" in codes  # the gateway that does not exist
    assert "ML0111" in codes  # the misspelt host

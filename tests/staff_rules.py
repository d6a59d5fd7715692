"""The staff service's rules as tests write them: a VirtualService and a DestinationRule for
fleetman-staff-service (and the course's ingress Gateway, the install's mesh ConfigMap), each
built from the one part a test varies, so the tests share the rest instead of each spelling
it out."""

from __future__ import annotations

HOST = "fleetman-staff-service"
SUBSETS = """\
  subsets:
  - {name: safe, labels: {version: safe}}
  - {name: risky, labels: {version: risky}}
"""

INGRESS_GATEWAY = """\
apiVersion: networking.istio.io/v1beta1
kind: Gateway
metadata:
  name: ingress-gateway-configuration
spec:
  selector:
    istio: ingressgateway
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*"]
"""


def virtual_service(http: str, api: str = "v1") -> str:
    """The staff VirtualService; `http` is its `http:` list, items at column 2."""
    return (
        f"apiVersion: networking.istio.io/{api}\nkind: VirtualService\n"
        f"metadata:\n  name: {HOST}\nspec:\n  hosts: [{HOST}]\n  http:\n{http}"
    )


def destination_rule(body: str = SUBSETS, api: str = "v1") -> str:
    """The staff DestinationRule; `body` is the rest of its spec after `host`, at column 2."""
    return (
        f"apiVersion: networking.istio.io/{api}\nkind: DestinationRule\n"
        f"metadata:\n  name: {HOST}\nspec:\n  host: {HOST}\n{body}"
    )


def both(http: str, body: str = SUBSETS, api: str = "v1") -> str:
    return virtual_service(http, api) + "---\n" + destination_rule(body, api)


def source_rules(app: str, api: str = "v1") -> str:
    """Requests from pods labelled `app` go to the risky pods; everyone else's to the safe."""
    http = (
        f"  - match:\n    - sourceLabels: {{app: {app}}}\n"
        f"    route:\n    - destination: {{host: {HOST}, subset: risky}}\n"
        f"  - route:\n    - destination: {{host: {HOST}, subset: safe}}\n"
    )
    return both(http, api=api)


def mesh_config(mesh: str) -> str:
    """The install's `istio` ConfigMap in istio-system; `mesh` is its one-line `mesh` text."""
    return (
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: istio, namespace: istio-system}\n"
        f"data:\n  mesh: |-\n    {mesh}\n"
    )

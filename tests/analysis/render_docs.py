"""Regenerate docs/reference/analyzer.md from the catalogue and the corpus (real outputs).

    .venv/bin/python tests/analysis/render_docs.py

test_catalogue.py checks that every code has a section and that the outputs shown are current.
"""
# ruff: noqa: E501

from __future__ import annotations

import os
from pathlib import Path

from test_corpus import CASES, expectations

from meshlab.analysis import analyze_paths
from meshlab.analysis.messages import by_code

os.chdir(Path(__file__).resolve().parents[2])

CORPUS = Path("tests/analysis/corpus").resolve()
CASE_FOR: dict[str, Path] = {}
for case in CASES:
    for code in sorted(expectations(case).expected_codes):
        CASE_FOR.setdefault(code, case)

SUMMARY = {
    "IST0002": "A deprecated field: `fault.delay.percent` (an integer) or `mirrorPercent`.",
    "IST0101": "A reference to something that does not exist: a destination or mirror host that is no Service or ServiceEntry, a port the Service does not have, a subset no DestinationRule defines, a Gateway that is not there, a Gateway selector that matches no pod.",
    "IST0102": "A Namespace in the input without `istio-injection` (or `istio.io/rev`): its pods get no sidecar, so no rule applies to their requests. The course labels `default` in `4-label-default-namespace.yaml`.",
    "IST0103": "A pod that ran (it has a `status`, as `kubectl get pod -o yaml` gives it) in an injected namespace without an `istio-proxy` container. A pod as written is injected at admission, so it is not reported.",
    "IST0106": "An object the API server or Istio's validating webhook would refuse: unknown field, wrong type, weights all 0 or negative, durations under 1ms, subset names that are not DNS-1123 labels, `route` with `redirect`, ...",
    "IST0109": "Two or more VirtualServices bound to the mesh claim the same host in the same `exportTo` scope. Sidecars do not merge them: the oldest wins, the others are ignored for that host.",
    "IST0112": "A destination without `port` to a Service with several ports: Envoy uses the port the request came in on.",
    "IST0116": "Services that select the same Deployment's pods use one port number with different protocols (TCP and UDP).",
    "IST0118": "A Service port whose name (or `appProtocol`) does not say its protocol: Istio sniffs it.",
    "IST0128": "A DestinationRule whose `trafficPolicy.tls` originates TLS (`SIMPLE` or `MUTUAL`) without `caCertificates`: the server's certificate is not verified.",
    "IST0129": "The same for one port, in `portLevelSettings`.",
    "IST0130": "A rule that is never used: a rule after a rule without `match`, a second rule without `match`, or a rule whose matches all appear in earlier rules (Istio's webhook warning).",
    "IST0131": "A match that never applies: the same as an earlier match, or a `uri` inside an earlier, shorter prefix with the same other conditions.",
    "IST0132": "A VirtualService bound to a Gateway none of whose hosts it has (or to a Gateway that does not exist).",
    "IST0133": "Accepted with a warning: `outlierDetection.consecutiveErrors` (deprecated and ignored), a gateway named in the legacy `name.namespace.svc.cluster.local` form.",
    "IST0134": "A ServiceEntry port that is TCP (or has no protocol) while the entry has no `addresses`: with the mesh's default config the sidecar cannot tell its connections apart.",
    "IST0137": "Services that select the same Deployment's pods send different ports to one target port.",
    "IST0145": "Two Gateways with the same selector and port claim overlapping hosts.",
    "IST0162": "A Gateway server port that is neither a port nor a targetPort of the Services in front of the gateway pods.",
    "IST0173": "A DestinationRule subset whose labels select no pod: requests routed to it get 503 UH.",
    "IST0177": "Two ServiceEntries define the same host and port with different protocols (exportTo scopes taken into account).",
    "IST0174": "A DestinationRule whose host is no Service or ServiceEntry.",
    "ML0001": "The input has rules but no Services or no Deployments/Pods, so the analyzers that need them were skipped (istioctl in file mode skips them without a word).",
    "ML0002": "Objects meshlab accepts but neither simulates nor analyses, listed once per kind: Kubernetes' other kinds (RBAC, ConfigMaps, webhooks, PodDisruptionBudgets...), Istio's CRDs and security kinds, custom kinds whose CustomResourceDefinition is in the input, and Istio's own install (istiod, the gateways, the addons: meshlab plays istiod itself). A lab may list the course's install files as a student applies them.",
    "ML0101": "The only destination of a rule has a weight other than 100 (Kiali KIA1104): it gets all the traffic anyway.",
    "ML0102": "One rule names the same host and subset twice (Kiali KIA1105).",
    "ML0103": "A subset no VirtualService route names: it gets no traffic.",
    "ML0104": "A DestinationRule defines subsets of a host no VirtualService routes to: the default route spreads traffic over all pods and the subsets do nothing.",
    "ML0105": "A subset without labels (Kiali KIA0209): it selects every pod of the host.",
    "ML0106": "Two DestinationRules of one namespace define the same subset of the same host (Kiali KIA0201): Istio merges them and keeps the first.",
    "ML0107": "The weights of a rule do not add up to 100 (Kiali's retired check): Istio treats weights as relative since 1.15, so 90/30 means 75%/25%.",
    "ML0108": "A rule after one whose match takes every request (`uri: {prefix: /}` or `regex: .*` and nothing else): Istio stops emitting routes at the first catch-all.",
    "ML0109": "A subset's labels select pods, but none of them is behind the host's Service: 503 UH.",
    "ML0110": "A Service whose selector matches no pod: 503 UH for every request.",
    "ML0111": "A VirtualService bound to the mesh whose host is no Service or ServiceEntry (beyond istioctl, which is silent): usually a misspelt host, so the real Service keeps its default route and traffic splits evenly over its pods.",
    "ML0201": "Pods of a service split by subsets have no `version` label: Kiali's versioned app graph shows them as version `latest`.",
    "ML0202": "A Deployment's selector also matches another Deployment's pods. The course does this on purpose (two staff-service Deployments share `app: staff-service`); Kubernetes allows it.",
    "ML0203": "A VirtualService whose `gateways` omit `mesh`: sidecars ignore it, so traffic between pods does not follow it.",
}
FIX = {
    "IST0002": "Write `percentage: {value: 50}` instead of `percent: 50`, `mirrorPercentage: {value: 10}` instead of `mirrorPercent: 10`.",
    "IST0101": "Use the Service's name as written in its `metadata.name` (same namespace) or its full name `name.namespace.svc.cluster.local`; `name.namespace` is taken literally and matches nothing. Name a subset exactly as the DestinationRule does (the hint suggests the nearest one), a port the Service has, an existing Gateway (`namespace/name`), a selector the gateway pods carry (`istio: ingressgateway`).",
    "IST0102": "`kubectl label namespace <name> istio-injection=enabled`, or `istio-injection=disabled` if it needs no sidecars.",
    "IST0103": "Restart the workload so the injector adds the sidecar (`kubectl rollout restart deployment/<name>`).",
    "IST0106": "Correct the field the message names; `kubectl apply` would refuse the object as it stands. `meshlab run` stops with exit 2 on these; `meshlab analyze` reports them and goes on.",
    "IST0109": "Put all the rules for one host in one VirtualService (the order of its `http` rules is then explicit).",
    "IST0112": "Add `port: {number: 8080}` to the destination.",
    "IST0116": "Give the port numbers one protocol, or let different Services use different port numbers.",
    "IST0118": "Name the port `http`, `http-<anything>`, `grpc-...`, `tcp-...`, or set `appProtocol: http`.",
    "IST0128": "Set `caCertificates` (a CA bundle in the sidecar, e.g. `/etc/ssl/certs/ca-certificates.crt`), or use `ISTIO_MUTUAL` inside the mesh.",
    "IST0129": "Set `caCertificates` in that port's `tls`.",
    "IST0130": "Order rules from the most specific to the catch-all; put the rule without `match` last; delete rules whose matches are all taken.",
    "IST0131": "Delete the match, or move the more specific match (the longer prefix) before the shorter one.",
    "IST0132": "Add the VirtualService's host to the Gateway's `hosts` (or `*`), or bind the VirtualService to the right Gateway.",
    "IST0133": "Use `consecutive5xxErrors`; write gateways as `namespace/name`.",
    "IST0134": "Add `addresses:` to the ServiceEntry, or give the port a protocol that carries the host (HTTP, HTTPS, TLS).",
    "IST0137": "Let each target port be reached through one Service port.",
    "IST0145": "Serve the hosts from one Gateway, or separate them by port or host.",
    "IST0162": "Use a port of the ingress gateway's Service (80, 443 in the demo profile) or add the port to that Service.",
    "IST0173": "Make the subset's labels those of the pods (`spec.template.metadata.labels` of the Deployment); the hint lists the values the pods have.",
    "IST0177": "Give the port the same protocol in every ServiceEntry, or merge them into one.",
    "IST0174": "Use the Service's name (or its full name) as `host`.",
    "ML0001": "Analyze the rules together with the app: `meshlab analyze CourseFiles/2-Traffic-Starting labs/2-traffic/fleetman.yaml`.",
    "ML0002": "Nothing to fix: the line says what a real cluster would run and meshlab does not. A custom kind whose CustomResourceDefinition is not in the input is refused (IST0106), as by the API server.",
    "ML0101": "Drop the weight, or add the destination that should get the rest.",
    "ML0102": "Name each destination once with the total weight.",
    "ML0103": "Route to the subset, or delete it.",
    "ML0104": "Add a VirtualService for the host that routes to the subsets.",
    "ML0105": "Give the subset the labels of its pods (e.g. `version: v1`).",
    "ML0106": "Define each subset in one DestinationRule.",
    "ML0107": "Nothing to fix if the proportion is what you meant; write weights that add up to 100 to make the shares obvious.",
    "ML0108": "Move the catch-all rule last.",
    "ML0109": "Select the pods of the host's Service: the subset's labels and the Service's selector must both match them.",
    "ML0110": "Make the selector match the pod template's labels.",
    "ML0111": "Spell the host as the Service's `metadata.name` (the hint names the nearest one), or add a ServiceEntry for an outside host.",
    "ML0201": "Add `version: <name>` to the pod template's labels.",
    "ML0202": "Nothing, if it is deliberate. `kubectl get pods -l app=staff-service` then lists both Deployments' pods.",
    "ML0203": "Add `mesh` to `gateways` if in-mesh traffic should follow the rules too.",
}


def output(case: Path, code: str) -> list[str]:
    lines = []
    for d in analyze_paths([case]).diagnostics:
        if d.code != code:
            continue
        text = str(d)
        lines += text.splitlines()
    return lines


out = []
w = out.append
w("""# Static analysis: `meshlab analyze`

`meshlab analyze` checks Kubernetes and Istio objects without a cluster. It runs the checks of
`istioctl analyze` that concern the kinds a lab uses, with the same codes and meanings, and
adds Kiali's validations and a few of meshlab's own. The same analysis is the first step of
every `meshlab run` and every lab test.

```text
meshlab analyze [--json] [--severity info|warning|error] [-n NAMESPACE] PATH...
```

`PATH` is a file, a folder (its `*.yaml` and `*.yml` files) or a lab folder (or its
`lab.yaml`): then the manifests `lab.yaml` lists, in the lab's namespace. Objects that name no
namespace are in `-n NAMESPACE` (default: the lab's, else `default`).

```console
$ meshlab analyze labs/2-traffic
labs/2-traffic/fleetman.yaml:132:5: info ML0202 [Deployment default/staff-service] selector app=staff-service also matches the pods of Deployment staff-service-risky (allowed: each Deployment tells its own pods apart by pod-template-hash)
labs/2-traffic/fleetman.yaml:156:5: info ML0202 [Deployment default/staff-service-risky] selector app=staff-service also matches the pods of Deployment staff-service (allowed: each Deployment tells its own pods apart by pod-template-hash)
0 errors, 0 warnings, 2 info (14 objects in 2 files)
```

Each line is `file:line:column: level CODE [Kind namespace/name] message`, at the YAML node
that holds the offending value, with a `hint:` line where the likely fix is known.

| Exit code | Meaning |
|---|---|
| 0 | no errors (warnings and info allowed) |
| 1 | at least one error |
| 2 | unreadable input: a file or folder that does not exist, invalid YAML, a broken `lab.yaml` |

`--severity warning` hides info, `--severity error` hides warnings too (the exit code still
counts errors only). `--json` prints `{"files", "objects", "summary": {"error", "warning",
"info"}, "diagnostics": [...]}`; each diagnostic has `code`, `level`, `message`, `resource`,
`file`, `line`, `column`, `location` and `hint`.

## In `meshlab run` and lab tests

`meshlab run` (and `pytest labs/...`) analyzes the lab before deploying it. The diagnostics do
not stop the run: the student sees both the diagnosis and what the mesh then does.

* The text report prints errors and warnings compiler-style before the checks, and counts the
  info (`analysis: 2 info (`meshlab analyze labs/2-traffic` shows them)`).
* The JSON report has a top-level `diagnostics` list (every level), and each split check a
  `diagnostics` list with the ones it named as likely causes.
* A failing split check adds the diagnostics about its request's hosts that can change a split
  as `likely cause:` lines, after the causes the check found itself (a finding that repeats
  one of those, such as IST0101 for a missing subset, is not repeated):

```text
canary-split FAILED: risky got 10.4% (26/250, 99.9999% CI 2.7–24.6%), configured 25.0% (VirtualService default/fleetman-staff-service, istio-rules.yaml:21)
  likely cause: weights of rule http[0] add up to 120, not 100: each destination gets weight/120 (safe 75.0%, risky 25.0%) (ML0107, istio-rules.yaml:14)
```

**Objects Kubernetes or Istio would refuse** (IST0106) are the exception: `kubectl apply` would
not apply them, so `meshlab run` stops with exit 2 and the message (file:line), as before.
`meshlab analyze` reports each one as an IST0106 error (exit 1) and analyzes the other objects,
so a student sees every problem in one pass.

## What runs offline that istioctl skips

`istioctl analyze --use-kube=false` (files only) ignores Services and Pods in the files and so
skips the analyzers for destination hosts (IST0101 host, IST0112), port names (IST0118),
subsets and pods (IST0173, IST0174), gateway pods and ports (IST0101 selector, IST0162),
conflicting gateways and Services (IST0145, IST0116, IST0137). meshlab has the lab's
Deployments, synthesizes their pods (labels from the template, one per replica, as the mesh
registry does) and runs all of them. With no Services or no Deployments in the input, the
analyzers that need them are skipped and ML0001 says so.

Istio's host rules are kept exactly: a host without a dot expands in the namespace of the
object that names it (`staff` in `default` is `staff.default.svc.cluster.local`); a dotted
name is literal, so `staff.default` is no Service (IST0101). A DestinationRule defines a
subset for a destination only if its host, expanded in its own namespace, is exactly the
destination's: a wildcard DestinationRule host never does (istioctl's behaviour).

A lab folder has no `istio-system`: the demo profile's ingress and egress gateways (pods
labelled `istio: ingressgateway` / `istio: egressgateway`, Services on ports 80 and 443) are
taken as installed unless the files define pods with those labels.

## Schemas: why meshlab keeps its own

Every object is validated strictly before analysis, like the API server with strict field
validation plus Istio's validating webhook: unknown fields, wrong types (`port: "80"`), missing
fields, and the webhook's rules (weights ≥ 0 and not all 0, percentages 0–100, durations ≥ 1ms
and whole milliseconds, DNS-1123 names and subset names, exclusive
`route`/`redirect`/`directResponse`, header names in lowercase, `hosts: ["*"]` not for the mesh,
TLS settings for HTTPS servers, `namespace/host` in Sidecar egress...). Kinds: Deployment,
Service, Pod, Namespace, ConfigMap, Secret, ServiceAccount; VirtualService, DestinationRule,
Gateway, ServiceEntry, Sidecar (strict), WorkloadEntry, WorkloadGroup (accepted), each in
`networking.istio.io/v1alpha3`, `v1beta1` and `v1`.

The schemas are meshlab's pydantic models (`meshlab.load.k8s`, `meshlab.load.istio`).
The maintained sources on PyPI were evaluated first (in a scratch virtualenv, nothing
installed in the project):

| Source | What it covers | Why not (now) |
|---|---|---|
| `kubernetes-validate` 1.37.0 (JSON schemas of every Kubernetes release, strict mode) | Kubernetes kinds only; no Istio CRDs, no webhook rules | a 22 MB wheel, 108 MB installed; the first error only, without a position; generic messages ("Additional properties are not allowed"); ~10 ms per object (it reloads its definitions for each object), 0.1 s import |
| `cloudcoil-models-istio` (pydantic models generated from Istio's CRD OpenAPI schemas) | Istio's CRD structure (types, enums) | the index serves 1.24.2.1 only (Istio 1.24, not 1.30/1.31); models accept unknown fields (no `extra="forbid"`); 1.55 s to import one API version (three are needed); pulls in the `cloudcoil` client; none of the webhook rules |
| Istio's CRD OpenAPI schemas (`crd-all.gen.yaml`) | structure only | not on PyPI; the webhook rules (weights, durations, exclusive actions) live in Go (`pkg/config/validation`), not in the CRD |

No source carries Istio's webhook rules, which are most of what students get wrong, so they
would have to be written by hand anyway. The pydantic models already give what the analysis
needs and the others do not: typed objects for the Istio semantics in `meshlab.mesh.plan`,
every error of a file in one pass, each at its `file:line:column`, in the student's
vocabulary, in about a millisecond per object. This change extended them to type Gateway,
ServiceEntry, Sidecar and the DestinationRule traffic policy blocks (connection pool, outlier
detection, TLS, port-level settings), so a typo there is an error instead of being ignored.
Fields meshlab does not read are still named (so a typo is an unknown field) but their values
are not checked (a Deployment's `env`, probes, volumes): that is where `kubernetes-validate`
would add most, and it remains the candidate for a development-time cross-check.

## Codes

IST codes are those of `istioctl analyze` (`pkg/config/analysis/msg/messages.yaml`), with the
same levels and meanings. ML codes are meshlab's; several come from Kiali's validations. A code
is never reused for another meaning. Every code has a case in `tests/analysis/corpus/` (the
examples below are those files: `# expect: CODE` marks the line the diagnostic points at).

| Code | Level | Name | Origin |
|---|---|---|---|
""")
for code, messages in by_code().items():
    m = messages[0]
    w(
        f"| [{code}](#{code.lower()}-{m.name.split('/')[0].lower()}) | {m.level} | {m.name.split('/')[0]} | {m.origin} |"
    )
w("")


def example(code, case):
    rel = case.relative_to(Path.cwd())
    files = sorted(case.glob("*.yaml"))
    shown = [
        f
        for f in files
        if any(code in line and "expect:" in line for line in f.read_text().splitlines())
    ]
    for f in shown:
        w(f"`{f.relative_to(Path.cwd())}`:")
        w("")
        w("```yaml")
        w(f'--8<-- "{f.relative_to(Path.cwd())}"')
        w("```")
        w("")
    w(f"`meshlab analyze {rel}`:")
    w("")
    w("```text")
    out.extend(output(case, code))
    w("```")
    w("")


EXTRA = {
    "IST0101": ["ist0101-subset", "ist0101-host", "ist0101-host-port", "ist0101-gateway-selector"]
}
for code, messages in by_code().items():
    m = messages[0]
    w(f"### {code} {m.name.split('/')[0]}")
    w("")
    w(f"*{m.level}, {m.origin}.* {SUMMARY[code]}")
    w("")
    for case in [CORPUS / n for n in EXTRA.get(code, [])] or [CASE_FOR[code]]:
        example(code, case)
    w(f"**Fix:** {FIX[code]}")
    w("")
Path("docs/reference/analyzer.md").write_text("\n".join(out))
print("written", len(out))

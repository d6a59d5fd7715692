"""load_manifests: what the API server or Istio's webhook rejects is an InputError at its line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from meshlab.errors import InputError, InputErrors
from meshlab.load import istio
from meshlab.load.manifests import Resource, load_manifests

BAD = Path(__file__).parents[1] / "data" / "bad"

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: staff-service
spec:
  selector:
    matchLabels: {app: staff-service}
  template:
    metadata:
      labels: {app: staff-service, version: safe}
    spec:
      containers:
      - name: staff-service
        image: richardchesterwood/istio-fleetman-staff-service:6
        ports:
        - containerPort: 8080
"""

SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: fleetman-staff-service
spec:
  selector: {app: staff-service}
  ports:
  - name: http
    port: 8080
"""


def virtual_service(route: str, api_version: str = "networking.istio.io/v1beta1") -> str:
    """A VirtualService whose first http entry is `route` (YAML indented under `- `)."""
    body = textwrap.indent(textwrap.dedent(route).strip(), "    ")
    return (
        f"apiVersion: {api_version}\n"
        "kind: VirtualService\n"
        "metadata:\n"
        "  name: staff\n"
        "spec:\n"
        "  hosts: [fleetman-staff-service]\n"
        "  http:\n"
        "  -\n"
        f"{body}\n"
    )


def destination_rule(subsets: str = "[{name: safe, labels: {version: safe}}]") -> str:
    return (
        "apiVersion: networking.istio.io/v1beta1\n"
        "kind: DestinationRule\n"
        "metadata:\n"
        "  name: staff\n"
        "spec:\n"
        "  host: fleetman-staff-service\n"
        f"  subsets: {subsets}\n"
    )


def write(tmp_path: Path, text: str, name: str = "manifests.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path: Path, text: str, namespace: str = "default") -> list[Resource]:
    return load_manifests([write(tmp_path, text)], namespace)


def errors(tmp_path: Path, text: str) -> list[InputError]:
    with pytest.raises(InputError) as caught:
        load(tmp_path, text)
    exc = caught.value
    return list(exc.errors) if isinstance(exc, InputErrors) else [exc]


def only_error(tmp_path: Path, text: str) -> InputError:
    found = errors(tmp_path, text)
    assert len(found) == 1, "\n".join(map(str, found))
    return found[0]


def line_of(error: InputError) -> int:
    assert error.location is not None, f"no position in {error}"
    return error.location.line


# --- kinds and versions --------------------------------------------------------------------------


def test_valid_objects_load_in_apply_order(tmp_path: Path) -> None:
    text = "---\n".join([DEPLOYMENT, SERVICE, virtual_service(ROUTE_90_10), destination_rule()])
    resources = load(tmp_path, text)
    assert [r.ref for r in resources] == [
        "Deployment default/staff-service",
        "Service default/fleetman-staff-service",
        "VirtualService default/staff",
        "DestinationRule default/staff",
    ]
    assert resources[2].location.line == 28
    assert resources[2].locate("spec", "http", 0, "route", 1, "weight").line == 40


ROUTE_90_10 = """\
route:
- destination: {host: fleetman-staff-service, subset: safe}
  weight: 90
- destination: {host: fleetman-staff-service, subset: risky}
  weight: 10
"""


@pytest.mark.parametrize("api_version", istio.ISTIO_NETWORKING_VERSIONS)
def test_all_istio_networking_versions_are_accepted(tmp_path: Path, api_version: str) -> None:
    text = virtual_service(ROUTE_90_10, api_version) + "---\n" + destination_rule()
    text = text.replace("networking.istio.io/v1beta1", api_version)
    resources = load(tmp_path, text)
    assert [(r.kind, r.body.apiVersion) for r in resources] == [
        ("VirtualService", api_version),
        ("DestinationRule", api_version),
    ]


def test_deployment_in_a_retired_api_version(tmp_path: Path) -> None:
    text = "# apps/v1beta1 went away in Kubernetes 1.16\n" + DEPLOYMENT.replace(
        "apps/v1", "apps/v1beta1"
    )
    error = only_error(tmp_path, text)
    assert error.message == 'no matches for kind "Deployment" in version "apps/v1beta1"'
    assert error.location is not None
    assert (error.location.line, error.location.column) == (2, 13)
    assert error.hint == "Deployment is served as apps/v1"


def test_virtual_service_in_an_unknown_istio_version() -> None:
    with pytest.raises(InputError) as caught:
        load_manifests([BAD / "wrong-api-version.yaml"])
    error = caught.value
    assert error.message == (
        'no matches for kind "VirtualService" in version "networking.istio.io/v2"'
    )
    assert line_of(error) == 2
    assert error.hint is not None
    for version in istio.ISTIO_NETWORKING_VERSIONS:
        assert version in error.hint


def test_unknown_kind(tmp_path: Path) -> None:
    error = only_error(tmp_path, "apiVersion: v1\nkind: Frobnicator\nmetadata: {name: x}\n")
    assert error.message.startswith('unknown kind "Frobnicator" (v1): meshlab knows ')
    assert "VirtualService" in error.message
    assert line_of(error) == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("apiVersion: v1\nmetadata: {name: x}\n", 'missing required field "kind"'),
        ("kind: Service\nmetadata: {name: x}\n", 'missing required field "apiVersion"'),
        ("- kind: Service\n", "a manifest document must be a mapping"),
        ("just a string\n", "a manifest document must be a mapping"),
    ],
)
def test_documents_without_type(tmp_path: Path, text: str, message: str) -> None:
    assert only_error(tmp_path, text).message.startswith(message)


# --- unknown fields --------------------------------------------------------------------------


def test_unknown_field_deep_in_a_route_is_located_at_its_key() -> None:
    with pytest.raises(InputError) as caught:
        load_manifests([BAD / "unknown-field.yaml"])
    error = caught.value
    assert error.message == (
        'VirtualService: unknown field "spec.http[0].route[0].destination.subnet"'
    )
    assert error.location is not None
    assert (error.location.line, error.location.column) == (12, 9)


@pytest.mark.parametrize(
    ("typo", "field", "line"),
    [
        ("  name: staff-service", "metadata.nmae", 4),
        ("    matchLabels: {app: staff-service}", "spec.selector.matchLabel", 7),
        ("      - name: staff-service", "spec.template.spec.containers[0].nmae", 13),
        (
            "        - containerPort: 8080",
            "spec.template.spec.containers[0].ports[0].containerPrt",
            16,
        ),
    ],
)
def test_unknown_field_at_any_depth(tmp_path: Path, typo: str, field: str, line: int) -> None:
    wrong_key = field.rsplit(".", 1)[-1]
    right_key = typo.strip().removeprefix("- ").split(":")[0]
    text = DEPLOYMENT.replace(typo, typo.replace(right_key, wrong_key, 1))
    found = errors(tmp_path, text)
    unknown = [e for e in found if "unknown field" in e.message]
    assert [e.message for e in unknown] == [f'Deployment: unknown field "{field}"']
    assert line_of(unknown[0]) == line


# --- Istio's webhook rules ---------------------------------------------------------------------


def test_negative_weight(tmp_path: Path) -> None:
    text = virtual_service(ROUTE_90_10.replace("weight: 10", "weight: -10"))
    error = only_error(tmp_path, text)
    assert "spec.http[0].route[1].weight: weight -10 must be zero or more" in error.message
    assert line_of(error) == 13


def test_all_zero_weights_with_two_destinations(tmp_path: Path) -> None:
    route = ROUTE_90_10.replace("weight: 90", "weight: 0").replace("weight: 10", "weight: 0")
    error = only_error(tmp_path, virtual_service(route))
    assert "total destination weight = 0" in error.message
    assert line_of(error) == 9


def test_zero_weight_on_a_single_destination_is_fine(tmp_path: Path) -> None:
    route = "route:\n- destination: {host: fleetman-staff-service}\n  weight: 0\n"
    assert len(load(tmp_path, virtual_service(route))) == 1


def test_weight_must_be_an_integer_not_a_boolean(tmp_path: Path) -> None:
    error = only_error(tmp_path, virtual_service(ROUTE_90_10.replace("weight: 10", "weight: true")))
    assert "spec.http[0].route[1].weight" in error.message
    assert "valid integer" in error.message


@pytest.mark.parametrize(
    ("timeout", "message"),
    [
        ("0s", "duration '0s' must be at least 1ms"),
        ("1.5ms", "duration '1.5ms' must be a whole number of milliseconds"),
        ("abc", "'abc' is not a duration"),
        ("10", "'10' is not a duration"),
        ("-1s", "'-1s' is not a duration"),
    ],
)
def test_invalid_timeouts(tmp_path: Path, timeout: str, message: str) -> None:
    route = f"timeout: '{timeout}'\n" + ROUTE_90_10
    error = only_error(tmp_path, virtual_service(route))
    assert f"spec.http[0].timeout: {message}" in error.message
    assert line_of(error) == 9


@pytest.mark.parametrize("timeout", ["1ms", "0.5s", "10s", "1m30s", "1h"])
def test_valid_timeouts(tmp_path: Path, timeout: str) -> None:
    (vs,) = load(tmp_path, virtual_service(f"timeout: {timeout}\n" + ROUTE_90_10))
    assert vs.body.spec.http[0].timeout == timeout


def test_numeric_timeout_is_a_type_error(tmp_path: Path) -> None:
    error = only_error(tmp_path, virtual_service("timeout: 10\n" + ROUTE_90_10))
    assert "spec.http[0].timeout: Input should be a valid string (got 10)" in error.message


@pytest.mark.parametrize("name", ["Risky", "risky_1", "-risky", "risky.v2", "r" * 64])
def test_subset_names_must_be_dns1123_labels(tmp_path: Path, name: str) -> None:
    error = only_error(tmp_path, destination_rule(f"[{{name: '{name}'}}]"))
    assert "spec.subsets[0].name: subset name" in error.message
    assert "DNS-1123 label" in error.message
    assert line_of(error) == 7


def test_subset_reference_must_be_a_dns1123_label(tmp_path: Path) -> None:
    error = only_error(tmp_path, virtual_service(ROUTE_90_10.replace("risky}", "Risky_1}")))
    assert "spec.http[0].route[1].destination.subset: subset name 'Risky_1'" in error.message
    assert line_of(error) == 12


def test_duplicate_subset_names(tmp_path: Path) -> None:
    error = only_error(tmp_path, destination_rule("[{name: safe}, {name: safe}]"))
    assert "duplicate subset name 'safe'" in error.message


def test_route_and_redirect_are_exclusive(tmp_path: Path) -> None:
    error = only_error(tmp_path, virtual_service("redirect: {uri: /v2}\n" + ROUTE_90_10))
    assert "route, redirect, directResponse are exclusive (got route, redirect)" in error.message
    assert line_of(error) == 9


def test_http_route_needs_an_action(tmp_path: Path) -> None:
    error = only_error(tmp_path, virtual_service("timeout: 1s"))
    assert "an HTTP route needs one of route, redirect" in error.message


# --- Kubernetes rules --------------------------------------------------------------------------


def test_deployment_selector_must_match_template_labels(tmp_path: Path) -> None:
    text = DEPLOYMENT.replace("matchLabels: {app: staff-service}", "matchLabels: {app: staff}")
    error = only_error(tmp_path, text)
    assert "selector does not match template labels" in error.message
    assert line_of(error) == 6


def test_service_with_two_unnamed_ports(tmp_path: Path) -> None:
    text = SERVICE.replace("  - name: http\n    port: 8080\n", "  - port: 8080\n  - port: 8443\n")
    error = only_error(tmp_path, text)
    assert "every port must have a name when a Service has several" in error.message


@pytest.mark.parametrize(
    ("labels", "problem"),
    [
        ("{version: -safe}", "not a valid label value"),
        ("{version: safe-}", "not a valid label value"),
        ("{version: 'a b'}", "not a valid label value"),
        (f"{{version: {'v' * 64}}}", "not a valid label value"),
        ("{'-version': safe}", "not a valid Kubernetes label name"),
        ("{'Example.com/version': safe}", "label prefix"),
        ("{version: 1}", "Input should be a valid string"),
        ("{version: true}", "Input should be a valid string"),
    ],
)
def test_invalid_labels(tmp_path: Path, labels: str, problem: str) -> None:
    text = DEPLOYMENT.replace(
        "labels: {app: staff-service, version: safe}", f"labels: {labels}"
    ).replace("matchLabels: {app: staff-service}", "matchLabels: {}")
    found = errors(tmp_path, text)
    assert any(problem in e.message and "metadata.labels" in e.message for e in found), found


@pytest.mark.parametrize(
    ("kind_text", "name"),
    [(DEPLOYMENT, "Staff_Service"), (SERVICE, "Fleetman.Staff"), (SERVICE, "1-staff")],
)
def test_invalid_object_names(tmp_path: Path, kind_text: str, name: str) -> None:
    original = kind_text.split("name: ", 1)[1].split("\n", 1)[0]
    error = only_error(tmp_path, kind_text.replace(f"name: {original}", f"name: {name}", 1))
    assert "metadata.name: " in error.message
    assert repr(name) in error.message
    assert line_of(error) == 4


def test_port_as_a_string_is_a_type_error(tmp_path: Path) -> None:
    error = only_error(tmp_path, SERVICE.replace("port: 8080", "port: '8080'"))
    assert "spec.ports[0].port: Input should be a valid integer" in error.message


# --- files as kubectl reads them ---------------------------------------------------------------


def test_kind_list_is_flattened(tmp_path: Path) -> None:
    items = textwrap.indent(SERVICE + "---\n" + DEPLOYMENT, "  ").split("  ---\n")
    text = "apiVersion: v1\nkind: List\nitems:\n" + "".join("- " + item.lstrip() for item in items)
    resources = load(tmp_path, text)
    assert [r.ref for r in resources] == [
        "Service default/fleetman-staff-service",
        "Deployment default/staff-service",
    ]
    assert resources[1].at == ("items", 1)
    assert resources[1].location.line == 13


def test_error_inside_a_list_item_is_located_in_the_item(tmp_path: Path) -> None:
    text = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Servise\n"
    error = only_error(tmp_path, text)
    assert error.message.startswith('unknown kind "Servise"')
    assert line_of(error) == 5


def test_namespace_defaults_to_the_labs_namespace(tmp_path: Path) -> None:
    text = "---\n".join(
        [
            SERVICE,
            SERVICE.replace("name: fleetman-staff-service", "name: other\n  namespace: team-b"),
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: team-b}\n",
        ]
    )
    resources = load(tmp_path, text, namespace="fleetman")
    assert [(r.kind, r.namespace, r.name) for r in resources] == [
        ("Service", "fleetman", "fleetman-staff-service"),
        ("Service", "team-b", "other"),
        ("Namespace", "", "team-b"),
    ]


def test_invalid_namespace(tmp_path: Path) -> None:
    text = SERVICE.replace("name: fleetman-staff-service", "name: s\n  namespace: Team_B")
    error = only_error(tmp_path, text)
    assert "metadata.namespace: namespace 'Team_B' must be a DNS-1123 label" in error.message


def test_same_object_twice_later_wins(tmp_path: Path) -> None:
    first = virtual_service(ROUTE_90_10)
    second = virtual_service(ROUTE_90_10.replace("90", "50").replace("10", "50"))
    resources = load_manifests(
        [write(tmp_path, first + "---\n" + SERVICE, "a.yaml"), write(tmp_path, second, "b.yaml")]
    )
    assert [r.ref for r in resources] == [
        "Service default/fleetman-staff-service",
        "VirtualService default/staff",
    ]
    (vs,) = [r for r in resources if r.kind == "VirtualService"]
    assert vs.document.path.name == "b.yaml"
    assert [d.weight for d in vs.body.spec.http[0].route] == [50, 50]


def test_same_name_in_another_namespace_is_another_object(tmp_path: Path) -> None:
    other = SERVICE.replace(
        "name: fleetman-staff-service", "name: fleetman-staff-service\n  namespace: b"
    )
    assert len(load(tmp_path, SERVICE + "---\n" + other)) == 2


def test_several_errors_in_one_file_are_reported_together() -> None:
    with pytest.raises(InputErrors) as caught:
        load_manifests([BAD / "several-errors.yaml"])
    found = caught.value.errors
    assert [line_of(e) for e in found] == [14, 19, 28]
    assert "weight -10" in found[0].message
    assert "1.5ms" in found[1].message
    assert "Safe_Build" in found[2].message
    assert str(caught.value).count("error:") == 3


def test_errors_in_several_files_are_reported_together(tmp_path: Path) -> None:
    good = write(tmp_path, SERVICE, "good.yaml")
    with pytest.raises(InputErrors) as caught:
        load_manifests([BAD / "syntax-error.yaml", good, BAD / "unknown-field.yaml"])
    assert [e.location.path.name for e in caught.value.errors if e.location] == [
        "syntax-error.yaml",
        "unknown-field.yaml",
    ]


def test_missing_manifest_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found"):
        load_manifests([tmp_path / "nope.yaml"])

"""The safety net: Envoy validates the bootstrap before the run, and a config it refuses is an
input error (exit 2) at the object's file:line with Envoy's sentence, never a backend crash
(exit 3) with a config dump."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from meshlab.backends.embedded.envoy import validate
from meshlab.backends.embedded.envoy.binary import find_envoy
from meshlab.errors import InputError
from meshlab.load.manifests import load_manifests
from meshlab.mesh.plan import MeshPlan, build_plan

ROOT = Path(__file__).resolve().parents[2]
APPS = ROOT / "tests" / "data" / "mesh" / "apps.yaml"
LAB2 = ROOT / "labs" / "2-traffic"
MESHLAB = [sys.executable, "-c", "from meshlab.cli import main; main()"]
HOST = "fleetman-staff-service"

# Passes Istio's webhook (and our schemas): `%FOO%` is well-formed. Envoy knows no FOO.
UNKNOWN_VARIABLE = f"""\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: staff
spec:
  hosts: [{HOST}]
  http:
  - match:
    - uri: {{prefix: /api}}
    route: [{{destination: {{host: {HOST}}}}}]
  - match:
    - uri: {{prefix: /driver}}
    route: [{{destination: {{host: {HOST}}}}}]
    headers:
      request:
        set: {{x-who: "%FOO%"}}
"""


def _plan(tmp_path: Path, text: str) -> MeshPlan:
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    return build_plan(load_manifests([APPS, path], "default"), "default")


def _verdict(plan: MeshPlan, workdir: Path) -> InputError | None:
    with validate.EnvoyValidation(find_envoy(), plan, workdir) as check:
        try:
            check.result()
        except InputError as error:
            return error
    return None


@pytest.mark.envoy
def test_an_envoy_refusal_names_the_route_and_quotes_envoy(tmp_path: Path) -> None:
    error = _verdict(_plan(tmp_path, UNKNOWN_VARIABLE), tmp_path)
    assert error is not None
    assert error.location is not None
    # the line of the value Envoy quotes, inside the route Envoy names
    assert (error.location.path.name, error.location.line) == ("rules.yaml", 16)
    assert "VirtualService default/staff" in error.message
    assert "Not supported field in StreamInfo: FOO" in error.message
    assert "{" not in error.message  # no config dump


@pytest.mark.envoy
def test_a_regex_our_schema_missed_is_mapped_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should the schemas ever let a bad regex through (here: the renderer breaks it), the
    error still lands on the VirtualService line that produced the route."""
    real = validate.render_bootstrap

    def broken(*args: Any, **kwargs: Any) -> dict[str, Any]:
        config = real(*args, **kwargs)
        hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        for vhost in hcm["typed_config"]["route_config"]["virtual_hosts"]:
            for route in vhost["routes"]:
                if route["match"].get("prefix") == "/driver":
                    del route["match"]["prefix"]
                    route["match"]["safe_regex"] = {"regex": "/driver/(unclosed"}
        return config

    monkeypatch.setattr(validate, "render_bootstrap", broken)
    text = UNKNOWN_VARIABLE.replace('"%FOO%"', "meshlab")
    error = _verdict(_plan(tmp_path, text), tmp_path)
    assert error is not None
    assert error.location is not None
    assert error.location.line == 12
    assert "missing ): /driver/(unclosed" in error.message


@pytest.mark.envoy
def test_a_json_path_error_is_mapped_by_its_indices(tmp_path: Path) -> None:
    """Envoy's protobuf parse errors name a JSON path (…virtual_hosts[i].routes[j]…) and then
    dump the whole config: the path finds the route, the dump is cut."""
    plan = _plan(tmp_path, UNKNOWN_VARIABLE.replace('"%FOO%"', "meshlab"))
    config = validate.render_bootstrap(plan, validate.placeholder_addresses(plan))
    sites = validate._route_sites(plan, config)
    target = next(s for s in sites if s.plan.location and s.plan.location.line == 12)
    output = (
        "[2026-01-01 00:00:00.000][1][critical][main] [source/server/config_validation/"
        "server.cc:76] error initializing configuration '/tmp/x/envoy.json': Unable to parse "
        "JSON as proto (INVALID_ARGUMENT: invalid JSON in envoy.config.bootstrap.v3.Bootstrap @ "
        f"static_resources.listeners[{target.listener}].filter_chains[0].filters[0]."
        f"typed_config.<any>.route_config.virtual_hosts[{target.vhost}].routes[{target.route}]"
        ".route.timeout: message google.protobuf.Duration,   near 192:27:  duration   out of "
        'range): {\n "admin": {}\n}\n'
    )
    error = validate.refusal(output, plan, config)
    assert error.location is not None
    assert error.location.line == 12
    assert error.message.endswith("duration out of range)")


@pytest.mark.envoy
def test_cli_exits_2_not_3_with_the_position(tmp_path: Path) -> None:
    lab = tmp_path / "lab"
    shutil.copytree(LAB2, lab, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    rules = lab / "istio-rules.yaml"
    text = rules.read_text(encoding="utf-8")
    rules.write_text(
        text.replace(
            "  http:\n  - route:\n",
            '  http:\n  - headers:\n      response:\n        set: {x-who: "%FOO%"}\n    route:\n',
        ),
        encoding="utf-8",
    )
    done = subprocess.run(
        [*MESHLAB, "run", str(lab)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert re.search(r"istio-rules\.yaml:15:\d+: error: Envoy refuses the route", done.stderr)
    assert "Not supported field in StreamInfo: FOO" in done.stderr


def test_a_cluster_refusal_names_the_destination_rule(tmp_path: Path) -> None:
    text = UNKNOWN_VARIABLE.replace('"%FOO%"', "meshlab") + (
        "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\n"
        f"metadata: {{name: staff}}\nspec:\n  host: {HOST}\n"
        "  subsets: [{name: safe, labels: {version: safe}}]\n"
    )
    plan = _plan(tmp_path, text)
    config = validate.render_bootstrap(plan, validate.placeholder_addresses(plan))
    index = next(
        i for i, c in enumerate(config["static_resources"]["clusters"]) if "|safe|" in c["name"]
    )
    output = (
        "error initializing configuration 'x': Proto constraint validation failed "
        "(BootstrapValidationError.StaticResources: embedded message failed validation | "
        f"caused by StaticResourcesValidationError.Clusters[{index}]: value must be ...):\n{{\n"
    )
    error = validate.refusal(output, plan, config)
    assert "Envoy refuses the cluster built from DestinationRule default/staff" in error.message
    assert error.location is not None
    assert error.location.line == 18  # the DestinationRule document


def test_an_unmapped_refusal_is_still_input_and_says_so(tmp_path: Path) -> None:
    plan = _plan(tmp_path, UNKNOWN_VARIABLE.replace('"%FOO%"', "meshlab"))
    config = validate.render_bootstrap(plan, validate.placeholder_addresses(plan))
    error = validate.refusal("error initializing configuration 'x': zzz went wrong", plan, config)
    assert error.message == "Envoy refuses the configuration built from this lab: zzz went wrong"
    assert error.location is None
    assert error.hint is not None
    assert "meshlab bug" in error.hint

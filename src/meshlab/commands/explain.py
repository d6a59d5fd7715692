"""`meshlab envoy-config` and `meshlab explain`: what the sidecar gets, and what it does with
one request, offline."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command("envoy-config")
@click.argument("lab_dir", type=click.Path(path_type=Path))
def envoy_config(lab_dir: Path) -> None:
    """Print the Envoy configuration meshlab derives from LAB_DIR (pods at placeholder ports)."""
    from meshlab.backends.embedded.envoy.bootstrap import placeholder_addresses, render_bootstrap
    from meshlab.pipeline import prepare

    prepared = prepare(lab_dir)
    config = render_bootstrap(prepared.plan, placeholder_addresses(prepared.plan))
    click.echo(json.dumps(config, indent=2))


@click.command()
@click.argument("lab_dir", type=click.Path(path_type=Path))
@click.argument("url")
@click.option(
    "-H",
    "--header",
    "headers",
    multiple=True,
    metavar="'NAME: VALUE'",
    help="A request header, as curl takes it (repeatable).",
)
@click.option(
    "-X",
    "--method",
    default="GET",
    show_default=True,
    type=click.Choice(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
)
@click.option(
    "--from",
    "workload",
    default=None,
    metavar="WORKLOAD",
    help="Start from this Deployment or Pod (NAME or NS/NAME): its namespace and labels decide "
    "which rules its sidecar gets (sourceLabels, workloadSelector); `browser`: from outside, "
    "through the ingress gateway. Default: the meshed test client in the lab's namespace.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the trace as JSON.")
def explain(
    lab_dir: Path,
    url: str,
    headers: tuple[str, ...],
    method: str,
    workload: str | None,
    as_json: bool,
) -> None:
    """Trace one request to URL through LAB_DIR's configuration, offline, sending nothing.

    Says which listener, virtual host (and domain) and route the client sidecar picks, why
    earlier routes did not match, where the request goes (shares, subsets, pods) and which
    policies apply, each with the YAML line that made it.
    """
    from meshlab.mesh.plan import build_plan
    from meshlab.mesh.request import ProbeRequest
    from meshlab.mesh.trace import find_workload, trace_request
    from meshlab.pipeline import prepare
    from meshlab.report.explain import explain_json, explain_lines

    request = ProbeRequest(_explain_url(url), method, _parse_headers(headers))
    prepared = prepare(lab_dir)
    plan, origin = prepared.plan, None
    if workload == "browser":
        ingress = prepared.to_deploy().proxies.ingress()
        if ingress is None:
            raise click.BadParameter(
                "the lab has no Gateway selecting `istio: ingressgateway`: nothing outside "
                "the mesh reaches it",
                param_hint="--from",
            )
        plan = ingress.plan
    elif workload is not None:
        try:
            origin = find_workload(plan.registry, workload, prepared.lab.namespace)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--from") from None
        plan = build_plan(prepared.resources, origin.namespace, origin.labels)
    trace = trace_request(plan, request, origin)
    if as_json:
        click.echo(json.dumps(explain_json(trace), indent=2))
        return
    for line in explain_lines(trace):
        click.echo(line)


def _explain_url(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme != "http" or not parts.hostname:
        raise click.BadParameter("give a URL such as http://service:8080/path", param_hint="URL")
    try:
        parts.port  # noqa: B018  (a port that is no number raises here)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="URL") from None
    return parts.geturl()


def _parse_headers(headers: tuple[str, ...]) -> dict[str, str]:
    parsed = {}
    for header in headers:
        name, sep, value = header.partition(":")
        if not sep or not name.strip():
            raise click.BadParameter(f"{header!r} is not 'name: value'", param_hint="-H")
        parsed[name.strip().lower()] = value.strip()
    return parsed

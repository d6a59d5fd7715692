"""Stand-in pods: one small local HTTP server per Kubernetes pod, chosen by container image.

Stdlib only, on purpose: `python -m meshlab.backends.embedded.standins` runs once per pod and
must start fast.
Behaviours are looked up by image repository, so a new image is one `register()` away;
unknown images get a generic echo that shows what reached the pod. Fleetman stand-ins call each
other along the app's chain through their pod's sidecar (`egress`), and list those calls in the
`x-meshlab-hops` response header (`hops`).
"""

from __future__ import annotations

from collections.abc import Callable

from meshlab.backends.embedded.standins import external, fleetman, fleetman_chain
from meshlab.backends.embedded.standins.pods import (
    Behaviour,
    PodSpec,
    Request,
    Response,
    error_response,
    json_response,
)

__all__ = [
    "Behaviour",
    "BehaviourFactory",
    "PodSpec",
    "Request",
    "Response",
    "behaviour_for",
    "describe",
    "echo",
    "error_response",
    "json_response",
    "parse_image",
    "register",
]

BehaviourFactory = Callable[[str], Behaviour]
"""Builds a behaviour from an image tag (`"6-bad"`, `"latest"`, ...)."""

_REGISTRY: dict[str, BehaviourFactory] = {
    **fleetman.BEHAVIOURS,
    **fleetman_chain.BEHAVIOURS,
    **external.BEHAVIOURS,
}
_DOCKER_HUB_PREFIXES = ("docker.io/library/", "docker.io/", "index.docker.io/")


def parse_image(image: str) -> tuple[str, str]:
    """`repo[:tag][@digest]` → (repository, tag); the tag defaults to "latest".

    A registry port (`localhost:5000/x`) is not a tag; Docker Hub prefixes are dropped so
    `docker.io/richardchesterwood/...` finds the same behaviour as the short name.
    """
    name = image.strip().split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    repo, tag = (name[:colon], name[colon + 1 :]) if colon > slash else (name, "")
    for prefix in _DOCKER_HUB_PREFIXES:
        if repo.startswith(prefix):
            repo = repo[len(prefix) :]
            break
    return repo, tag or "latest"


def register(repository: str, factory: BehaviourFactory) -> None:
    """Give an image repository its own behaviour (replaces any earlier registration)."""
    _REGISTRY[parse_image(repository)[0]] = factory


def echo(image: str) -> Behaviour:
    """The fallback: 200 JSON describing the pod and the request, for any method and path."""

    def handle(request: Request) -> Response:
        headers: dict[str, str] = {}
        for k, v in request.headers:
            headers[k] = f"{headers[k]}, {v}" if k in headers else v
        pod = request.pod
        return json_response(
            200,
            {
                "pod": pod.name,
                "namespace": pod.namespace,
                "image": pod.image,
                "labels": dict(pod.labels),
                "method": request.method,
                "path": request.target,
                "headers": headers,
            },
        )

    return Behaviour(
        f"echo ({image})",
        f"generic echo for unknown image {image}: 200 JSON of each request",
        handle,
    )


def behaviour_for(image: str) -> Behaviour:
    """The behaviour a pod running `image` gets."""
    repo, tag = parse_image(image)
    factory = _REGISTRY.get(repo)
    return factory(tag) if factory else echo(image)


def describe(image: str) -> str:
    """One sentence for reports: which stand-in answers for `image`, and how."""
    return behaviour_for(image).summary

"""Container image references, and the repositories a graded lab may run.

A reference is compared by its repository with the registry spelled out, so
`richardchesterwood/x:6`, `docker.io/richardchesterwood/x` and
`index.docker.io/richardchesterwood/x@sha256:...` are the same repository, and a prefix
cannot be dodged by spelling the registry differently. A reference outside the grammar the
container runtime accepts is refused rather than guessed at.
"""

from __future__ import annotations

import re

# The course's images (docker.io/richardchesterwood/istio-fleetman-*). meshlab's own pods
# (the probe) are created by meshlab, not read from the lab, and the sidecars' images come
# from istiod's injector: neither is a lab object, so neither needs to be listed here.
GRADING_IMAGE_PREFIXES: tuple[str, ...] = ("docker.io/richardchesterwood/istio-fleetman-",)

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_REFERENCE = re.compile(
    rf"(?P<name>(?:[A-Za-z0-9.-]+(?::[0-9]+)?/)?{_COMPONENT}(?:/{_COMPONENT})*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[0-9a-f]{64}))?"
)
_DOCKER_HUB = {"docker.io", "index.docker.io", "registry-1.docker.io"}


def image_repository(image: str) -> str | None:
    """`richardchesterwood/x:6` -> `docker.io/richardchesterwood/x`; None if not a valid
    reference (the runtime would refuse it too)."""
    match = _REFERENCE.fullmatch(image) if len(image) <= 512 else None  # no "\n" tail
    if match is None:
        return None
    name = match.group("name")
    first, _, rest = name.partition("/")
    if not rest:
        return f"docker.io/library/{first}"
    if "." in first or ":" in first or first == "localhost":
        registry = "docker.io" if first.lower() in _DOCKER_HUB else first.lower()
        if registry == "docker.io" and "/" not in rest:
            rest = f"library/{rest}"
        return f"{registry}/{rest}"
    if first != first.lower():
        return None  # an upper-case first component is neither a registry nor a repository
    return f"docker.io/{name}"


def normalise_prefix(prefix: str) -> str:
    """An allow-list entry as it is compared: `richardchesterwood/istio-fleetman-` ->
    `docker.io/richardchesterwood/istio-fleetman-`."""
    first, _, rest = prefix.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return ("docker.io" if first.lower() in _DOCKER_HUB else first.lower()) + "/" + rest
    return f"docker.io/{prefix}" if rest else f"docker.io/library/{prefix}"


def image_allowed(image: str, prefixes: tuple[str, ...]) -> bool:
    repository = image_repository(image)
    if repository is None:
        return False
    return any(repository.startswith(normalise_prefix(p)) for p in prefixes)

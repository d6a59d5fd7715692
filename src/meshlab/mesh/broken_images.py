"""Images the course ships broken on purpose, and the status they answer every request with.

Why the mesh layer knows: `expect: configured` predicts what a client sees, and a retry
policy moves a broken pod's answers onto the good pods only if the status it answers is one
the policy retries. The embedded stand-ins implement the same images
(backends/embedded/standins/fleetman.py); a test keeps the two in step.
"""

from __future__ import annotations

# course repository: the staff service's `6-bad` tag answers every request with HTTP 500
# (6-Circuit-Breaking); the outlier-detection demo is built on it.
BROKEN: dict[tuple[str, str], int] = {
    ("richardchesterwood/istio-fleetman-staff-service", "6-bad"): 500,
}
_HUB_PREFIXES = ("docker.io/library/", "docker.io/", "index.docker.io/")


def broken_status(image: str) -> int | None:
    """The status an image answers every request with, when it is broken on purpose."""
    name = image.strip().split("@", 1)[0]
    slash, colon = name.rfind("/"), name.rfind(":")
    repo, tag = (name[:colon], name[colon + 1 :]) if colon > slash else (name, "latest")
    for prefix in _HUB_PREFIXES:
        if repo.startswith(prefix):
            repo = repo[len(prefix) :]
            break
    return BROKEN.get((repo, tag))

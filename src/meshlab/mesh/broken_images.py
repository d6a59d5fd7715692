"""Images the course ships broken on purpose, and the status they answer every request with.

Why the mesh layer knows: `expect: configured` predicts what a client sees, and a retry
policy moves a broken pod's answers onto the good pods only if the status it answers is one
the policy retries. The embedded stand-ins implement the same images
(backends/embedded/standins/fleetman.py); a test keeps the two in step.
"""

from __future__ import annotations

from meshlab.mesh.image_calls import image_parts

# course repository: the staff service's `6-bad` tag answers every request with HTTP 500
# (6-Circuit-Breaking); the outlier-detection demo is built on it.
BROKEN: dict[tuple[str, str], int] = {
    ("richardchesterwood/istio-fleetman-staff-service", "6-bad"): 500,
}


def broken_status(image: str) -> int | None:
    """The status an image answers every request with, when it is broken on purpose."""
    return BROKEN.get(image_parts(image))

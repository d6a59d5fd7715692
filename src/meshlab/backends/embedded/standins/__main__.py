"""`python -m meshlab.backends.embedded.standins --pod NAME --namespace NS --image IMAGE ...`

Prints one JSON ready line, then serves until SIGTERM, SIGINT or EOF on stdin (the
supervisor's lifeline). Exits through os._exit: daemon handler threads may still hold
buffered-IO locks, and interpreter finalization would otherwise risk a noisy abort.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from meshlab.backends.embedded.standins import PodSpec, behaviour_for
from meshlab.backends.embedded.standins.server import run


def _label(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m meshlab.backends.embedded.standins", description=__doc__
    )
    p.add_argument("--pod", required=True, help="pod name (sent back as x-meshlab-pod)")
    p.add_argument("--namespace", default="default")
    p.add_argument("--image", required=True, help="container image; picks the behaviour")
    p.add_argument("--port", type=int, action="append", default=[], help="a containerPort")
    p.add_argument("--label", type=_label, action="append", default=[], help="KEY=VALUE")
    p.add_argument("--no-lifeline", action="store_true", help="ignore stdin (for running by hand)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        pod = PodSpec(args.pod, args.namespace, args.image, dict(args.label), tuple(args.port))
    except ValueError as exc:
        parser.error(str(exc))
    lifeline = None if args.no_lifeline or sys.stdin is None else sys.stdin.fileno()
    return run(pod, behaviour_for(pod.image), lifeline_fd=lifeline, out=sys.stdout)


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)

"""`python -m meshlab.backends.embedded.standins --spec PODS.json` (a host of many pods), or
`... --pod NAME --namespace NS --image IMAGE --port 8080 ...` (one pod, for running by hand).

Prints one JSON ready line naming every pod's ports, then serves until SIGTERM, SIGINT or EOF
on stdin (the supervisor's lifeline). See `host.py`. Exits through os._exit: daemon handler
threads may still hold buffered-IO locks, and interpreter finalization would otherwise risk a
noisy abort.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from meshlab.backends.embedded.standins import PodSpec, behaviour_for
from meshlab.backends.embedded.standins.egress import ENV as EGRESS_ENV
from meshlab.backends.embedded.standins.host import (
    load_listeners,
    load_spec,
    read_spec_line,
    run,
)

STDIN_SPEC = "-"  # `--spec -`: the spec as one line on stdin, sent once the lab is read


def _label(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m meshlab.backends.embedded.standins", description=__doc__
    )
    p.add_argument(
        "--spec", help="JSON file listing the pods this host serves (see host.py); - for stdin"
    )
    p.add_argument("--pod", help="one pod's name (sent back as x-meshlab-pod)")
    p.add_argument("--namespace", default="default")
    p.add_argument("--image", help="container image; picks the behaviour")
    p.add_argument("--port", type=int, action="append", default=[], help="a containerPort")
    p.add_argument("--label", type=_label, action="append", default=[], help="KEY=VALUE")
    p.add_argument("--egress", help=f"the pod's egress file (default: ${EGRESS_ENV})")
    p.add_argument("--no-lifeline", action="store_true", help="ignore stdin (for running by hand)")
    return p


def _pods(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[PodSpec] | None:
    if args.spec is not None:
        if args.pod or args.image or args.port or args.label or args.egress:
            parser.error("--spec lists the pods: give no --pod/--image/--port/--label/--egress")
        if args.spec == STDIN_SPEC:
            try:
                return read_spec_line(sys.stdin.fileno())
            except (OSError, ValueError) as exc:
                parser.error(f"--spec -: {exc}")
        try:
            return load_spec(args.spec)
        except (OSError, ValueError) as exc:
            parser.error(f"--spec {args.spec}: {exc}")
    if not args.pod or not args.image:
        parser.error("give --spec FILE, or --pod and --image for one pod")
    egress = args.egress or os.environ.get(EGRESS_ENV) or None
    try:
        labels = dict(args.label)
        return [PodSpec(args.pod, args.namespace, args.image, labels, tuple(args.port), egress)]
    except ValueError as exc:
        parser.error(str(exc))


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    pods = _pods(parser, args)
    if pods is None:
        return 0  # started ahead, then not needed: stdin closed before a spec came
    listeners = {}
    if args.spec is not None and args.spec != STDIN_SPEC:
        try:
            listeners = load_listeners(args.spec, pods)
        except (OSError, ValueError) as exc:
            parser.error(f"--spec {args.spec}: {exc}")
    lifeline = None if args.no_lifeline or sys.stdin is None else sys.stdin.fileno()
    behaviours = [(p, behaviour_for(p.image)) for p in pods]
    return run(behaviours, lifeline_fd=lifeline, out=sys.stdout, listeners=listeners)


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)

"""The stand-in for a host outside the mesh (a ServiceEntry host): meshlab starts one on
127.0.0.1 in place of every external address, so no request ever leaves the machine. It
answers any method and path with 200 and says which host it plays (`external <host>`), so a
test or a check can see which external host a request reached. The image is
`meshlab/external:<host>` (mesh/external.py names it)."""

from __future__ import annotations

from collections.abc import Callable

from meshlab.backends.embedded.standins.pods import Behaviour, Request, Response, json_response

REPOSITORY = "meshlab/external"


def external(host: str) -> Behaviour:
    answer = f"external {host}"

    def handle(request: Request) -> Response:
        return json_response(
            200,
            {"answer": answer, "host": request.header("host") or "", "path": request.target},
            (("x-meshlab-external", host),),
        )

    return Behaviour(answer, f"stand-in for the external host {host}: 200 to anything", handle)


BEHAVIOURS: dict[str, Callable[[str], Behaviour]] = {REPOSITORY: external}

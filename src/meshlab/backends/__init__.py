"""Backends: where the traffic flows. Each one applies a lab's objects and hands back a
client that says, for every request, which pod served it (or how it failed).

Deliberately empty: stand-in pods start as `python -m meshlab.backends.embedded.standins`,
which imports this package and must not pay for pydantic. The contract is in `base`, the
backends by name in `registry`.
"""

"""The embedded backend: meshlab plays istiod, a real Envoy plays the sidecar, stand-in
processes play the pods (`backend`, `envoy/`, `processes`, `standins/`).

Deliberately empty: the stand-ins (`python -m meshlab.backends.embedded.standins`) import
this package and must start fast.
"""

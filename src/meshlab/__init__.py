"""meshlab: check Istio traffic rules by sending real traffic through a real Envoy.

This module stays import-light on purpose: stand-in pods start as
`python -m meshlab.backends.embedded.standins` and must not pay for scipy or pydantic.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]

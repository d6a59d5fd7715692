"""Istio semantics: from Kubernetes + Istio objects to what a client sidecar is configured with."""

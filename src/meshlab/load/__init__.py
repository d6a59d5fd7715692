"""Stage 1, load: YAML with positions, strict schemas, the lab format, Kubernetes and Istio
objects as typed resources. Knows nothing of Istio's semantics or of any later stage."""

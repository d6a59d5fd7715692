"""The real Envoy: its configuration (rendered from a MeshPlan), its binary, its process."""

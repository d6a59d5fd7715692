"""Loading and typing the Kubernetes and Istio objects of a lab."""

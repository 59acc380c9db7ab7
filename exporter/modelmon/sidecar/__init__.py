"""The HTTP sidecar: models POST events, Prometheus scrapes /metrics."""

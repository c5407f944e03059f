"""kubevirt-vss-exporter: Prometheus metrics for KubeVirt guest quiescing and snapshot consistency."""

__version__ = "0.1.0"

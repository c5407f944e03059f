"""Grafana dashboards of kubevirt-vss-exporter and their generator."""

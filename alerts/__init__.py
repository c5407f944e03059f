"""Alerting rules of kubevirt-vss-exporter and the generator of the shipped rule files."""

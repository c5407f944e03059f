"""Conformance with upstream KubeVirt, one module per release line (test_kubevirt_<line>.py).

Each case builds objects in that release's exact shapes with ``harness`` (indication order and values,
error wrapping, conditions, Events, launcher log lines), feeds them through the exporter's fleet, and
asserts level, reason and freeze-error counts. Every case cites the upstream ``path:line`` and tag it
follows; a new release line gets a new module.
"""

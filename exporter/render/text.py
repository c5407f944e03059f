"""Sample lines and family headers, shared by text 0.0.4 and OpenMetrics.

Sample lines are identical in both formats for the gauges and counters we export; only the
headers differ (OpenMetrics names a counter family without ``_total``) and OpenMetrics ends in
``# EOF``. Float formatting comes from prometheus_client so both formats agree with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
EOF_LINE = b"# EOF\n"

_LABEL_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n"})
_HELP_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n"})


def escape_label_value(value: str) -> str:
    return value.translate(_LABEL_ESCAPES)


def format_labels(names: Sequence[str], values: Sequence[str]) -> str:
    if not names:
        return ""
    pairs = ",".join(f'{n}="{escape_label_value(v)}"' for n, v in zip(names, values, strict=True))
    return "{" + pairs + "}"


@dataclass(frozen=True, slots=True)
class FamilyHeader:
    """HELP and TYPE lines of one family, precomputed once per format."""

    name: str
    kind: str
    help: str

    def text(self) -> bytes:
        help_text = self.help.translate(_HELP_ESCAPES)
        return f"# HELP {self.name} {help_text}\n# TYPE {self.name} {self.kind}\n".encode()

    def openmetrics(self) -> bytes:
        name, kind = self.name, self.kind
        if kind == "counter":
            name = name.removesuffix("_total")
        elif kind == "gauge" and name.endswith("_info"):
            # OpenMetrics reserves the _info suffix for its info type; text 0.0.4 has only gauge.
            name, kind = name.removesuffix("_info"), "info"
        help_text = self.help.translate(_LABEL_ESCAPES)
        return f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n".encode()

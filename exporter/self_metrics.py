"""The exporter's own metrics (``kubevirt_vss_exporter_*``) in a registry of their own."""

from __future__ import annotations

import platform
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, disable_created_metrics
from prometheus_client import generate_latest as generate_text
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from exporter import __version__

PREFIX = "kubevirt_vss_exporter_"


@dataclass
class SelfMetrics:
    """One instance per exporter; pass it to whatever records an outcome."""

    registry: CollectorRegistry = field(default_factory=lambda: CollectorRegistry(auto_describe=True))

    def __post_init__(self) -> None:
        # ``*_created`` series double every counter for no use here; client_python toggles this per process.
        disable_created_metrics()
        self._declare_instance_metrics(self.registry)
        self._declare_reflector_metrics(self.registry)
        self._declare_source_metrics(self.registry)
        self._declare_credential_metrics(self.registry)
        self._declare_listener_metrics(self.registry)
        self._declare_shard_and_scrape_metrics(self.registry)

    def _declare_instance_metrics(self, r: CollectorRegistry) -> None:
        # An Info, like every per-VM *_info family: typed "info" in OpenMetrics, a gauge in text 0.0.4.
        self.build_info = Info(PREFIX + "build", "Build information.", registry=r)
        self.build_info.info({"version": __version__, "python_version": platform.python_version()})
        self.vms = Gauge(PREFIX + "vms", "VMs exported by this instance.", registry=r)

    def _declare_reflector_metrics(self, r: CollectorRegistry) -> None:
        self.objects = Gauge(PREFIX + "objects", "Objects in each reflector's cache.", ["resource"], registry=r)
        self.synced = Gauge(
            PREFIX + "synced",
            "1 while every watched namespace of the resource is listed and watched; 0 after an error until the "
            "next successful list.",
            ["resource"],
            registry=r,
        )
        self.lists = Counter(PREFIX + "lists", "List requests by result.", ["resource", "result"], registry=r)
        self.relists = Counter(PREFIX + "relists", "Relists by reason.", ["resource", "reason"], registry=r)
        self.watch_events = Counter(PREFIX + "watch_events", "Watch events received.", ["resource", "type"], registry=r)
        self.watch_errors = Counter(
            PREFIX + "watch_errors", "Failed or broken watch requests.", ["resource", "reason"], registry=r
        )
        self.last_event = Gauge(
            PREFIX + "last_event_timestamp_seconds", "When the last watch event arrived.", ["resource"], registry=r
        )
        self.last_contact = Gauge(
            PREFIX + "last_contact_timestamp_seconds",
            "When the API last answered for the resource: a list, an opened or cleanly closed watch, an event or "
            "bookmark. Staleness is time() minus this.",
            ["resource"],
            registry=r,
        )
        self.malformed = Counter(
            PREFIX + "malformed_objects",
            "Objects skipped or degraded because of malformed fields.",
            ["resource", "problem"],
            registry=r,
        )

    def _declare_source_metrics(self, r: CollectorRegistry) -> None:
        self.guestosinfo_requests = Counter(
            PREFIX + "guestosinfo_requests", "guestosinfo polls by result.", ["result"], registry=r
        )
        self.guestosinfo_duration = Histogram(
            PREFIX + "guestosinfo_request_duration_seconds",
            "guestosinfo request latency.",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.guest_reports = Counter(PREFIX + "guest_reports", "Guest reports by outcome.", ["result"], registry=r)
        self.guest_report_forwards = Counter(
            PREFIX + "guest_report_forwards",
            "Guest reports sent on to the shard that owns the VM, by result.",
            ["result"],
            registry=r,
        )
        self.launcher_log_lines = Counter(
            PREFIX + "launcher_log_lines", "Launcher log lines read, by result.", ["result"], registry=r
        )
        self.launcher_log_streams = Gauge(PREFIX + "launcher_log_streams", "Launcher log streams open.", registry=r)

    def _declare_credential_metrics(self, r: CollectorRegistry) -> None:
        self.authenticated = Gauge(
            PREFIX + "api_authenticated",
            "1 while the API accepts our credentials; 0 after it answered 401 Unauthorized.",
            registry=r,
        )
        self.credential_reloads = Counter(
            PREFIX + "credential_reloads",
            "Credential reloads by trigger (file_changed, unauthorized, tls) and result (changed, unchanged, error).",
            ["trigger", "result"],
            registry=r,
        )
        self.credentials_loaded = Gauge(
            PREFIX + "credentials_loaded_timestamp_seconds", "When the credentials in use were loaded.", registry=r
        )

    def _declare_listener_metrics(self, r: CollectorRegistry) -> None:
        self.http_connections = Gauge(
            PREFIX + "http_connections", "Open connections per listener.", ["listener"], registry=r
        )
        self.http_connections_closed = Counter(
            PREFIX + "http_connections_closed",
            "Connections the exporter closed or refused because of a limit (header_timeout, idle_timeout, "
            "request_timeout, over_limit).",
            ["listener", "reason"],
            registry=r,
        )

    def _declare_shard_and_scrape_metrics(self, r: CollectorRegistry) -> None:
        self.shard_ordinal = Gauge(PREFIX + "shard_ordinal", "This instance's shard.", registry=r)
        self.total_shards = Gauge(PREFIX + "total_shards", "Number of shards.", registry=r)
        self.render_seconds = Gauge(
            PREFIX + "scrape_render_seconds", "Time spent building the last /metrics body.", registry=r
        )

    def render(self, *, openmetrics: bool) -> bytes:
        """Exposition of these metrics without the trailing ``# EOF``."""
        if openmetrics:
            return generate_openmetrics(self.registry).removesuffix(b"# EOF\n")
        return generate_text(self.registry)

"""The baseline: the same exporter with /metrics served by a naive prometheus_client collector.

The collector walks every VM's ``VmState`` on each scrape and builds a metric family per entry of
``FAMILIES`` — Python work per series at scrape time, which is what pre-rendering avoids.
``python -m benchmarks.naive [run options]`` runs the real exporter (``exporter.service.Exporter``:
reflectors, guestosinfo poller, guest-report listener) with that /metrics, for the end-to-end benchmark.
"""

from __future__ import annotations

import asyncio
import gzip
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from exporter import logs
from exporter.cli import build_parser
from exporter.cli.run import read_token
from exporter.kube.client import KubeClient
from exporter.render.families import FAMILIES, IDENTITY
from exporter.render.text import TEXT_CONTENT_TYPE
from exporter.service import Exporter
from exporter.settings import from_args
from exporter.state.records import VmKey, VmState
from exporter.web.metrics import GZIP_LEVEL


class NaiveCollector:
    """Python work per series at scrape time: every family of every VM built again on each collect()."""

    def __init__(self, states: Mapping[VmKey, VmState]) -> None:
        self._states = states

    def collect(self) -> Iterator[Metric]:
        states = list(self._states.values())
        for family in FAMILIES:
            names = [*IDENTITY, *family.labels]
            metric: GaugeMetricFamily | CounterMetricFamily
            if family.kind == "counter":
                metric = CounterMetricFamily(family.name, family.help, labels=names)
            else:
                metric = GaugeMetricFamily(family.name, family.help, labels=names)
            for state in states:
                identity = [state.key.namespace, state.key.name]
                for labels, value in family.samples(state):
                    metric.add_metric([*identity, *labels], value)
            yield metric


def naive_registry(states: Mapping[VmKey, VmState]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NaiveCollector(states))
    return registry


def naive_handler(registry: CollectorRegistry) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The baseline's /metrics: generate_latest per request, gzip when asked (same level as ours)."""

    async def handle(request: web.Request) -> web.Response:
        body = generate_latest(registry)
        headers = {"Content-Type": TEXT_CONTENT_TYPE}
        if "gzip" in request.headers.get("Accept-Encoding", "").lower():
            body = gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)
            headers["Content-Encoding"] = "gzip"
        return web.Response(body=body, headers=headers)

    return handle


class NaiveExporter(Exporter):
    """The exporter with the store replaced by a dict of states that the naive collector walks."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.states: dict[VmKey, VmState] = {}
        self.endpoint.handle = naive_handler(naive_registry(self.states))  # type: ignore[method-assign]

    def _publish(self, key: VmKey, state: VmState | None) -> None:
        if state is None:
            self.states.pop(key, None)
        else:
            self.states[key] = state
        self.poller.observe(key, state)


async def _serve(argv: Sequence[str]) -> None:
    args = build_parser("run").parse_args(["run", *argv])
    logs.configure(log_format=args.log_format or "json", level=args.log_level)
    settings = from_args(args)
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    client = await KubeClient.connect(kubeconfig=settings.kubeconfig, context=settings.context)
    try:
        exporter = NaiveExporter(
            settings, client=client, guest_report_token=read_token(settings.guest_report_token_file)
        )
        await exporter.run(stop)
    finally:
        await client.close()


def main(argv: Sequence[str] | None = None) -> int:
    asyncio.run(_serve(sys.argv[1:] if argv is None else argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A simulated KubeVirt API on loopback, with a seeded fleet acting out guest-agent and freeze failures."""

from exporter.simulator.fleet import GuestTarget
from exporter.simulator.server import Simulator, SimulatorConfig

__all__ = ["GuestTarget", "Simulator", "SimulatorConfig"]

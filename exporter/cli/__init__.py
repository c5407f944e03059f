"""Command-line entry point: parse arguments, dispatch to one subcommand, return its exit code.

Each subcommand module exposes ``add_arguments(parser)`` and ``main(args) -> int``.
``run`` is the default, so ``kubevirt-vss-exporter --demo`` means ``kubevirt-vss-exporter run --demo``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from exporter import __version__

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "run": ("exporter.cli.run", "run the exporter (default); --demo runs it against a simulated KubeVirt API"),
    "simulate": ("exporter.cli.simulate", "serve the simulated KubeVirt API alone"),
    "explain": ("exporter.cli.explain", "classify freeze error text from an argument or standard input"),
    "diagnose": ("exporter.cli.diagnose", "one VM's checks, problems and next steps (from an exporter or the cluster)"),
}


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, unless it has none or its help already says what it is."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.default in (None, False, argparse.SUPPRESS) or "default" in text:
            return text
        return super()._get_help_string(action)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The full parser; only ``command``'s module is imported (others are listed, not loaded)."""
    parser = argparse.ArgumentParser(
        prog="kubevirt-vss-exporter",
        description="Prometheus exporter for KubeVirt guest-agent, filesystem freeze and snapshot consistency.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text, formatter_class=DefaultsHelpFormatter)
        if name == command:
            # Importing lazily keeps `explain` free of the server and client imports.
            module = importlib.import_module(module_name)
            module.add_arguments(sub)
            sub.set_defaults(handler=module.main)
    return parser


def _with_default_command(argv: Sequence[str]) -> list[str]:
    args = list(argv)
    first_positional = next((a for a in args if not a.startswith("-")), None)
    if any(a in ("-h", "--help", "--version") for a in args[:1]):
        return args
    if first_positional not in SUBCOMMANDS:
        return ["run", *args]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _with_default_command(sys.argv[1:] if argv is None else argv)
    command = arguments[0] if arguments and arguments[0] in SUBCOMMANDS else None
    parser = build_parser(command)
    args = parser.parse_args(arguments)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 2
    return int(args.handler(args))

"""``classpulse worker``: joins this machine to the Ray cluster of ``serve --launcher ray``.

It is ``ray start --address ADDR --block`` run with this installation's Python, so the node's
actors import the same classpulse (and the same Ray) as the server; it stays in the foreground
and stops its Ray processes on Ctrl-C or SIGTERM (the node leaves; its classes restart elsewhere).
"""

from __future__ import annotations

import argparse
import os
import sys

from bot.launch import RAY_MISSING, ray_installed

SubParsers = argparse._SubParsersAction  # argparse exposes no public name


def add_worker(subparsers: SubParsers) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="join this machine to a Ray cluster that runs classes (serve --launcher ray)",
        description="Runs `ray start --address ADDRESS --block` with this installation: the "
        "machine's CPUs take classes until this command stops. Needs the ray extra "
        "(pip install 'classpulse[ray]') and the same classpulse version as the server.",
    )
    parser.add_argument("--address", required=True, help="the head node's HOST:PORT")
    parser.add_argument(
        "--num-cpus", type=int, help="CPUs offered to classes (default: all of this machine's)"
    )
    parser.add_argument(
        "--node-ip-address", help="this machine's address as the cluster reaches it"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the ray command instead of running it"
    )
    parser.set_defaults(handler=run_worker)


def worker_command(args: argparse.Namespace) -> list[str]:
    """The ``ray start`` command line ``classpulse worker`` runs."""
    address = args.address.strip()
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"Expected --address HOST:PORT. Received: {address!r}")
    if args.num_cpus is not None and args.num_cpus < 1:
        raise ValueError(f"Expected --num-cpus >= 1. Received: {args.num_cpus}")
    command = [sys.executable, "-m", "ray.scripts.scripts", "start", "--address", address]
    if args.num_cpus is not None:
        command += ["--num-cpus", str(args.num_cpus)]
    if args.node_ip_address:
        command += ["--node-ip-address", args.node_ip_address]
    return [*command, "--disable-usage-stats", "--block"]


def run_worker(args: argparse.Namespace) -> int:
    try:
        command = worker_command(args)
    except ValueError as error:
        print(f"classpulse: {error}", file=sys.stderr)
        return 2
    if args.dry_run:
        print(" ".join(command))
        return 0
    if not ray_installed():
        print(f"classpulse: {RAY_MISSING}", file=sys.stderr)
        return 2
    os.execv(command[0], command)  # Ray's own CLI from here on: its signals, its exit code

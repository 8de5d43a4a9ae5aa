"""Deleting commands say what they will delete and ask first (``--yes`` skips, ``--dry-run`` looks)."""

from __future__ import annotations

import argparse
import sys


def add_confirmation(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--yes", action="store_true", help="delete without asking")
    parser.add_argument(
        "--dry-run", action="store_true", help="only say what would be deleted; delete nothing"
    )


def confirmed(args: argparse.Namespace, what: str) -> bool:
    """Say what will go; ask on a terminal unless ``--yes``; refuse to guess otherwise."""
    print(f"{'would delete' if args.dry_run else 'will delete'} {what}", flush=True)
    if args.dry_run:
        return False
    if args.yes:
        return True
    if not sys.stdin.isatty():
        raise ValueError(
            "Expected --yes to delete without a terminal to ask on (or --dry-run to look). "
            "Received: neither"
        )
    answer = input("Delete? [y/N] ").strip().lower()
    return answer in ("y", "yes")

"""Fixtures for the Ray launcher: the namespace, Janus, PostgreSQL and clips of the other suites.

Re-exported from ``tests/bot`` and ``tests/storage`` (pytest finds fixtures by name in this
module's namespace), so the launcher's class runs on the same real parts as the bot's own tests.
"""

from __future__ import annotations

from tests.bot.conftest import netns, require_janus_stack
from tests.storage.conftest import postgres_server

__all__ = ["netns", "postgres_server", "require_janus_stack"]

"""Where a bot (one class) runs: the launcher boundary.

- ``local`` (the default): in the server's own processes (``bot.web.runtime_bots``), as before;
- ``ray``: each bot is a detached, named Ray actor (``bot.launch.actor``) on any node of a Ray
  cluster; the server relays its state, live feed and figures (``bot.launch.ray_manager``).

Ray is an optional extra (``pip install 'classpulse[ray]'``): nothing here imports it at module
level, so the local launcher and the rest of the product work without it.
"""

from __future__ import annotations

from bot.settings import LAUNCHERS

#: The Ray namespace every classpulse actor is named in (its name is the bot id).
RAY_NAMESPACE = "classpulse"
RAY_MISSING = (
    "Expected Ray for --launcher ray and classpulse worker (pip install 'classpulse[ray]'). "
    "Received: no module named 'ray'"
)


def ray_installed() -> bool:
    """True when the optional ``ray`` extra is installed (without importing it)."""
    import importlib.util

    try:
        return importlib.util.find_spec("ray") is not None
    except (ImportError, ValueError):  # a broken or blocked install counts as none
        return False


__all__ = ["LAUNCHERS", "RAY_MISSING", "RAY_NAMESPACE", "ray_installed"]

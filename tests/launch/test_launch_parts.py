"""The launcher's small parts, without a cluster: settings, ``classpulse worker``, life without
Ray installed, and what ``RayBotManager.start`` refuses before any actor is made."""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.bot_options import DuplicateBotError, OptionError, TooManyBotsError
from bot.cli.worker import worker_command
from bot.launch.ray_manager import RayBotManager
from bot.launch.spec import ActorStatus
from bot.live import LiveFeed
from bot.settings import Settings
from tests.launch.fake_ray import FakeActorClass, FakeCluster

ROOT = Path(__file__).resolve().parents[2]
JANUS = "janus+ws://127.0.0.2:8188/?room=1234&textroom=1234"


def _settings(tmp_path: Path, **changes: Any) -> Settings:
    return Settings.from_env({}, data_dir=str(tmp_path), **changes)


def test_settings_read_the_launcher_from_flags_and_environment(tmp_path: Path) -> None:
    assert _settings(tmp_path).launcher == "local"
    environ = {
        "CLASSPULSE_LAUNCHER": "RAY",
        "CLASSPULSE_RAY_ADDRESS": "127.0.0.1:6379",
        "CLASSPULSE_RAY_CPUS_PER_CLASS": "0.5",
    }
    settings = Settings.from_env(environ, data_dir=str(tmp_path))
    assert (settings.launcher, settings.ray_address, settings.ray_num_cpus) == (
        "ray",
        "127.0.0.1:6379",
        0.5,
    )
    with pytest.raises(ValueError, match=r"Expected a launcher in .*Received: 'kubernetes'"):
        _settings(tmp_path, launcher="kubernetes")
    with pytest.raises(ValueError, match=r"CLASSPULSE_RAY_CPUS_PER_CLASS.*Received: 'two'"):
        Settings.from_env({"CLASSPULSE_RAY_CPUS_PER_CLASS": "two"}, data_dir=str(tmp_path))
    with pytest.raises(ValueError, match=r"ray_num_cpus.*Received: 0"):
        _settings(tmp_path, ray_num_cpus=0)


def test_worker_runs_ray_start_with_this_installation() -> None:
    args = argparse.Namespace(address="10.0.0.5:6379", num_cpus=4, node_ip_address=None)
    command = worker_command(args)
    assert command[:3] == [sys.executable, "-m", "ray.scripts.scripts"]
    assert command[3:] == [
        "start", "--address", "10.0.0.5:6379", "--num-cpus", "4", "--disable-usage-stats", "--block",
    ]  # fmt: skip
    for address in ("10.0.0.5", ":6379", "head:port"):
        with pytest.raises(ValueError, match=rf"HOST:PORT. Received: '{address}'"):
            worker_command(argparse.Namespace(address=address, num_cpus=None, node_ip_address=None))


def _without_ray(code: str, *argv: str) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh interpreter where ``import ray`` fails as if it were not installed."""
    blocker = "import sys; sys.modules['ray'] = None\n"
    return subprocess.run(
        [sys.executable, "-c", blocker + code, *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_without_ray_the_product_imports_and_says_what_to_install() -> None:
    # The launcher modules and the server import without Ray, and never import it on their own.
    done = _without_ray(
        "import bot.launch.ray_manager, bot.launch.actor, bot.cli.serve, bot.web.app\n"
        "assert sys.modules['ray'] is None\n"
        "from bot.launch import ray_installed\n"
        "assert not ray_installed()\n"
    )
    assert done.returncode == 0, done.stderr
    serve = _without_ray(
        "from bot.cli import main; sys.exit(main(sys.argv[1:]))", "serve", "--launcher", "ray"
    )
    assert serve.returncode == 2
    assert "pip install 'classpulse[ray]'" in serve.stderr and "Received: no module" in serve.stderr
    worker = _without_ray(
        "from bot.cli import main; sys.exit(main(sys.argv[1:]))", "worker", "--address", "a:1"
    )
    assert worker.returncode == 2 and "classpulse[ray]" in worker.stderr


def _manager(settings: Settings) -> RayBotManager:
    cluster = FakeCluster()
    return RayBotManager(settings, LiveFeed(), FakeActorClass(cluster), cluster)


@pytest.fixture
def manager(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RayBotManager:
    made = _manager(_settings(tmp_path, max_bots=2))

    async def followed(bot: Any) -> None:  # no cluster here: the actor just runs
        bot.status = ActorStatus("running", bot.spec.meeting_id, bot.spec.teacher_code)

    monkeypatch.setattr(made, "_follow", followed)
    return made


async def test_start_makes_a_named_detached_actor_and_refuses_what_it_cannot_run(
    manager: RayBotManager,
) -> None:
    info = await manager.start(JANUS.replace("1234&", "1234&pin=secret&"), "Ms Abe", {})
    (options, spec), *_ = manager.actor_class.made
    assert options["name"] == info.bot_id == spec.bot_id and options["namespace"] == "classpulse"
    assert options["lifetime"] == "detached" and options["num_cpus"] == 1.0
    assert options["max_restarts"] == 3
    # The actor gets the secret; the API never shows it.
    assert "pin=secret" in spec.meeting_url and "secret" not in info.meeting_url
    assert spec.teacher_code == info.teacher_code and len(spec.meeting_id) == 32
    with pytest.raises(DuplicateBotError):
        await manager.start(JANUS, "Ms Abe", {})
    with pytest.raises(OptionError, match="built-in room") as refused:
        await manager.start("builtin:maths", "Ms Abe", {})
    assert refused.value.field == "meeting_url"
    with pytest.raises(OptionError) as bad_option:
        await manager.start(JANUS.replace("8188", "8189"), "Ms Abe", {"analysis_fps": -1})
    assert bad_option.value.field == "options.analysis_fps"
    await manager.start(JANUS.replace("8188", "8189"), "Ms Abe", {})
    with pytest.raises(TooManyBotsError, match=r"fewer than 2 bots.*Received"):
        await manager.start(JANUS.replace("8188", "8190"), "Ms Abe", {})
    await asyncio.sleep(0)  # the followers' first turn
    assert [bot.state.value for bot in manager.list()] == ["running", "running"]


async def test_the_actor_gets_the_server_default_mode_unless_the_options_name_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = _manager(_settings(tmp_path, max_bots=2).replace(mode="attention"))

    async def followed(bot: Any) -> None:
        bot.status = ActorStatus("running", bot.spec.meeting_id, bot.spec.teacher_code)

    monkeypatch.setattr(made, "_follow", followed)
    await made.start(JANUS, "Ms Abe", {})
    await made.start(JANUS.replace("8188", "8189"), "Ms Abe", {"mode": "engagement"})
    # The actor's runtime starts an inference process only for an engagement bot.
    assert [spec.options["mode"] for _, spec in made.actor_class.made] == [
        "attention",
        "engagement",
    ]

"""Storage fixtures: a temp-file SQLite database and a real PostgreSQL server on a unix socket.

PostgreSQL refuses to run as root, and tests run as root on CI: the server's folder belongs to the
``postgres`` user and ``initdb`` / ``pg_ctl`` run through ``runuser``. Without the binaries the
PostgreSQL half fails under ``CI=true`` and is skipped elsewhere (``./dev.sh test`` installs them).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from storage import Storage
from tests.conftest import require

BACKENDS = ("sqlite", "postgresql")


@dataclass(frozen=True)
class PostgresServer:
    socket_dir: Path
    port: int

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@/{database}?host={self.socket_dir}&port={self.port}"

    def admin(self) -> psycopg.Connection:
        return psycopg.connect(
            host=str(self.socket_dir),
            port=self.port,
            user="postgres",
            dbname="postgres",
            autocommit=True,
        )


def _postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version_key)
    return Path(found[-1]).parent if found else None


def _version_key(path: str) -> int:
    try:
        return int(Path(path).parent.parent.name)
    except ValueError:
        return 0


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    bin_dir = _postgres_bin()
    require(
        bin_dir is not None,
        "PostgreSQL server binaries are missing (/usr/lib/postgresql/*/bin/initdb); "
        "./dev.sh test installs Debian's postgresql",
    )
    assert bin_dir is not None
    as_root = os.geteuid() == 0
    prefix: list[str] = []
    # Under /tmp: short (unix socket paths are limited) and reachable by the postgres user.
    root = Path(tempfile.mkdtemp(prefix="cp-pg-", dir="/tmp" if Path("/tmp").is_dir() else None))
    if as_root:
        require(shutil.which("runuser") is not None, "runuser is missing (util-linux)")
        user = pwd.getpwnam("postgres")
        os.chown(root, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    data, log = root / "data", root / "server.log"
    port = 5432

    def run(*args: str) -> None:
        subprocess.run([*prefix, *args], check=True, capture_output=True, timeout=120)

    try:
        run(
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "-E",
            "UTF8",
            "--no-locale",
        )
        # Unix socket only (no TCP); fsync off: these databases are thrown away.
        options = f"-k {root} -c listen_addresses= -p {port} -c fsync=off -c full_page_writes=off"
        run(
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(log),
            "-w",
            "-t",
            "60",
            "-o",
            options,
            "start",
        )
    except subprocess.CalledProcessError as error:
        server_log = log.read_text() if log.exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(
            f"could not start PostgreSQL: {error.stderr.decode(errors='replace')}\n{server_log}"
        ) from error
    try:
        yield PostgresServer(socket_dir=root, port=port)
    finally:
        subprocess.run(
            [*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
            timeout=60,
            check=False,
        )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of the current backend (no schema yet)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'classpulse.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = f"t_{uuid.uuid4().hex[:12]}"
    with server.admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.url(name)
    finally:
        with server.admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def storage(database_url: str) -> Iterator[Storage]:
    """The database upgraded to the newest schema."""
    opened = Storage.open(database_url)
    try:
        yield opened
    finally:
        opened.close()

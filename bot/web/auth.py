"""Bearer-token auth for every ``/api`` route.

The token is either given by setting (``$CLASSPULSE_API_TOKEN``, kept in memory only) or created
on first start: 32 random bytes, shown once, and stored as its SHA-256 in ``api_token.json`` in
the per-user data folder (mode 0600). A plain hash is enough for a 256-bit random token (no one
can search that space); a slow password hash would only slow every request down.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from bot.settings import Settings
from bot.web.errors import Handler, is_api_path, json_error

TOKEN_FILE = "api_token.json"
_ALGORITHM = "sha256"


@dataclass(frozen=True, slots=True)
class TokenCheck:
    """Knows the token's hash, never the token."""

    digest: bytes
    #: ``"setting"`` or the path of the token file.
    source: str

    def accepts(self, token: str) -> bool:
        return hmac.compare_digest(_digest(token), self.digest)


def ensure_api_token(settings: Settings, *, rotate: bool = False) -> tuple[TokenCheck, str | None]:
    """The check for the configured token, and the new token when this call created one (show
    it to the teacher now: it cannot be read back). ``rotate=True`` replaces a stored token."""
    if settings.api_token is not None:
        if rotate:
            raise ValueError(
                "Expected no new token while the token is given by setting. "
                "Received: --new-token with CLASSPULSE_API_TOKEN set"
            )
        return TokenCheck(_digest(settings.api_token.strip()), "setting"), None
    path = settings.data_dir / TOKEN_FILE
    private_folder(settings.data_dir)
    if path.exists() and not rotate:
        return TokenCheck(_read_digest(path), str(path)), None
    token = secrets.token_urlsafe(32)
    _write_digest(path, _digest(token))
    return TokenCheck(_digest(token), str(path)), token


def private_folder(folder: Path) -> None:
    """The data folder holds the history and the token's hash: 0700, made so or tightened."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    mode = folder.stat().st_mode & 0o777
    if mode & 0o077:
        folder.chmod(mode & 0o700)


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header; ``None`` for anything else."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def auth_middleware(check: TokenCheck) -> web.middleware:  # type: ignore[valid-type]
    """Refuses every ``/api`` request without the right bearer token (401, JSON body)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not is_api_path(request.path):
            return await handler(request)
        token = bearer_token(request.headers.get("Authorization"))
        if token is None or not check.accepts(token):
            received = (
                "no Authorization header"
                if "Authorization" not in request.headers
                else (
                    "a token that does not match"
                    if token is not None
                    else "a header that is not 'Bearer <token>'"
                )
            )
            return json_error(
                401,
                "Expected an 'Authorization: Bearer <token>' header with the API token. "
                f"Received: {received}",
                headers={"WWW-Authenticate": 'Bearer realm="classpulse"'},
            )
        return await handler(request)

    return middleware


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def _read_digest(path: Path) -> bytes:
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        if stored.get("algorithm") != _ALGORITHM:
            raise ValueError(stored.get("algorithm"))
        digest = bytes.fromhex(stored["hash"])
        if len(digest) != hashlib.sha256().digest_size:
            raise ValueError("length")
        return digest
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise ValueError(
            f"Expected the API token file {path} to hold a SHA-256 hash; make a new token with "
            f"'classpulse serve --new-token'. Received: an unreadable file ({type(error).__name__})"
        ) from None


def _write_digest(path: Path, digest: bytes) -> None:
    """Writes the file with mode 0600 from the start, atomically (a crash leaves the old one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    content = json.dumps({"algorithm": _ALGORITHM, "hash": digest.hex(), "created_at": time.time()})
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            out.write(content + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise

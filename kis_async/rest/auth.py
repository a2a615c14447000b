"""Access token, WebSocket approval key and hashkey (protocol doc §2).

KIS allows one token issuance a minute (EGW00133), returns the same token within 6 hours and
alerts the account holder on every live issuance, so the token is issued as rarely as possible:

* in memory, shared by every caller; an ``asyncio.Lock`` makes concurrent refreshes one
  issuance (single flight);
* on disk, keyed by mode and the SHA-256 of the app key: a 0600 file in a 0700 directory,
  replaced atomically (temporary file + ``os.replace``). A cross-process ``flock`` on a
  ``.lock`` file, taken off the event loop, makes two processes on one key issue once: the
  second re-reads the cache after getting the lock. A corrupt or foreign file is ignored and
  replaced, never fatal;
* refreshed ``token_refresh_margin`` seconds before it expires (expiry from
  ``access_token_token_expired`` in KST, falling back to ``expires_in``).

The disk cache is one :class:`TokenStore`; processes on several machines share the token
through another (:class:`kis_async.gateway.RedisTokenStore`, encrypted at rest), passed as
``TokenManager(store=...)``.

EGW00133 (HTTP 403, OAuth shape) waits out the minute once, if that fits in
``issue_wait_max``, then tries again; otherwise it surfaces as
:class:`~kis_async.errors.AuthenticationError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final, Protocol, runtime_checkable

import anyio.to_thread
from pydantic import SecretStr

from kis_async.config import KISConfig
from kis_async.errors import AuthenticationError, BrokerAPIError
from kis_async.models import KST, AuthenticationToken
from kis_async.rest.retry import get_wait_scale

__all__ = [
    "APPROVAL_KEY_LIFETIME",
    "ISSUE_INTERVAL",
    "PostJSON",
    "TokenCache",
    "TokenManager",
    "TokenStore",
    "mask_key",
    "parse_token",
]

logger = logging.getLogger("kis_async.rest")

#: Approval keys are valid for 24 hours (protocol doc §2.3).
APPROVAL_KEY_LIFETIME: Final = 24 * 3600.0
#: KIS allows one token issuance per minute (EGW00133); we wait a little longer.
ISSUE_INTERVAL: Final = 61.0
_CACHE_VERSION: Final = 1
_RATE_LIMITED_ISSUE: Final = "EGW00133"

#: ``(path, json_body) -> decoded body``: an unauthenticated POST with retries and limiting.
PostJSON = Callable[[str, Mapping[str, Any]], Awaitable[Mapping[str, Any]]]


def mask_key(value: str) -> str:
    """First 8 characters plus ``...``: the only form in which a key may be logged."""
    return value[:8] + "..."


def parse_token(body: Mapping[str, Any], *, now: datetime) -> AuthenticationToken:
    """Build a token from a tokenP answer.

    The expiry comes from ``access_token_token_expired`` (``"YYYY-MM-DD HH:MM:SS"``, KST); when
    that is missing or malformed, from ``expires_in`` seconds after ``now``; else 24 hours.

    Raises:
        BrokerAPIError: the answer has no ``access_token``.
    """
    value = body.get("access_token")
    if not isinstance(value, str) or not value.strip():
        raise BrokerAPIError("tokenP answered without an access_token")
    expires_at: datetime | None = None
    stamp = body.get("access_token_token_expired")
    if isinstance(stamp, str) and stamp.strip():
        try:
            expires_at = datetime.strptime(stamp.strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=KST)
        except ValueError:
            expires_at = None
    if expires_at is None:
        try:
            seconds = float(body.get("expires_in") or 86400)
        except (TypeError, ValueError):
            seconds = 86400.0
        expires_at = now + timedelta(seconds=seconds)
    token_type = str(body.get("token_type") or "Bearer").strip() or "Bearer"
    return AuthenticationToken(
        value=SecretStr(value.strip()), token_type=token_type, expires_at=expires_at
    )


def _now_kst() -> datetime:
    return datetime.now(KST)


@runtime_checkable
class TokenStore(Protocol):
    """Where the access token is kept between processes (the disk cache by default).

    Failures to read or write are logged and answered as "no token", never raised: the
    token is then issued (and the store overwritten).
    """

    async def load(self) -> AuthenticationToken | None:
        """The stored token, or None."""

    async def store(self, token: AuthenticationToken) -> None:
        """Keep ``token`` (replacing any other)."""

    async def remove(self, token_value: str | None = None) -> None:
        """Forget the stored token (only if it is ``token_value``, when given)."""

    def locked(self) -> AbstractAsyncContextManager[None]:
        """Hold the cross-process issuance lock for the block (single flight)."""


class TokenCache:
    """The on-disk token cache for one (mode, app key).

    Args:
        directory: the cache directory (created 0700); ``None`` disables the cache.
        config: supplies the mode and the app key (only its SHA-256 is stored).
        lock_timeout: seconds to wait for another process's lock before going on without it.
    """

    def __init__(
        self, directory: Path | None, config: KISConfig, *, lock_timeout: float = 120.0
    ) -> None:
        self._dir = directory
        self._mode = config.mode.value
        self._key_hash = hashlib.sha256(config.app_key.encode()).hexdigest()
        self._lock_timeout = lock_timeout

    @property
    def enabled(self) -> bool:
        """False when the disk cache is disabled."""
        return self._dir is not None

    @property
    def path(self) -> Path | None:
        """The cache file (None when disabled)."""
        if self._dir is None:
            return None
        return self._dir / f"token-{self._mode}-{self._key_hash[:32]}.json"

    async def load(self) -> AuthenticationToken | None:
        """The cached token, or None (missing, corrupt, foreign or unreadable file)."""
        path = self.path
        if path is None:
            return None
        return await anyio.to_thread.run_sync(self._load_sync, path)

    def _load_sync(self, path: Path) -> AuthenticationToken | None:
        try:
            raw = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            logger.warning("token cache unreadable (%s); ignoring it", type(exc).__name__)
            return None
        try:
            data = json.loads(raw)
            if (
                not isinstance(data, dict)
                or data.get("version") != _CACHE_VERSION
                or data.get("mode") != self._mode
                or data.get("app_key_sha256") != self._key_hash
            ):
                logger.warning("token cache file belongs to another key or version; ignoring")
                return None
            expires_at = datetime.fromisoformat(data["expires_at"])
            if expires_at.tzinfo is None:
                raise ValueError("naive expiry")
            value = data["access_token"]
            if not isinstance(value, str) or not value:
                raise ValueError("empty token")
            return AuthenticationToken(
                value=SecretStr(value),
                token_type=str(data.get("token_type") or "Bearer"),
                expires_at=expires_at,
            )
        except (ValueError, KeyError, TypeError) as exc:
            logger.warning("token cache file is corrupt (%s); ignoring it", type(exc).__name__)
            return None

    async def store(self, token: AuthenticationToken) -> None:
        """Write ``token`` atomically; failures are logged, never raised."""
        path = self.path
        if path is None:
            return
        payload = {
            "version": _CACHE_VERSION,
            "mode": self._mode,
            "app_key_sha256": self._key_hash,
            "access_token": token.value.get_secret_value(),
            "token_type": token.token_type,
            "expires_at": token.expires_at.isoformat(),
        }
        await anyio.to_thread.run_sync(self._store_sync, path, json.dumps(payload))

    def _ensure_dir(self, directory: Path) -> None:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            os.chmod(directory, 0o700)

    def _store_sync(self, path: Path, text: str) -> None:
        tmp_name: str | None = None
        try:
            self._ensure_dir(path.parent)
            fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".token-", suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                os.fchmod(handle.fileno(), 0o600)
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp_name, path)
            tmp_name = None
        except OSError as exc:
            logger.warning("could not write the token cache (%s)", type(exc).__name__)
        finally:
            if tmp_name is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp_name)

    async def remove(self, token_value: str | None = None) -> None:
        """Delete the cache file (only if it holds ``token_value``, when given)."""
        path = self.path
        if path is None:
            return
        if token_value is not None:
            cached = await self.load()
            if cached is None or cached.value.get_secret_value() != token_value:
                return
        await anyio.to_thread.run_sync(self._remove_sync, path)

    @staticmethod
    def _remove_sync(path: Path) -> None:
        try:
            path.unlink()
        except FileNotFoundError:
            return
        except OSError as exc:
            logger.warning("could not delete the token cache (%s)", type(exc).__name__)

    @contextlib.asynccontextmanager
    async def locked(self) -> AsyncIterator[None]:
        """Hold the cross-process lock (a no-op when the cache is disabled or unsupported)."""
        path = self.path
        if path is None or sys.platform == "win32":
            yield
            return
        fd = await anyio.to_thread.run_sync(self._lock_sync, path)
        try:
            yield
        finally:
            if fd is not None:
                await anyio.to_thread.run_sync(self._unlock_sync, fd)

    def _lock_sync(self, path: Path) -> int | None:
        if sys.platform == "win32":  # pragma: no cover - guarded by the caller
            return None
        import fcntl  # noqa: PLC0415 - POSIX only

        try:
            self._ensure_dir(path.parent)
            fd = os.open(str(path) + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            logger.warning("token cache lock unavailable (%s); going on", type(exc).__name__)
            return None
        deadline = time.monotonic() + self._lock_timeout
        # Poll with LOCK_NB so the worker thread always ends within the timeout.
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    logger.warning("token cache lock timed out; going on without it")
                    os.close(fd)
                    return None
                time.sleep(0.02)
            except OSError as exc:
                logger.warning("token cache lock failed (%s); going on", type(exc).__name__)
                os.close(fd)
                return None

    @staticmethod
    def _unlock_sync(fd: int) -> None:
        if sys.platform == "win32":  # pragma: no cover
            return
        import fcntl  # noqa: PLC0415 - POSIX only

        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


class TokenManager:
    """Issues, caches, refreshes and revokes the access token; holds the approval key.

    Args:
        config: credentials, mode, cache directory and refresh margin.
        post: an unauthenticated JSON POST with retries and rate limiting.
        now: the wall clock (aware datetimes), injectable for tests.
        sleep: used for the EGW00133 wait, injectable for tests.
        issue_wait_max: the longest EGW00133 wait (seconds, before the wait scale) we accept;
            when waiting out the minute would take longer, AuthenticationError is raised.
        store: where the token is shared between processes; defaults to the disk cache of
            ``config.token_cache_dir``.
    """

    def __init__(
        self,
        config: KISConfig,
        post: PostJSON,
        *,
        now: Callable[[], datetime] = _now_kst,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        issue_wait_max: float = 90.0,
        store: TokenStore | None = None,
    ) -> None:
        self._config = config
        self._post = post
        self._now = now
        self._sleep = sleep
        self._issue_wait_max = issue_wait_max
        self._cache: TokenStore = (
            store if store is not None else TokenCache(config.token_cache_dir, config)
        )
        self._token: AuthenticationToken | None = None
        self._rejected: set[str] = set()
        self._lock = asyncio.Lock()
        self._approval: tuple[str, float] | None = None
        self._approval_lock = asyncio.Lock()
        self.issued = 0
        """Tokens issued by this manager (for tests and diagnostics)."""

    @property
    def cache(self) -> TokenStore:
        """The token store (the disk cache unless another was given)."""
        return self._cache

    def _usable(self, token: AuthenticationToken | None) -> bool:
        return (
            token is not None
            and token.value.get_secret_value() not in self._rejected
            and not token.expires_within(self._config.token_refresh_margin, now=self._now())
        )

    async def token(self) -> AuthenticationToken:
        """A valid token: from memory, the disk cache, or one new issuance (single flight)."""
        current = self._token
        if self._usable(current):
            assert current is not None
            return current
        async with self._lock:
            current = self._token
            if self._usable(current):
                assert current is not None
                return current
            async with self._cache.locked():
                cached = await self._cache.load()
                if self._usable(cached):
                    assert cached is not None
                    logger.debug("access token loaded from the disk cache")
                    self._token = cached
                    return cached
                fresh = await self._issue()
                await self._cache.store(fresh)
            self._token = fresh
            return fresh

    async def _issue(self) -> AuthenticationToken:
        body = {
            "grant_type": "client_credentials",
            "appkey": self._config.app_key,
            "appsecret": self._config.app_secret.get_secret_value(),
        }
        waited = False
        while True:
            try:
                answer = await self._post("/oauth2/tokenP", body)
            except AuthenticationError as exc:
                if exc.msg_cd != _RATE_LIMITED_ISSUE or waited:
                    raise
                if self._issue_wait_max < ISSUE_INTERVAL:
                    logger.warning(
                        "token issuance refused (EGW00133, one per minute) and waiting %.0fs "
                        "exceeds issue_wait_max",
                        ISSUE_INTERVAL,
                    )
                    raise
                waited = True
                logger.warning(
                    "token issuance refused (EGW00133, one per minute); waiting %.0fs",
                    ISSUE_INTERVAL,
                )
                await self._sleep(ISSUE_INTERVAL * get_wait_scale())
                # Another process may have issued (and cached) one meanwhile.
                cached = await self._cache.load()
                if self._usable(cached):
                    assert cached is not None
                    return cached
                continue
            token = parse_token(answer, now=self._now())
            self.issued += 1
            logger.info(
                "access token issued (mode=%s, expires %s)",
                self._config.mode.value,
                token.expires_at.isoformat(),
            )
            return token

    async def invalidate(self, token: AuthenticationToken) -> None:
        """Forget ``token`` after KIS refused it (EGW00121/122/123): memory and disk."""
        value = token.value.get_secret_value()
        self._rejected.add(value)
        if self._token is not None and self._token.value.get_secret_value() == value:
            self._token = None
        await self._cache.remove(value)

    async def revoke(self) -> None:
        """Revoke the current token at KIS (POST /oauth2/revokeP) and forget it."""
        async with self._lock:
            token = self._token or await self._cache.load()
            if token is None:
                logger.debug("revoke_token: no token to revoke")
                return
            value = token.value.get_secret_value()
            try:
                answer = await self._post(
                    "/oauth2/revokeP",
                    {
                        "appkey": self._config.app_key,
                        "appsecret": self._config.app_secret.get_secret_value(),
                        "token": value,
                    },
                )
            except BrokerAPIError:
                # KIS answered (the token is unknown or already dead there): forget it too.
                await self._forget(value)
                raise
            await self._forget(value)
            code = answer.get("code")
            if code is not None and str(code).strip() not in ("200", ""):
                raise BrokerAPIError(
                    f"revokeP answered code {code}",
                    msg=str(answer.get("message") or "").strip() or None,
                )
            logger.info("access token revoked")

    async def _forget(self, value: str) -> None:
        self._token = None
        self._rejected.add(value)
        await self._cache.remove(value)

    async def approval_key(self) -> str:
        """The WebSocket approval key (POST /oauth2/Approval), cached for its lifetime."""
        cached = self._approval
        if cached is not None and self._approval_fresh(cached):
            return cached[0]
        async with self._approval_lock:
            cached = self._approval
            if cached is not None and self._approval_fresh(cached):
                return cached[0]
            answer = await self._post(
                "/oauth2/Approval",
                {
                    "grant_type": "client_credentials",
                    "appkey": self._config.app_key,
                    # KIS names the app secret ``secretkey`` here, unlike every other endpoint.
                    "secretkey": self._config.app_secret.get_secret_value(),
                },
            )
            key = answer.get("approval_key")
            if not isinstance(key, str) or not key.strip():
                raise BrokerAPIError("Approval answered without an approval_key")
            key = key.strip()
            self._approval = (key, time.monotonic())
            logger.info("approval key issued: %s", mask_key(key))
            return key

    def _approval_fresh(self, cached: tuple[str, float]) -> bool:
        age = time.monotonic() - cached[1]
        return age < APPROVAL_KEY_LIFETIME - self._config.token_refresh_margin

    def forget_approval_key(self) -> None:
        """Drop the cached approval key (the next call issues a new one)."""
        self._approval = None

    async def hashkey(self, body: Mapping[str, Any]) -> str:
        """The ``HASH`` of an order body (POST /uapi/hashkey), for the ``hashkey`` header."""
        answer = await self._post("/uapi/hashkey", body)
        value = answer.get("HASH") or answer.get("hash")
        if not isinstance(value, str) or not value.strip():
            raise BrokerAPIError("hashkey answered without a HASH")
        return value.strip()

"""The access token shared through Redis, encrypted at rest, issued once for all processes.

:class:`RedisTokenStore` is a :class:`~kis_async.rest.auth.TokenStore`, like the disk cache,
so :class:`~kis_async.rest.auth.TokenManager` keeps all its logic (single flight in the
process, refresh margin, EGW00133 wait, invalidation) and only the place changes:

* the value is AES-256-GCM encrypted with a key derived (HKDF-SHA256) from the app secret, the
  mode and the app key's hash; the Redis key name is the associated data, so a value copied
  to another key does not decrypt. Whoever reads Redis without the app secret learns nothing;
  a value that does not decrypt (another secret) is ignored and replaced;
* it expires in Redis when the token does;
* issuance is single flight across processes: :meth:`RedisTokenStore.locked` is a Redis lock
  (``SET NX PX`` with a random owner value, renewed while held, released only by its owner),
  so a process that dies holding it blocks the others for at most the lock's lifetime.

Nothing here logs, formats or raises the token or the app secret.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import os
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final
from uuid import uuid4

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import SecretStr

from kis_async.config import KISConfig
from kis_async.models import AuthenticationToken

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisTokenStore"]

logger = logging.getLogger("kis_async.gateway")

_FORMAT: Final = b"v1:"
# Delete KEYS[1] only if it still holds ARGV[1] (compare-and-delete).
_DELETE_IF: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# Extend the lock KEYS[1] by ARGV[2] ms only if ARGV[1] still owns it.
_RENEW_IF: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


def _derive_key(config: KISConfig, app_hash: str) -> bytes:
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=b"kis_async.gateway.token-store.v1",
        info=f"{config.mode.value}:{app_hash}".encode(),
    )
    return hkdf.derive(config.app_secret.get_secret_value().encode())


class RedisTokenStore:
    """The token of one (mode, app key) in Redis, for every process and machine using it.

    Args:
        redis: a ``redis.asyncio.Redis`` client, or a URL; a client made from a URL is closed
            by :meth:`aclose`.
        config: supplies the mode, the app key (only its hash is used in key names) and the
            app secret (the encryption key is derived from it).
        prefix: the Redis key prefix.
        lock_ttl: seconds the issuance lock lives without renewal (a dead holder's lock
            expires after this); it is renewed every third of it while held.
        lock_timeout: seconds to wait for another process's lock before going on without
            it (as the disk cache does).
    """

    def __init__(
        self,
        redis: Redis | str,
        config: KISConfig,
        *,
        prefix: str = "kis_async",
        lock_ttl: float = 15.0,
        lock_timeout: float = 120.0,
    ) -> None:
        if not isinstance(config, KISConfig):
            raise TypeError("RedisTokenStore needs a KISConfig")
        if not lock_ttl > 0 or not lock_timeout > 0:
            raise ValueError("RedisTokenStore lock_ttl and lock_timeout must be positive")
        app_hash = hashlib.sha256(config.app_key.encode()).hexdigest()[:32]
        self._key = f"{prefix}:token:{config.mode.value}:{app_hash}"
        self._lock_key = self._key + ":issuing"
        self._aead = AESGCM(_derive_key(config, app_hash))
        self._lock_ttl = lock_ttl
        self._lock_timeout = lock_timeout
        self._owns = isinstance(redis, str)
        if isinstance(redis, str):
            import redis.asyncio as aioredis  # noqa: PLC0415 - optional dependency

            self._redis: Any = aioredis.from_url(redis)
        else:
            self._redis = redis
        self._delete_if = self._redis.register_script(_DELETE_IF)
        self._renew_if = self._redis.register_script(_RENEW_IF)

    @property
    def key(self) -> str:
        """The Redis key holding the encrypted token."""
        return self._key

    # -- encryption -------------------------------------------------------------------------

    def _seal(self, token: AuthenticationToken) -> bytes:
        payload = json.dumps(
            {
                "access_token": token.value.get_secret_value(),
                "token_type": token.token_type,
                "expires_at": token.expires_at.isoformat(),
            }
        ).encode()
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, payload, self._key.encode())
        return _FORMAT + base64.b64encode(nonce + sealed)

    def _open(self, raw: bytes) -> AuthenticationToken | None:
        if not raw.startswith(_FORMAT):
            logger.warning("shared token in Redis has an unknown format; ignoring it")
            return None
        try:
            blob = base64.b64decode(raw[len(_FORMAT) :], validate=True)
            payload = self._aead.decrypt(blob[:12], blob[12:], self._key.encode())
            data = json.loads(payload)
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
        except InvalidTag:
            logger.warning("shared token in Redis does not decrypt (another app secret?)")
            return None
        except (ValueError, KeyError, TypeError) as exc:
            logger.warning("shared token in Redis is corrupt (%s); ignoring it", type(exc).__name__)
            return None

    # -- the TokenStore contract ------------------------------------------------------------

    async def load(self) -> AuthenticationToken | None:
        """The shared token, or None (missing, undecryptable, corrupt or Redis unreachable)."""
        try:
            raw = await self._redis.get(self._key)
        except Exception as exc:
            logger.warning("shared token store unreachable (%s)", type(exc).__name__)
            return None
        return None if raw is None else self._open(bytes(raw))

    async def store(self, token: AuthenticationToken) -> None:
        """Keep ``token`` until it expires; failures are logged, never raised."""
        remaining = (token.expires_at - datetime.now(UTC)).total_seconds()
        if remaining <= 0:
            return
        try:
            await self._redis.set(self._key, self._seal(token), px=max(1, int(remaining * 1000)))
        except Exception as exc:
            logger.warning("could not write the shared token (%s)", type(exc).__name__)

    async def remove(self, token_value: str | None = None) -> None:
        """Forget the shared token (only if it is ``token_value``, when given)."""
        try:
            if token_value is None:
                await self._redis.delete(self._key)
                return
            raw = await self._redis.get(self._key)
            if raw is None:
                return
            current = self._open(bytes(raw))
            if current is None or current.value.get_secret_value() == token_value:
                await self._delete_if(keys=[self._key], args=[raw])
        except Exception as exc:
            logger.warning("could not delete the shared token (%s)", type(exc).__name__)

    @contextlib.asynccontextmanager
    async def locked(self) -> AsyncIterator[None]:
        """Hold the issuance lock for the block (renewed while held); after
        ``lock_timeout`` seconds of waiting, go on without it (logged)."""
        owner = uuid4().hex
        ttl_ms = max(1, int(self._lock_ttl * 1000))
        deadline = time.monotonic() + self._lock_timeout
        held = False
        while True:
            try:
                held = bool(await self._redis.set(self._lock_key, owner, nx=True, px=ttl_ms))
            except Exception as exc:
                logger.warning("shared token lock unavailable (%s); going on", type(exc).__name__)
                break
            if held:
                break
            if time.monotonic() >= deadline:
                logger.warning("shared token lock timed out; going on without it")
                break
            await asyncio.sleep(0.05)
        renewer = (
            asyncio.get_running_loop().create_task(
                self._renew(owner, ttl_ms), name="kis-async-token-lock-renewal"
            )
            if held
            else None
        )
        try:
            yield
        finally:
            if renewer is not None:
                renewer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await renewer
                try:
                    await self._delete_if(keys=[self._lock_key], args=[owner])
                except Exception as exc:
                    logger.warning("could not release the token lock (%s)", type(exc).__name__)

    async def _renew(self, owner: str, ttl_ms: int) -> None:
        while True:
            await asyncio.sleep(self._lock_ttl / 3)
            try:
                if not await self._renew_if(keys=[self._lock_key], args=[owner, ttl_ms]):
                    return
            except Exception as exc:
                logger.warning("could not renew the token lock (%s)", type(exc).__name__)
                return

    async def aclose(self) -> None:
        """Close the Redis client if this store created it from a URL."""
        if self._owns:
            await self._redis.aclose()

    def __repr__(self) -> str:
        return f"RedisTokenStore(key={self._key!r})"

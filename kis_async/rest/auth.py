"""Access token, WebSocket approval key and hashkey (protocol doc §2).

KIS allows one token issuance a minute (EGW00133), returns the same token within 6 hours and
alerts the account holder on every live issuance, so the token is issued as rarely as possible:

* in memory, shared by every caller; an ``asyncio.Lock`` makes concurrent refreshes one
  issuance (single flight);
* on disk, keyed by mode and the SHA-256 of the app key (:mod:`kis_async.rest.tokencache`:
  a 0600 file in a checked 0700 directory, never through a symbolic link). A cross-process
  ``flock`` makes two processes on one key issue once: the second re-reads the cache after
  getting the lock. A corrupt or foreign file is ignored and replaced, never fatal;
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
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import Any, Final, Protocol, runtime_checkable

from pydantic import SecretStr

from kis_async.config import KISConfig
from kis_async.errors import AuthenticationError, BrokerAPIError
from kis_async.models import KST, AuthenticationToken
from kis_async.rest.retry import get_wait_scale
from kis_async.rest.tokencache import TokenCache
from kis_async.traffic import mask_key

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
_RATE_LIMITED_ISSUE: Final = "EGW00133"

#: ``(path, json_body) -> decoded body``: an unauthenticated POST with retries and limiting.
PostJSON = Callable[[str, Mapping[str, Any]], Awaitable[Mapping[str, Any]]]


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
        # Token values KIS refused (EGW00121/122/123, or revoked), with KIS's code.
        self._rejected: dict[str, str | None] = {}
        # Refused values KIS handed back anyway: never re-issued for again.
        self._reissued: set[str] = set()
        # Revoked values: never loaded from the disk cache (another process may have left
        # one there), but accepted when a new issuance returns one.
        self._revoked: set[str] = set()
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
            and token.value.get_secret_value() not in self._revoked
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
            value = fresh.value.get_secret_value()
            self._revoked.discard(value)
            if value in self._rejected:
                # KIS returns the same token for repeated issuance; after one cool-down it
                # still insists on the refused one. Use it (the caller sends once more and
                # surfaces KIS's answer), and never re-issue for this value again.
                code = self._rejected.pop(value)
                self._reissued.add(value)
                logger.warning(
                    "KIS issued the access token it had refused (%s) again; using it, and "
                    "not re-issuing for it again",
                    code or "refused",
                )
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
            value = token.value.get_secret_value()
            if value in self._rejected and not waited and self._issue_wait_max >= ISSUE_INTERVAL:
                # The same token as the one KIS refused: wait out the one-a-minute cool-down
                # once and ask once more.
                waited = True
                logger.warning(
                    "KIS issued the access token it had refused (%s) again; waiting %.0fs once",
                    self._rejected[value] or "refused",
                    ISSUE_INTERVAL,
                )
                await self._sleep(ISSUE_INTERVAL * get_wait_scale())
                continue
            return token

    async def invalidate(self, token: AuthenticationToken, code: str | None = None) -> bool:
        """Forget ``token`` after KIS refused it with ``code`` (EGW00121/122/123): memory and
        disk.

        Returns:
            False, forgetting nothing, when this value was already refused once and KIS
            issued it again: the caller raises KIS's error instead of re-issuing (at most
            one re-issuance per refused token value, never a loop).
        """
        value = token.value.get_secret_value()
        if value in self._reissued:
            return False
        self._rejected[value] = code
        if self._token is not None and self._token.value.get_secret_value() == value:
            self._token = None
        await self._cache.remove(value)
        return True

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
        self._revoked.add(value)
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

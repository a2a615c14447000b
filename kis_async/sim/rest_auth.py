"""The simulator's OAuth endpoints: access token, revoke, WebSocket approval key, hashkey."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from kis_async.sim.clock import SimClock
from kis_async.sim.rest_common import ApiError, RestBase

__all__ = ["ApprovalDesk", "AuthMixin", "TokenRecord"]


@dataclass
class TokenRecord:
    """An issued access token."""

    token: str
    app_key: str
    issued_mono: float
    expires_mono: float
    expires_at: datetime
    revoked: bool = False


class ApprovalDesk:
    """The WebSocket approval keys of one simulator, or of a paper and a live simulator
    linked as KIS links its two environments (:meth:`KISSimulator.link`): the app keys
    either host's ``/oauth2/Approval`` accepts, with their secrets, and the keys issued."""

    def __init__(self, app_key: str, app_secret: str) -> None:
        #: app key -> app secret, for every app key of the linked simulators.
        self.secrets: dict[str, str] = {app_key: app_secret}
        #: approval key -> (app key, the issuing simulator's clock, expiry on that clock).
        self.keys: dict[str, tuple[str, SimClock, float]] = {}
        self.linked = False

    def absorb(self, other: ApprovalDesk) -> None:
        """Take over ``other``'s app keys and issued keys (``other`` is then dropped)."""
        self.secrets.update(other.secrets)
        self.keys.update(other.keys)
        self.linked = True


class AuthMixin(RestBase):
    """Token, revoke, approval and hashkey endpoints of :class:`kis_async.sim.rest.RestApi`."""

    tokens: dict[str, TokenRecord]
    desk: ApprovalDesk
    _last_issue: dict[str, float]
    _rng: random.Random
    _signing_key: bytes

    def _check_oauth_credentials(self, app_key: Any, secret: Any) -> None:
        if app_key != self.options.app_key:
            self.stats.auth_rejections += 1
            raise ApiError(403, "EGW00103", "유효하지 않은 AppKey입니다.", oauth=True)
        if secret != self.options.app_secret:
            self.stats.auth_rejections += 1
            raise ApiError(403, "EGW00105", "유효하지 않은 AppSecret입니다.", oauth=True)

    async def _token(self, request: Request) -> Response:
        self.stats.token_requests += 1
        body = await self._json_body(request, oauth=True)
        if body.get("grant_type") != "client_credentials":
            raise ApiError(403, "EGW00205", "grant_type이 유효하지 않습니다.", oauth=True)
        app_key = body.get("appkey")
        self._check_oauth_credentials(app_key, body.get("appsecret"))
        now = self.clock.monotonic()
        last = self._last_issue.get(str(app_key))
        if last is not None and now - last < self.options.token_issue_interval:
            self.stats.token_throttle_rejections += 1
            raise ApiError(
                403, "EGW00133", "접근토큰 발급 잠시 후 다시 시도하세요(1분당 1회)", oauth=True
            )
        self._last_issue[str(app_key)] = now
        record = self._reusable_token(str(app_key), now)
        if record is None:
            record = self._issue_token(str(app_key), now)
        # expires_in: the remaining lifetime (a re-issued token keeps its original expiry).
        return JSONResponse(
            {
                "access_token": record.token,
                "access_token_token_expired": record.expires_at.strftime("%Y-%m-%d %H:%M:%S"),
                "token_type": "Bearer",
                "expires_in": max(0, int(record.expires_mono - now)),
            }
        )

    def _reusable_token(self, app_key: str, now: float) -> TokenRecord | None:
        for record in reversed(self.tokens.values()):
            if (
                record.app_key == app_key
                and not record.revoked
                and now < record.expires_mono
                and now - record.issued_mono < self.options.token_reuse_window
            ):
                return record
        return None

    def _issue_token(self, app_key: str, now: float) -> TokenRecord:
        issued = self.clock.now()
        lifetime = self.options.token_lifetime
        expires_at = (issued + timedelta(seconds=lifetime)).replace(microsecond=0)
        header = _b64({"typ": "JWT", "alg": "HS512"})
        payload = _b64(
            {
                "sub": "token",
                "aud": str(_uuid(self._rng)),
                "prdt_cd": "",
                "iss": "unogw",
                "exp": int(expires_at.timestamp()),
                "iat": int(issued.timestamp()),
                "jti": app_key,
            }
        )
        signing_input = f"{header}.{payload}".encode("ascii")
        sig = hmac.new(self._signing_key, signing_input, hashlib.sha512).digest()
        token = f"{header}.{payload}.{base64.urlsafe_b64encode(sig).rstrip(b'=').decode()}"
        record = TokenRecord(token, app_key, now, now + lifetime, expires_at)
        self.tokens[token] = record
        self.stats.tokens_issued += 1
        return record

    def expire_tokens(self) -> int:
        """Expire every issued token now; returns how many were live."""
        now = self.clock.monotonic()
        live = 0
        for record in self.tokens.values():
            if record.expires_mono > now:
                live += 1
                record.expires_mono = now
        return live

    async def _revoke(self, request: Request) -> Response:
        body = await self._json_body(request, oauth=True)
        self._check_oauth_credentials(body.get("appkey"), body.get("appsecret"))
        record = self.tokens.get(str(body.get("token", "")))
        if record is None or record.revoked:
            raise ApiError(403, "EGW00121", "유효하지 않은 token 입니다.", oauth=True)
        record.revoked = True
        self.stats.tokens_revoked += 1
        return JSONResponse({"code": 200, "message": "접근토큰 폐기에 성공하였습니다"})

    @property
    def approval_keys(self) -> dict[str, tuple[str, SimClock, float]]:
        """Approval keys issued (shared with a linked simulator)."""
        return self.desk.keys

    async def _approval(self, request: Request) -> Response:
        body = await self._json_body(request, oauth=True)
        if body.get("grant_type") != "client_credentials":
            raise ApiError(403, "EGW00205", "grant_type이 유효하지 않습니다.", oauth=True)
        # Approval takes the secret as ``secretkey`` (protocol doc §2.3).
        app_key, secret = body.get("appkey"), body.get("secretkey")
        # Which app keys a host issues approval keys for [UNCERTAIN]: KIS documents only the
        # host matching the socket (protocol doc §2.3). The evidence says the key belongs to
        # the app key, not to the host: python-kis (2.0 to 2.1.6; its pykis/api/auth/
        # websocket.py, unchanged since its July 2024 paper-mode rework) asks the paper host
        # for the live socket's key with the live app key, and its tracker, which does report
        # KIS's host checks on business calls (Soju06/python-kis#90: EGW02004, a paper app
        # key on the live host), has no report of that failing; a community measurement
        # (2026-07) saw tokenP succeed across the same mismatch, the check being on business
        # calls only. Implemented: each host of linked simulators issues keys for every app
        # key of the link given its own secret; an unknown app key or a wrong secret is still
        # refused (EGW00103 / EGW00105); each socket takes only keys of its own app key
        # (:meth:`approval_app_key`). Unlinked, a simulator knows only its own app key.
        expected = self.desk.secrets.get(app_key) if isinstance(app_key, str) else None
        if expected is None or not isinstance(app_key, str):
            self.stats.auth_rejections += 1
            raise ApiError(403, "EGW00103", "유효하지 않은 AppKey입니다.", oauth=True)
        if secret != expected:
            self.stats.auth_rejections += 1
            raise ApiError(403, "EGW00105", "유효하지 않은 AppSecret입니다.", oauth=True)
        key = str(_uuid(self._rng))
        while key in self.desk.keys:  # two linked simulators' generators never collide
            key = str(_uuid(self._rng))
        expiry = self.clock.monotonic() + self.options.approval_key_lifetime
        self.desk.keys[key] = (app_key, self.clock, expiry)
        self.stats.approval_keys_issued += 1
        return JSONResponse({"approval_key": key})

    def approval_app_key(self, approval_key: str) -> str | None:
        """The app key an unexpired approval key belongs to, or None; also None for the key
        of a linked simulator's app key (each environment's socket serves its own app key,
        the simulator's choice: KIS's answer to a key of the other environment is not
        documented)."""
        entry = self.desk.keys.get(approval_key)
        if entry is None:
            return None
        app_key, clock, expiry = entry
        if app_key != self.options.app_key or clock.monotonic() >= expiry:
            return None
        return app_key

    async def _hashkey(self, request: Request) -> Response:
        raw = await request.body()
        body = await self._json_body(request)
        self.stats.hashkeys_issued += 1
        return JSONResponse({"BODY": body, "HASH": hashlib.sha256(raw).hexdigest()})


def _b64(obj: dict[str, Any]) -> str:
    raw = json.dumps(obj, separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _uuid(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

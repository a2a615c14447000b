"""The on-disk access-token cache, guarded as ssh guards its key directory.

One JSON file per (mode, app key) in a directory of its own:

* the directory is opened once per operation with ``O_NOFOLLOW | O_DIRECTORY`` and checked
  on that descriptor (no race with a rename): it must be a real directory (never a
  symbolic link), owned by the current user and not writable by group or others. A
  directory that fails is refused with a warning naming it (never the token) and the SDK
  goes on without a disk cache. A directory that passes is narrowed to 0700;
* every file is opened relative to that descriptor with ``O_NOFOLLOW | O_CLOEXEC``: a
  symbolic link planted as the cache file or its ``.lock`` is never followed, so nothing is
  created or read elsewhere (a planted link also makes the directory refused);
* the cache file is 0600 and replaced atomically (temporary file + ``os.replace``); a
  cross-process ``flock`` on the ``.lock`` file, taken off the event loop, makes two
  processes on one key issue once. A corrupt or foreign file is ignored and replaced.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import secrets
import stat
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Final

import anyio.to_thread
from pydantic import SecretStr

from kis_async.config import KISConfig
from kis_async.models import AuthenticationToken

__all__ = ["TokenCache"]

logger = logging.getLogger("kis_async.rest")

_CACHE_VERSION: Final = 1
_POSIX: Final = sys.platform != "win32"
_NOFOLLOW: Final = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC: Final = getattr(os, "O_CLOEXEC", 0)
_DIRECTORY: Final = getattr(os, "O_DIRECTORY", 0)
# A symbolic link opened with O_NOFOLLOW fails with ELOOP (Linux, macOS) or EMLINK (BSD).
_LINK_ERRNOS: Final = frozenset({errno.ELOOP, errno.EMLINK})


class _RefusedError(Exception):
    """The cache directory failed a check; the message says which, never the token."""


class _Dir:
    """The checked cache directory: file operations relative to its descriptor (paths on
    Windows, where there are no descriptors of directories)."""

    def __init__(self, path: Path, fd: int | None) -> None:
        self.path = path
        self.fd = fd

    def open(self, name: str, flags: int, mode: int = 0o600) -> int:
        flags |= _NOFOLLOW | _CLOEXEC
        if self.fd is None:
            return os.open(self.path / name, flags, mode)
        return os.open(name, flags, mode, dir_fd=self.fd)

    def replace(self, src: str, dst: str) -> None:
        if self.fd is None:
            os.replace(self.path / src, self.path / dst)
        else:
            os.replace(src, dst, src_dir_fd=self.fd, dst_dir_fd=self.fd)

    def unlink(self, name: str) -> None:
        if self.fd is None:
            os.unlink(self.path / name)
        else:
            os.unlink(name, dir_fd=self.fd)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _is_link_error(exc: OSError) -> bool:
    return exc.errno in _LINK_ERRNOS


class _LockHandoff:
    """Hands the lock's file descriptor from the worker thread to the waiting task, or back
    to the lock if the task stopped waiting (cancellation) before the thread finished."""

    def __init__(self, lock: Callable[[], int | None], unlock: Callable[[int], None]) -> None:
        self._lock = lock
        self._unlock = unlock
        self._guard = threading.Lock()
        self._abandoned = False
        self.fd: int | None = None

    def acquire(self) -> None:
        """Take the lock (in the worker thread); release it at once if already abandoned."""
        fd = self._lock()
        with self._guard:
            if not self._abandoned:
                self.fd = fd
                return
        if fd is not None:
            self._unlock(fd)

    def abandon(self) -> None:
        """The waiting task is gone: release the lock if the thread already took it."""
        with self._guard:
            self._abandoned = True
            fd, self.fd = self.fd, None
        if fd is not None:
            self._unlock(fd)


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
        self._refused: str | None = None

    @property
    def enabled(self) -> bool:
        """False when the disk cache is disabled, or its directory was refused."""
        return self._dir is not None and self._refused is None

    @property
    def refused(self) -> str | None:
        """Why the cache directory was refused (None while it is not)."""
        return self._refused

    @property
    def path(self) -> Path | None:
        """The cache file (None when disabled)."""
        if self._dir is None:
            return None
        return self._dir / self._name

    @property
    def _name(self) -> str:
        return f"token-{self._mode}-{self._key_hash[:32]}.json"

    # -- the directory ------------------------------------------------------------------------

    def _refuse(self, why: str) -> None:
        if self._refused is None:
            self._refused = why
            logger.warning(
                "token cache directory %s %s; going on without a disk cache", self._dir, why
            )

    def _open_dir(self, *, create: bool) -> _Dir | None:
        """The checked directory, or None (missing and not created, refused, unusable)."""
        directory = self._dir
        if directory is None or self._refused is not None:
            return None
        try:
            if create:
                directory.parent.mkdir(parents=True, exist_ok=True)
                with contextlib.suppress(FileExistsError):
                    os.mkdir(directory, 0o700)
            if not _POSIX:
                return _Dir(directory, None) if directory.is_dir() else None
            try:
                fd = os.open(directory, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC)
            except FileNotFoundError:
                return None
            except OSError as exc:
                if _is_link_error(exc) or directory.is_symlink():
                    raise _RefusedError("is a symbolic link") from exc
                if exc.errno == errno.ENOTDIR:
                    raise _RefusedError("is not a directory") from exc
                raise
            try:
                self._check_dir(fd)
            except BaseException:
                os.close(fd)
                raise
            return _Dir(directory, fd)
        except _RefusedError as refused:
            self._refuse(str(refused))
        except OSError as exc:
            logger.warning("token cache directory unusable (%s); going on", type(exc).__name__)
        return None

    @staticmethod
    def _check_dir(fd: int) -> None:
        info = os.fstat(fd)
        if not stat.S_ISDIR(info.st_mode):
            raise _RefusedError("is not a directory")
        if info.st_uid != os.getuid():
            raise _RefusedError("is owned by another user")
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o022:
            raise _RefusedError(f"is writable by group or others (mode {mode:o})")
        if mode & 0o077:
            with contextlib.suppress(OSError):
                os.fchmod(fd, 0o700)

    # -- load / store / remove ------------------------------------------------------------

    async def load(self) -> AuthenticationToken | None:
        """The cached token, or None (missing, corrupt, foreign or unreadable file)."""
        if not self.enabled:
            return None
        return await anyio.to_thread.run_sync(self._load_sync)

    def _read_sync(self) -> str | None:
        handle = self._open_dir(create=False)
        if handle is None:
            return None
        try:
            fd = handle.open(self._name, os.O_RDONLY)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if _is_link_error(exc):
                self._refuse(f"holds a symbolic link named {self._name}")
            else:
                logger.warning("token cache unreadable (%s); ignoring it", type(exc).__name__)
            return None
        finally:
            handle.close()
        with os.fdopen(fd, "r", encoding="utf-8") as file:
            info = os.fstat(file.fileno())
            if not stat.S_ISREG(info.st_mode) or (_POSIX and info.st_uid != os.getuid()):
                logger.warning("token cache file is not a regular file of ours; ignoring it")
                return None
            return file.read()

    def _load_sync(self) -> AuthenticationToken | None:
        try:
            raw = self._read_sync()
        except (OSError, UnicodeDecodeError) as exc:
            logger.warning("token cache unreadable (%s); ignoring it", type(exc).__name__)
            return None
        if raw is None:
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
        if not self.enabled:
            return
        payload = {
            "version": _CACHE_VERSION,
            "mode": self._mode,
            "app_key_sha256": self._key_hash,
            "access_token": token.value.get_secret_value(),
            "token_type": token.token_type,
            "expires_at": token.expires_at.isoformat(),
        }
        await anyio.to_thread.run_sync(self._store_sync, json.dumps(payload))

    def _store_sync(self, text: str) -> None:
        handle = self._open_dir(create=True)
        if handle is None:
            return
        tmp_name = f".token-{secrets.token_hex(8)}.tmp"
        written = False
        try:
            fd = handle.open(tmp_name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                if _POSIX:
                    os.fchmod(file.fileno(), 0o600)
                file.write(text)
                file.flush()
                os.fsync(file.fileno())
            handle.replace(tmp_name, self._name)
            written = True
        except OSError as exc:
            logger.warning("could not write the token cache (%s)", type(exc).__name__)
        finally:
            if not written:
                with contextlib.suppress(OSError):
                    handle.unlink(tmp_name)
            handle.close()

    async def remove(self, token_value: str | None = None) -> None:
        """Delete the cache file (only if it holds ``token_value``, when given)."""
        if not self.enabled:
            return
        if token_value is not None:
            cached = await self.load()
            if cached is None or cached.value.get_secret_value() != token_value:
                return
        await anyio.to_thread.run_sync(self._remove_sync)

    def _remove_sync(self) -> None:
        handle = self._open_dir(create=False)
        if handle is None:
            return
        try:
            handle.unlink(self._name)
        except FileNotFoundError:
            return
        except OSError as exc:
            logger.warning("could not delete the token cache (%s)", type(exc).__name__)
        finally:
            handle.close()

    # -- the cross-process lock ------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def locked(self) -> AsyncIterator[None]:
        """Hold the cross-process lock (a no-op when the cache is disabled or unsupported)."""
        if not self.enabled or not _POSIX:
            yield
            return
        handoff = _LockHandoff(self._lock_sync, self._unlock_sync)
        try:
            await anyio.to_thread.run_sync(handoff.acquire)
        except BaseException:
            # Cancelled while waiting: the worker thread may still take the lock. Whoever
            # comes second (this task or the thread) releases it, so it is never held for
            # the rest of the process.
            handoff.abandon()
            raise
        fd = handoff.fd
        try:
            yield
        finally:
            if fd is not None:
                await anyio.to_thread.run_sync(self._unlock_sync, fd)

    def _lock_sync(self) -> int | None:
        if sys.platform == "win32":  # pragma: no cover - guarded by the caller
            return None
        import fcntl  # noqa: PLC0415 - POSIX only

        handle = self._open_dir(create=True)
        if handle is None:
            return None
        try:
            fd = handle.open(self._name + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            if _is_link_error(exc):
                self._refuse(f"holds a symbolic link named {self._name}.lock")
            else:
                logger.warning("token cache lock unavailable (%s); going on", type(exc).__name__)
            return None
        finally:
            handle.close()
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

"""The token cache is guarded as ssh guards ~/.ssh: no symlinks followed, no foreign or
group/other-writable directory used; a refused directory means no disk cache, not a failure."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
import respx

from kis_async.rest import tokencache


def _cache_name(client: Any) -> str:
    path = client.auth.cache.path
    assert path is not None
    return str(path.name)


def _refusal(caplog: pytest.LogCaptureFixture, kis: Any, clients: int = 1) -> str:
    """The refusal warning (one per client); it names the directory and carries no secret."""
    lines = [r.getMessage() for r in caplog.records if "token cache directory" in r.getMessage()]
    assert len(lines) == clients, lines
    for secret in (kis.TOKEN, kis.APP_SECRET, kis.APP_KEY):
        assert secret not in caplog.text
    return lines[0]


async def test_dangling_lock_symlink_is_never_followed(
    make_client: Any,
    router: respx.MockRouter,
    kis: Any,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A dangling symlink planted as the .lock does not create its target; the token is still
    issued, the directory is refused and nothing is cached there."""
    route = router.post(kis.TOKEN_PATH).respond(200, json=kis.token_body())
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir(mode=0o700)
    client = make_client(kis.make_config(token_cache_dir=cache_dir))
    name = _cache_name(client)
    target = tmp_path / "elsewhere" / "created-by-the-sdk"
    target.parent.mkdir()
    (cache_dir / (name + ".lock")).symlink_to(target)

    token = await client.token()

    assert token.value.get_secret_value() == kis.TOKEN
    assert route.call_count == 1
    assert not target.exists()
    assert not (cache_dir / name).exists()
    assert client.auth.cache.enabled is False
    message = _refusal(caplog, kis)
    assert str(cache_dir) in message
    assert "symbolic link" in message


async def test_symlinked_cache_dir_is_refused(
    make_client: Any,
    router: respx.MockRouter,
    kis: Any,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A cache dir that is a symlink is neither followed nor chmodded nor written into."""
    router.post(kis.TOKEN_PATH).respond(200, json=kis.token_body())
    real = tmp_path / "real"
    real.mkdir(mode=0o755)
    real.chmod(0o755)
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    client = make_client(kis.make_config(token_cache_dir=link))

    await client.token()
    await make_client(kis.make_config(token_cache_dir=link)).token()

    assert list(real.iterdir()) == []
    assert stat.S_IMODE(real.stat().st_mode) == 0o755
    message = _refusal(caplog, kis, clients=2)
    assert str(link) in message
    assert "symbolic link" in message


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o702])
async def test_group_or_other_writable_dir_is_refused(
    make_client: Any,
    token_route: respx.Route,
    kis: Any,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    *,
    mode: int,
) -> None:
    """A cache dir writable by group or others is refused (left as it is, nothing written)
    and the SDK goes on without a disk cache: every client issues its own token."""
    route = token_route
    cache_dir = tmp_path / "shared"
    cache_dir.mkdir()
    cache_dir.chmod(mode)
    config = kis.make_config(token_cache_dir=cache_dir)

    await make_client(config).token()
    await make_client(config).token()

    assert list(cache_dir.iterdir()) == []
    assert stat.S_IMODE(cache_dir.stat().st_mode) == mode
    assert route.call_count == 2
    assert f"mode {mode:o}" in caplog.text
    messages = [r.getMessage() for r in caplog.records if "token cache directory" in r.getMessage()]
    assert len(messages) == 2  # once per client
    assert all(str(cache_dir) in m for m in messages)
    assert kis.TOKEN not in caplog.text


async def test_dir_owned_by_another_user_is_refused(
    make_client: Any,
    token_route: respx.Route,
    kis: Any,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    *,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A cache dir whose owner is not the current user is refused."""
    cache_dir = tmp_path / "theirs"
    cache_dir.mkdir(mode=0o700)
    monkeypatch.setattr(tokencache.os, "getuid", lambda: os.stat(cache_dir).st_uid + 1)
    client = make_client(kis.make_config(token_cache_dir=cache_dir))

    await client.token()

    assert list(cache_dir.iterdir()) == []
    assert "owned by another user" in _refusal(caplog, kis)


async def test_symlink_planted_as_cache_file_is_not_read(
    make_client: Any,
    router: respx.MockRouter,
    kis: Any,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A symlink planted as the cache file (pointing at a valid-looking token elsewhere) is not
    read: KIS issues the token, and the file it points at is left untouched."""
    route = router.post(kis.TOKEN_PATH).respond(200, json=kis.token_body())
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir(mode=0o700)
    client = make_client(kis.make_config(token_cache_dir=cache_dir))
    name = _cache_name(client)
    planted = tmp_path / "planted.json"
    content = json.dumps(
        {
            "version": 1,
            "mode": "paper",
            "app_key_sha256": name,  # wrong on purpose; a followed link would be read at least
            "access_token": "PLANTED-TOKEN",
            "expires_at": "2099-01-01T00:00:00+09:00",
        }
    )
    planted.write_text(content)
    (cache_dir / name).symlink_to(planted)

    token = await client.token()

    assert token.value.get_secret_value() == kis.TOKEN
    assert route.call_count == 1
    assert planted.read_text() == content
    assert (cache_dir / name).is_symlink()
    assert "symbolic link" in _refusal(caplog, kis)


async def test_own_dir_is_narrowed_and_file_is_private(
    make_client: Any, router: respx.MockRouter, kis: Any, tmp_path: Path
) -> None:
    """A directory of ours that is only readable by others is narrowed to 0700; the cache
    file is 0600 and a second client reuses it."""
    route = router.post(kis.TOKEN_PATH).respond(200, json=kis.token_body())
    cache_dir = tmp_path / "mine"
    cache_dir.mkdir()
    cache_dir.chmod(0o755)
    config = kis.make_config(token_cache_dir=cache_dir)
    client = make_client(config)

    await client.token()
    await make_client(config).token()

    assert route.call_count == 1
    assert stat.S_IMODE(cache_dir.stat().st_mode) == 0o700
    path = client.auth.cache.path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((cache_dir / (path.name + ".lock")).stat().st_mode) == 0o600


async def test_missing_dir_is_created_private(
    make_client: Any, router: respx.MockRouter, kis: Any, tmp_path: Path
) -> None:
    """A missing cache dir (and its parents) is created; the dir itself is 0700."""
    router.post(kis.TOKEN_PATH).respond(200, json=kis.token_body())
    cache_dir = tmp_path / "a" / "b" / "kis_async"
    client = make_client(kis.make_config(token_cache_dir=cache_dir))

    await client.token()

    assert stat.S_IMODE(cache_dir.stat().st_mode) == 0o700
    assert client.auth.cache.path.exists()


async def test_a_task_cancelled_while_waiting_for_the_lock_never_keeps_it(
    kis: Any, tmp_path: Path
) -> None:
    """A caller cancelled (a timeout, a closing broker) while its worker thread waits for the
    cross-process lock leaves the lock free: the thread that takes it late releases it at once,
    so the next issuer gets it without waiting out the lock timeout."""
    config = kis.make_config(token_cache_dir=tmp_path / "cache")
    cache = tokencache.TokenCache(config.token_cache_dir, config, lock_timeout=30.0)

    async def wait_for_lock() -> None:
        async with cache.locked():
            pass

    async with cache.locked():
        waiter = asyncio.create_task(wait_for_lock())
        await asyncio.sleep(0.3)  # its worker thread is polling the held lock
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
    # Released here; the abandoned thread takes the lock on its next poll and gives it back.
    async with asyncio.timeout(5.0), cache.locked():
        lock_path = Path(str(cache.path) + ".lock")
        fd = os.open(lock_path, os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):  # held by us, and only by us
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
    await asyncio.sleep(0.3)  # the abandoned thread polls every 20 ms: give it its chance
    fd = os.open(lock_path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free again: nobody kept it
    finally:
        os.close(fd)

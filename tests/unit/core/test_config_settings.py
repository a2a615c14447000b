"""KISConfig.from_env on pydantic-settings: precedence, .env files, types, and no echoed values."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from kis_async import KISConfig, Mode

KEY = "PSsettings000000000000000000000000000"
SECRET = "settings-secret-" + "x" * 40
REQUIRED = {"KIS_APP_KEY": KEY, "KIS_APP_SECRET": SECRET, "KIS_ACCOUNT_ID": "1234567801"}

# (case, keyword override, environment value, .env value, expected timeout). One field, all
# four layers; each row removes layers from the top. Precedence: kwargs > env > .env > default.
TIMEOUT_ROWS: list[tuple[str, float | None, str | None, str | None, float]] = [
    ("kwargs beat env and .env", 1.0, "2", "3", 1.0),
    ("kwargs beat .env", 1.0, None, "3", 1.0),
    ("kwargs beat env", 1.0, "2", None, 1.0),
    ("kwargs alone", 1.0, None, None, 1.0),
    ("env beats .env", None, "2", "3", 2.0),
    ("env alone", None, "2", None, 2.0),
    (".env alone", None, None, "3", 3.0),
    ("default", None, None, None, 10.0),
    ("a blank env value is unset: .env applies", None, "", "3", 3.0),
    ("a blank .env value is unset: default applies", None, None, "", 10.0),
]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Hermetic: no KIS_* variable of the machine running the tests, and no stray ./.env.
    for name in list(os.environ):
        if name.upper().startswith("KIS_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def _write_env(path: Path, values: dict[str, str]) -> Path:
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("override", "env_value", "file_value", "expected"),
    [row[1:] for row in TIMEOUT_ROWS],
    ids=[row[0] for row in TIMEOUT_ROWS],
)
def test_precedence_kwargs_env_dotenv_defaults(
    tmp_path: Path,
    override: float | None,
    env_value: str | None,
    file_value: str | None,
    expected: float,
) -> None:
    """Each layer wins over the ones below it, for the real process environment."""
    file_values = dict(REQUIRED)
    if file_value is not None:
        file_values["KIS_TIMEOUT"] = file_value
    env_file = _write_env(tmp_path / ".env", file_values)
    env = {} if env_value is None else {"KIS_TIMEOUT": env_value}
    overrides = {} if override is None else {"timeout": override}
    with pytest.MonkeyPatch.context() as mp:
        for name in ("KIS_TIMEOUT", *REQUIRED):
            mp.delenv(name, raising=False)
        for name, value in env.items():
            mp.setenv(name, value)
        from_process = KISConfig.from_env(env_file=env_file, **overrides)
    from_mapping = KISConfig.from_env(env, env_file=env_file, **overrides)
    assert from_process.timeout == expected
    assert from_mapping.timeout == expected


def test_precedence_across_fields(tmp_path: Path) -> None:
    """Layers merge field by field: each field comes from the highest layer that sets it."""
    env_file = _write_env(
        tmp_path / ".env",
        {**REQUIRED, "KIS_MODE": "live", "KIS_HTS_ID": "fromfile", "KIS_MAX_RETRIES": "7"},
    )
    env = {"KIS_MODE": "PAPER", "KIS_HTS_ID": "fromenv", "KIS_APP_KEY": "PSfromenv"}
    cfg = KISConfig.from_env(env, env_file=env_file, hts_id="fromkwargs")
    assert cfg.hts_id == "fromkwargs"  # kwargs
    assert cfg.mode is Mode.PAPER  # env (any case) over .env
    assert cfg.app_key == "PSfromenv"  # env over .env
    assert cfg.max_retries == 7  # .env only
    assert cfg.account_id == "1234567801"  # .env only
    assert cfg.use_hashkey is False  # default
    assert cfg.requests_per_second == 2.0  # default of the mode the layers chose


def test_default_env_file_is_dot_env_for_the_process_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """from_env() reads ./.env; with an explicit mapping no file is read unless named."""
    for name in REQUIRED:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    _write_env(tmp_path / ".env", {**REQUIRED, "KIS_HTS_ID": "dotenv1"})
    assert KISConfig.from_env().hts_id == "dotenv1"
    with pytest.raises(ValueError, match="KIS_APP_KEY"):
        KISConfig.from_env({})
    assert KISConfig.from_env({}, env_file=tmp_path / ".env").hts_id == "dotenv1"
    with pytest.raises(ValueError, match="KIS_APP_KEY"):
        KISConfig.from_env(env_file=None)
    assert KISConfig.from_env(REQUIRED, env_file=tmp_path / "missing.env").hts_id is None


def test_dotenv_syntax(tmp_path: Path) -> None:
    """Comments, `export`, quotes and trailing comments in .env are handled."""
    env_file = tmp_path / ".env"
    env_file.write_text(
        "# a comment\n\n"
        f"export KIS_APP_KEY={KEY}\n"
        f"KIS_APP_SECRET = '{SECRET}'\n"
        'KIS_ACCOUNT_ID="12345678-01"\n'
        "KIS_HTS_ID=plain # trailing comment\n"
        "KIS_TIMEOUT=2.5\n"
        "not a pair\n"
        "OTHER_VAR=ignored\n"
        "KIS_UNKNOWN_FIELD=ignored\n",
        encoding="utf-8",
    )
    cfg = KISConfig.from_env({}, env_file=env_file)
    assert cfg.app_key == KEY
    assert cfg.app_secret.get_secret_value() == SECRET
    assert cfg.account_id == "1234567801"
    assert cfg.hts_id == "plain"
    assert cfg.timeout == 2.5


def test_every_field_is_read_from_its_variable(tmp_path: Path) -> None:
    """Each KISConfig field has a KIS_<FIELD> variable, parsed to the field's type."""
    env = {
        **REQUIRED,
        "KIS_HTS_ID": "hts01",
        "KIS_MODE": "Live",
        "KIS_REST_URL": "http://127.0.0.1:8080/",
        "KIS_WS_URL": "ws://127.0.0.1:8080/tryitout",
        "KIS_TOKEN_CACHE_DIR": str(tmp_path / "tokens"),
        "KIS_TIMEOUT": "4.5",
        "KIS_REQUESTS_PER_SECOND": "7",
        "KIS_MAX_RETRIES": "5",
        "KIS_USE_HASHKEY": "true",
        "KIS_CUSTOMER_TYPE": "B",
        "KIS_TOKEN_REFRESH_MARGIN": "120",
    }
    cfg = KISConfig.from_env(env)
    assert cfg.mode is Mode.LIVE
    assert cfg.hts_id == "hts01"
    assert cfg.rest_url == "http://127.0.0.1:8080"
    assert cfg.token_cache_dir == tmp_path / "tokens"
    assert (cfg.timeout, cfg.requests_per_second, cfg.max_retries) == (4.5, 7.0, 5)
    assert cfg.use_hashkey is True
    assert cfg.customer_type == "B"
    assert cfg.token_refresh_margin == 120.0
    covered = {name.removeprefix("KIS_").lower() for name in env}
    assert covered == {f.name for f in dataclasses.fields(KISConfig)} - set(_fields_added_later())


def _fields_added_later() -> list[str]:
    # Fields other work adds to KISConfig are loaded the same way (the settings model is built
    # from the dataclass); this test names the ones it knows.
    known = {
        "app_key",
        "app_secret",
        "account_id",
        "hts_id",
        "mode",
        "rest_url",
        "ws_url",
        "token_cache_dir",
        "timeout",
        "requests_per_second",
        "max_retries",
        "use_hashkey",
        "customer_type",
        "token_refresh_margin",
    }
    return [f.name for f in dataclasses.fields(KISConfig) if f.name not in known]


def test_none_disables_optional_fields() -> None:
    """`none` sets an optional field to None (no disk cache, no client-side rate limit)."""
    cfg = KISConfig.from_env(
        {**REQUIRED, "KIS_TOKEN_CACHE_DIR": "none", "KIS_REQUESTS_PER_SECOND": "none"}
    )
    assert cfg.token_cache_dir is None
    assert cfg.requests_per_second is None


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("KIS_TIMEOUT", "ten-seconds-please"),
        ("KIS_MAX_RETRIES", "lots-of-retries"),
        ("KIS_USE_HASHKEY", "perhaps-later"),
        ("KIS_MODE", "production-ready"),
        ("KIS_ACCOUNT_ID", "98765432-123"),
        ("KIS_APP_SECRET", "has a space inside"),
    ],
)
def test_errors_name_the_variable_and_never_the_value(variable: str, value: str) -> None:
    """A malformed variable raises ValueError naming the field; the value is not repeated."""
    field = variable.removeprefix("KIS_").lower()
    with pytest.raises(ValueError, match=field) as info:
        KISConfig.from_env({**REQUIRED, variable: value})
    assert value not in str(info.value)
    assert "98765432" not in str(info.value)
    assert info.value.__cause__ is None


def test_repr_of_a_loaded_config_hides_secrets(tmp_path: Path) -> None:
    """A config loaded from a .env file masks its secrets like one built by hand."""
    env_file = _write_env(tmp_path / ".env", {**REQUIRED, "KIS_HTS_ID": "myhtsid1"})
    cfg = KISConfig.from_env({}, env_file=env_file)
    for text in (repr(cfg), str(cfg)):
        assert SECRET not in text
        assert KEY not in text
        assert "12345678" not in text
        assert "myhtsid1" not in text

"""KISConfig: validation, defaults per mode, environment loading, and secret hygiene."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from kis_async import KISConfig, Mode
from kis_async.config import DEFAULT_REST_URLS, DEFAULT_WS_URLS, mask_account

SECRET = "S" * 180
KEY = "PSabcdefghijklmnopqrstuvwxyz01234567"


def make(**overrides: object) -> KISConfig:
    values: dict[str, object] = {"app_key": KEY, "app_secret": SECRET, "account_id": "12345678-01"}
    values.update(overrides)
    return KISConfig(**values)  # type: ignore[arg-type]


def test_account_forms_are_normalised() -> None:
    """Both '12345678-01' and '1234567801' give CANO 12345678 and product code 01."""
    for form in ("12345678-01", "1234567801"):
        cfg = make(account_id=form)
        assert cfg.account_id == "1234567801"
        assert cfg.cano == "12345678"
        assert cfg.product_code == "01"


def test_defaults_follow_the_mode() -> None:
    """URLs and the client-side rate default come from the mode; paper is the default."""
    paper = make()
    assert paper.mode is Mode.PAPER
    assert paper.rest_url == DEFAULT_REST_URLS[Mode.PAPER]
    assert paper.ws_url == DEFAULT_WS_URLS[Mode.PAPER]
    assert paper.requests_per_second == 2.0
    live = make(mode="LIVE")
    assert live.mode is Mode.LIVE
    assert live.rest_url == "https://openapi.koreainvestment.com:9443"
    assert live.ws_url.startswith("ws://ops.koreainvestment.com:21000")
    assert live.requests_per_second is not None
    assert live.requests_per_second < 20


def test_overrides_and_disabling() -> None:
    """URLs can point at a simulator; the limiter and the disk cache can be switched off."""
    cfg = make(
        rest_url="http://127.0.0.1:8080/",
        ws_url="ws://127.0.0.1:8080/tryitout",
        requests_per_second=None,
        token_cache_dir=None,
    )
    assert cfg.rest_url == "http://127.0.0.1:8080"
    assert cfg.requests_per_second is None
    assert cfg.token_cache_dir is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("app_key", ""),
        ("app_key", "   "),
        ("app_secret", ""),
        ("account_id", ""),
        ("account_id", "12345"),
        ("account_id", "1234567890123"),
        ("account_id", "abcdefgh-01"),
        ("account_id", "12345678-1"),
        ("mode", "demo"),
        ("rest_url", "ftp://x"),
        ("ws_url", "http://x"),
        ("timeout", 0),
        ("requests_per_second", -1),
        ("max_retries", -1),
        ("customer_type", "X"),
        ("hts_id", "  "),
    ],
)
def test_bad_values_raise_value_error_naming_the_field(field: str, value: object) -> None:
    """Each bad field raises ValueError naming the field and never echoing the value."""
    with pytest.raises(ValueError, match=field) as info:
        make(**{field: value})
    text = str(info.value)
    if isinstance(value, str) and len(value.strip()) > 2:
        assert value not in text


def test_malformed_account_message_hides_the_digits() -> None:
    """A near-miss account number is not repeated in the error."""
    with pytest.raises(ValueError, match="account_id") as info:
        make(account_id="98765432-123")
    assert "98765432" not in str(info.value)
    assert info.value.__cause__ is None


def test_repr_and_str_hide_secrets() -> None:
    """repr/str show neither the secret, the full key nor the full account."""
    cfg = make(hts_id="myhtsid1")
    for text in (repr(cfg), str(cfg), f"{cfg}"):
        assert SECRET not in text
        assert KEY not in text
        assert "12345678" not in text
        assert "myhtsid1" not in text
    assert cfg.masked_account == "******78-01"
    assert mask_account("bad") == "**********"


def test_config_pickles_without_losing_values() -> None:
    """A config survives pickling (e.g. to a worker process) unchanged."""
    cfg = make()
    clone = pickle.loads(pickle.dumps(cfg))
    assert clone == cfg
    assert clone.app_secret.get_secret_value() == SECRET


def test_from_env_reads_variables_and_overrides_win(tmp_path: Path) -> None:
    """from_env reads KIS_* (mode in any case) and keyword overrides take precedence."""
    env = {
        "KIS_APP_KEY": KEY,
        "KIS_APP_SECRET": SECRET,
        "KIS_ACCOUNT_ID": "1234567801",
        "KIS_HTS_ID": "hts",
        "KIS_MODE": "Live",
        "KIS_REST_URL": "http://127.0.0.1:1",
        "KIS_WS_URL": "ws://127.0.0.1:1/tryitout",
        "KIS_TOKEN_CACHE_DIR": str(tmp_path),
    }
    cfg = KISConfig.from_env(env)
    assert cfg.mode is Mode.LIVE
    assert cfg.hts_id == "hts"
    assert cfg.token_cache_dir == tmp_path
    assert cfg.rest_url == "http://127.0.0.1:1"
    overridden = KISConfig.from_env(env, mode=Mode.PAPER, account_id="87654321-02")
    assert overridden.mode is Mode.PAPER
    assert overridden.product_code == "02"


@pytest.mark.parametrize("missing", ["KIS_APP_KEY", "KIS_APP_SECRET", "KIS_ACCOUNT_ID"])
def test_from_env_missing_variable(missing: str) -> None:
    """A missing required variable is named in the ValueError."""
    env = {"KIS_APP_KEY": KEY, "KIS_APP_SECRET": SECRET, "KIS_ACCOUNT_ID": "1234567801"}
    del env[missing]
    with pytest.raises(ValueError, match=missing):
        KISConfig.from_env(env)


def test_replace_revalidates() -> None:
    """replace() returns a validated copy."""
    cfg = make()
    assert cfg.replace(mode=Mode.LIVE).mode is Mode.LIVE
    with pytest.raises(ValueError, match="account_id"):
        cfg.replace(account_id="1")

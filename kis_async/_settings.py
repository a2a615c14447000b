"""Environment loading for :meth:`kis_async.KISConfig.from_env`, on pydantic-settings.

A settings model is generated from the configuration dataclass's fields (each made optional,
default None), so a field added to ``KISConfig`` is read from ``KIS_<FIELD>`` with no code
here. Only the fields some source sets are handed back; the dataclass applies its own
defaults (some depend on the mode) and does all validation. Imported lazily by ``from_env``.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

from pydantic import ValidationError, create_model, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

__all__ = ["read_settings"]

#: The mapping ``from_env(environ)`` was given, seen by the sources of the current call only.
_CLASSES: dict[tuple[type[Any], str], type[BaseSettings]] = {}
_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("kis_async_environ", default=None)


def read_settings(
    config_cls: type[Any],
    environ: Mapping[str, str] | None,
    env_file: str | os.PathLike[str] | None,
    *,
    prefix: str,
) -> dict[str, Any]:
    """The fields of ``config_cls`` set by the environment (or ``environ``) or ``env_file``,
    parsed to their types; precedence environment > file.

    Raises:
        ValueError: a value does not parse as its field's type. The message names the field
            and the variable, never the value (pydantic's own message would carry it).
    """
    settings_cls = _settings_class(config_cls, prefix)
    token = _ENVIRON.set(environ)
    try:
        loaded = settings_cls(_env_file=None if env_file is None else os.fspath(env_file))
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "?"
        raise ValueError(
            f"{config_cls.__name__}.{name} from {prefix}{name.upper()} is malformed "
            f"({first['type']})"
        ) from None
    finally:
        _ENVIRON.reset(token)
    return {name: getattr(loaded, name) for name in loaded.model_fields_set}


def _settings_class(config_cls: type[Any], prefix: str) -> type[BaseSettings]:
    key = (config_cls, prefix)
    cached = _CLASSES.get(key)
    if cached is None:
        cached = _CLASSES[key] = _build_settings_class(config_cls, prefix)
    return cached


def _build_settings_class(config_cls: type[Any], prefix: str) -> type[BaseSettings]:
    hints = typing.get_type_hints(config_cls)
    fields: dict[str, Any] = {
        f.name: (hints[f.name] | None, None) for f in dataclasses.fields(config_cls)
    }
    base = type(
        "_Base",
        (_SettingsBase,),
        {"model_config": SettingsConfigDict(env_prefix=prefix), "__module__": __name__},
    )
    return create_model(f"{config_cls.__name__}Environment", __base__=base, **fields)


class _MappingSource(PydanticBaseSettingsSource):
    """A settings source reading a given mapping instead of ``os.environ``, with the
    environment source's rules: names in any case, blanks unset, ``none`` is None. (Every
    configuration field has a simple type, so values need no JSON decoding.)"""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self._prefix = str(settings_cls.model_config.get("env_prefix", ""))
        self._values = {k.upper(): v for k, v in environ.items()}

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """The raw value of ``field_name`` (None when unset)."""
        return self._values.get(f"{self._prefix}{field_name}".upper()), field_name, False

    def __call__(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for name, info in self.settings_cls.model_fields.items():
            value, key, _ = self.get_field_value(info, name)
            if value is None or value == "":
                continue
            data[key] = None if value == "none" else value
        return data


class _SettingsBase(BaseSettings):
    model_config = SettingsConfigDict(
        env_ignore_empty=True,
        env_parse_none_str="none",
        extra="ignore",
        frozen=True,
    )

    @field_validator("mode", mode="before", check_fields=False)
    @classmethod
    def _mode_any_case(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        environ = _ENVIRON.get()
        env = env_settings if environ is None else _MappingSource(settings_cls, environ)
        # pydantic-settings' order (first wins): environment > .env; no secrets directory.
        # Keyword overrides are applied by from_env on top, so KISConfig validates them as is.
        return (env, dotenv_settings)

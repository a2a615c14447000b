"""Shared plumbing of the ``kis-async`` command: configuration, output rendering, error lines
and exit codes.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import json
import logging
import sys
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, Final

from pydantic import BaseModel, SecretStr

from kis_async.config import KISConfig
from kis_async.errors import (
    BrokerAPIError,
    BrokerConnectionError,
    BrokerTimeoutError,
    OrderStateUnknownError,
    SubscriptionError,
)
from kis_async.messages import meaning
from kis_async.models import (
    Execution,
    Market,
    OrderType,
    PriceLevel,
    Quote,
    Side,
)
from kis_async.models.stream import QUOTE_ATTRIBUTES

EXIT_OK: Final = 0
EXIT_API: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130

logger = logging.getLogger("kis_async.cli")


class UsageError(Exception):
    """A command-line problem the user must fix (exit code 2)."""


# -- .env and configuration -----------------------------------------------------------------


def _load_config(args: argparse.Namespace) -> KISConfig:
    # pydantic-settings reads KIS_* from the environment and the .env file (the environment
    # wins); a missing default ./.env is fine, a missing --env-file is a usage error.
    env_file = Path(args.env_file) if args.env_file else Path.cwd() / ".env"
    if args.env_file and not env_file.is_file():
        raise UsageError(f"env file not found: {args.env_file}")
    try:
        return KISConfig.from_env(env_file=env_file)
    except ValueError as exc:
        raise UsageError(
            f"configuration error: {exc}. Set KIS_APP_KEY, KIS_APP_SECRET, KIS_ACCOUNT_ID "
            "(and KIS_MODE, KIS_HTS_ID) in the environment or ./.env, or run `kis-async sim` "
            "and use the lines it prints."
        ) from None


# -- output ---------------------------------------------------------------------------------


_EXECUTION_KEYS: Final = (
    "kind",
    "broker_order_id",
    "original_order_id",
    "branch_no",
    "symbol",
    "side",
    "order_type",
    "qty",
    "price",
    "order_qty",
    "time",
    "source",
    "name",
    "exchange",
    "venue",
)


def to_jsonable(value: Any) -> Any:
    """Turn models, dataclasses, enums, Decimals and datetimes into JSON-ready values.

    Decimals become strings (exact), sides and order types their lower-case names, and the
    ``raw`` KIS field maps of stream events are left out.
    """
    if isinstance(value, BaseModel):
        return {name: to_jsonable(getattr(value, name)) for name in type(value).model_fields}
    if isinstance(value, PriceLevel):
        return {"price": to_jsonable(value.price), "qty": value.qty}
    if isinstance(value, Quote | Execution):
        keys = QUOTE_ATTRIBUTES if isinstance(value, Quote) else _EXECUTION_KEYS
        return {key: to_jsonable(getattr(value, key)) for key in keys}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: to_jsonable(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if f.name != "raw"
        }
    if isinstance(value, Side | OrderType | Market):
        return value.name.lower()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, SecretStr):
        return "**********"
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    return value


def won(value: Decimal | int | None) -> str:
    """``71900`` -> ``"71,900"``; keeps a fraction when there is one; ``-`` for None."""
    if value is None:
        return "-"
    dec = Decimal(value)
    if dec == dec.to_integral_value():
        return f"{int(dec):,}"
    return f"{dec:,.2f}"


def _signed(value: Decimal | int | None) -> str:
    if value is None:
        return "-"
    return ("+" if value > 0 else "") + won(value)


class Output:
    """Writes command results as text (rich tables on a terminal) or as JSON."""

    def __init__(self, *, as_json: bool, stream: IO[str] | None = None) -> None:
        self.as_json = as_json
        self.stream = stream if stream is not None else sys.stdout
        self.rich = (not as_json) and _isatty(self.stream) and _rich_available()

    def json(self, value: Any) -> None:
        """One JSON document on one line."""
        self.stream.write(json.dumps(to_jsonable(value), ensure_ascii=False) + "\n")
        self.stream.flush()

    def line(self, text: str = "") -> None:
        """A plain text line."""
        self.stream.write(text + "\n")
        self.stream.flush()

    def table(self, title: str, headers: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
        """A table: rich on a terminal, aligned columns otherwise."""
        body = [list(r) for r in rows]
        if self.rich:
            from rich.console import Console  # noqa: PLC0415  (optional dependency)
            from rich.table import Table  # noqa: PLC0415

            table = Table(title=title)
            for i, head in enumerate(headers):
                table.add_column(head, justify="left" if i == 0 else "right")
            for row in body:
                table.add_row(*row)
            Console(file=self.stream).print(table)
            return
        widths = [_width(h) for h in headers]
        for row in body:
            widths = [max(w, _width(c)) for w, c in zip(widths, row, strict=False)]
        self.line(title)
        heads = zip(headers, widths, strict=False)
        self.line("  ".join(_pad(h, w, left=i == 0) for i, (h, w) in enumerate(heads)))
        for row in body:
            cells = zip(row, widths, strict=False)
            self.line("  ".join(_pad(c, w, left=i == 0) for i, (c, w) in enumerate(cells)))


def _width(text: str) -> int:
    """Terminal columns of ``text``: Korean (wide) characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def _pad(text: str, width: int, *, left: bool) -> str:
    fill = " " * max(0, width - _width(text))
    return text + fill if left else fill + text


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _rich_available() -> bool:
    try:
        import rich  # noqa: F401, PLC0415
    except ImportError:
        return False
    return True


def _describe_error(exc: BaseException) -> tuple[str, dict[str, Any]]:
    """A one-line message and a JSON object for an error, without secrets or traceback."""
    info: dict[str, Any] = {"type": type(exc).__name__}
    if isinstance(exc, BrokerAPIError):
        info |= {"msg_cd": exc.msg_cd, "message": exc.msg, "status_code": exc.status_code}
        info["meaning"] = exc.meaning
        code = f"[{exc.msg_cd}] " if exc.msg_cd else ""
        english = f" ({exc.meaning})" if exc.meaning and exc.msg else ""
        text = f"KIS error {code}{exc.msg or str(exc)}{english}"
    elif isinstance(exc, SubscriptionError):
        ack_meaning = meaning(exc.msg_cd)
        info |= {"msg_cd": exc.msg_cd, "message": str(exc), "meaning": ack_meaning}
        text = f"subscription refused: {exc}" + (f" ({ack_meaning})" if ack_meaning else "")
    elif isinstance(exc, BrokerTimeoutError):
        info |= {"message": str(exc), "request_sent": exc.request_sent}
        text = f"timed out: {exc}" + (
            " (the request may have reached KIS; check `kis-async orders`)"
            if exc.request_sent
            else ""
        )
    elif isinstance(exc, BrokerConnectionError):
        info["message"] = str(exc)
        text = f"cannot reach KIS: {exc} (is `kis-async sim` running / is KIS_REST_URL right?)"
    elif isinstance(exc, OrderStateUnknownError):
        info |= {"message": str(exc), "idempotency_key": exc.idempotency_key}
        text = f"order state unknown: {exc}"
    else:
        info["message"] = str(exc) or type(exc).__name__
        text = info["message"]
    return text, info


def _report_error(exc: BaseException, *, as_json: bool, prefix: str = "error") -> None:
    text, info = _describe_error(exc)
    if as_json:
        sys.stderr.write(json.dumps({"error": info}, ensure_ascii=False) + "\n")
    else:
        sys.stderr.write(f"{prefix}: {text}\n")
    sys.stderr.flush()

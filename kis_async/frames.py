"""Bars as data frames: :func:`bars_to_pandas` and :func:`bars_to_polars`.

pandas and polars are optional (``pip install "kis_async[pandas]"`` / ``[polars]``): this
module imports neither until a function is called, so importing it costs nothing when they
are not installed.

Columns: ``open``, ``high``, ``low``, ``close``, ``turnover`` as float64 and ``volume`` as
int64, indexed (pandas) or keyed (polars, column ``start``) by the bar start in Asia/Seoul.
float64 holds every whole number up to 2**53 (about 9 x 10**15) exactly, so KRX prices and
the turnover of any single bar in won convert without loss; only sums of huge turnovers
could round. Use the :class:`~kis_async.models.Bar` objects where Decimal exactness matters.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final

from kis_async.models import Bar

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl

__all__ = ["COLUMNS", "TIMEZONE", "bars_to_pandas", "bars_to_polars"]

#: The value columns, in order.
COLUMNS: Final = ("open", "high", "low", "close", "volume", "turnover")
#: The zone of the time index.
TIMEZONE: Final = "Asia/Seoul"


def _columns(bars: Iterable[Bar]) -> tuple[list[Any], dict[str, list[Any]]]:
    starts: list[Any] = []
    data: dict[str, list[Any]] = {name: [] for name in COLUMNS}
    for bar in bars:
        starts.append(bar.start)
        data["open"].append(float(bar.open))
        data["high"].append(float(bar.high))
        data["low"].append(float(bar.low))
        data["close"].append(float(bar.close))
        data["volume"].append(int(bar.volume))
        data["turnover"].append(float(bar.turnover))
    return starts, data


def _missing(extra: str) -> ImportError:
    return ImportError(f'{extra} is not installed: pip install "kis_async[{extra}]"')


def bars_to_pandas(bars: Iterable[Bar]) -> pd.DataFrame:
    """A pandas DataFrame of ``bars`` with a DatetimeIndex named ``start`` in Asia/Seoul.

    Raises:
        ImportError: pandas is not installed.
    """
    try:
        import pandas as pd  # noqa: PLC0415  (optional dependency)
    except ImportError as exc:
        raise _missing("pandas") from exc
    starts, data = _columns(bars)
    index = pd.DatetimeIndex(pd.to_datetime(starts, utc=True), name="start").tz_convert(TIMEZONE)
    frame = pd.DataFrame(data, index=index, columns=list(COLUMNS))
    return frame.astype({name: "int64" if name == "volume" else "float64" for name in COLUMNS})


def bars_to_polars(bars: Iterable[Bar]) -> pl.DataFrame:
    """A polars DataFrame of ``bars`` with a ``start`` column (Datetime, Asia/Seoul).

    Raises:
        ImportError: polars is not installed.
    """
    try:
        import polars as pl  # noqa: PLC0415  (optional dependency)
    except ImportError as exc:
        raise _missing("polars") from exc
    starts, data = _columns(bars)
    schema: dict[str, Any] = {"start": pl.Datetime("us", TIMEZONE)}
    schema |= {name: pl.Int64 if name == "volume" else pl.Float64 for name in COLUMNS}
    return pl.DataFrame({"start": starts, **data}, schema=schema)

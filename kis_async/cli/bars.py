"""``kis-async bars``: price history as a table, CSV or JSON, and a terminal chart of closes.

Kept apart from :mod:`kis_async.cli` (which wires it in) so the chart renderer can be read
and tested on its own.
"""

from __future__ import annotations

import argparse
import csv
from collections.abc import Sequence
from decimal import Decimal
from typing import IO, TYPE_CHECKING, Any, Final, Protocol

from kis_async.models import Bar, Interval

if TYPE_CHECKING:
    from kis_async.broker import KISBroker

__all__ = ["add_bars_parser", "cmd_bars", "render_closes"]

CSV_COLUMNS: Final = ("start", "open", "high", "low", "close", "volume", "turnover")
_CHART_HEIGHT: Final = 12
_CHART_WIDTH: Final = 72


class _Out(Protocol):
    as_json: bool
    rich: bool
    stream: IO[str]

    def json(self, value: Any) -> None: ...
    def line(self, text: str = "") -> None: ...
    def table(self, title: str, headers: Sequence[str], rows: Any) -> None: ...


def add_bars_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``bars`` command to the ``kis-async`` sub-parsers."""
    bars = sub.add_parser(
        "bars",
        parents=[common],
        help="price history (bars) with a chart of the closes",
        description="Bars of a symbol, oldest first, with a terminal chart of the closes. "
        "Past-day minute bars need a live account.",
    )
    bars.add_argument("symbol", help="KRX code, e.g. 005930")
    bars.add_argument(
        "--interval",
        default="1d",
        choices=[i.value for i in Interval],
        help="bar length (1d); 1m is a minute, 1M a month",
    )
    bars.add_argument("--start", default=None, help="first day, YYYY-MM-DD (or ISO datetime)")
    bars.add_argument("--end", default=None, help="last day, YYYY-MM-DD (default: now)")
    bars.add_argument("--raw", action="store_true", help="unadjusted prices (원주가)")
    bars.add_argument("--csv", action="store_true", help="CSV on stdout, no chart")
    bars.add_argument("--no-chart", action="store_true", help="table only")


async def cmd_bars(broker: KISBroker, args: argparse.Namespace, out: _Out) -> int:
    """Run ``kis-async bars``."""
    bars = await broker.get_bars(
        args.symbol, args.interval, start=args.start, end=args.end, adjusted=not args.raw
    )
    if out.as_json:
        out.json(bars)
        return 0
    if args.csv:
        write_csv(bars, out.stream)
        return 0
    rows = [
        [_label(bar), *(f"{v:,}" for v in (bar.open, bar.high, bar.low, bar.close)),
         f"{bar.volume:,}", f"{bar.turnover:,}"]
        for bar in bars
    ]  # fmt: skip
    out.table(f"{args.symbol} {args.interval} bars ({len(bars)})",
              ["start", "open", "high", "low", "close", "volume", "turnover"], rows)  # fmt: skip
    if not args.no_chart and bars:
        out.line()
        chart = render_closes(bars)
        if out.rich:
            from rich.console import Console  # noqa: PLC0415  (optional dependency)

            colour = "green" if bars[-1].close >= bars[0].close else "red"
            console = Console(file=out.stream)
            for text in chart:
                console.print(text, style=colour, highlight=False, markup=False)
        else:
            for text in chart:
                out.line(text)
    return 0


def write_csv(bars: Sequence[Bar], stream: IO[str]) -> None:
    """Bars as CSV with a header (prices and turnover as exact decimals)."""
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for bar in bars:
        writer.writerow([bar.start.isoformat(), bar.open, bar.high, bar.low, bar.close,
                         bar.volume, bar.turnover])  # fmt: skip
    stream.flush()


def _label(bar: Bar) -> str:
    if bar.interval.is_intraday:
        return bar.start.strftime("%Y-%m-%d %H:%M")
    return bar.start.date().isoformat()


def render_closes(
    bars: Sequence[Bar], *, width: int = _CHART_WIDTH, height: int = _CHART_HEIGHT
) -> list[str]:
    """A line chart of the closes in text: ``height`` rows of at most ``width`` columns, the
    price axis on the left and the first and last bar's time underneath.

    With more bars than columns each column shows the last close of its slice of bars.
    """
    if not bars:
        return []
    closes = [bar.close for bar in bars]
    columns = min(width, len(closes))
    points = [closes[((i + 1) * len(closes)) // columns - 1] for i in range(columns)]
    top, bottom = max(points), min(points)
    span = top - bottom or Decimal(1)

    def row_of(value: Decimal) -> int:
        return int((top - value) / span * (height - 1) + Decimal("0.5"))

    grid = [[" "] * columns for _ in range(height)]
    previous: int | None = None
    for x, value in enumerate(points):
        y = row_of(value)
        if previous is not None and abs(previous - y) > 1:
            lo, hi = sorted((previous, y))
            for between in range(lo + 1, hi):
                grid[between][x] = "│"
        grid[y][x] = "•"
        previous = y
    labels = [f"{top:,}", f"{bottom:,}"]
    pad = max(len(text) for text in labels)
    lines = []
    for y, cells in enumerate(grid):
        axis = labels[0] if y == 0 else labels[1] if y == height - 1 else ""
        lines.append(f"{axis:>{pad}} ┤" + "".join(cells))
    first, last = _label(bars[0]), _label(bars[-1])
    gap = max(columns - len(first) - len(last), 1)
    lines.append(" " * pad + " └" + "─" * columns)
    lines.append(" " * (pad + 2) + first + " " * gap + last)
    return lines

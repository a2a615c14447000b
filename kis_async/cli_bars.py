"""Old import path of :mod:`kis_async.cli.bars` (the CLI is now a package)."""

from kis_async.cli.bars import add_bars_parser, cmd_bars, render_closes

__all__ = ["add_bars_parser", "cmd_bars", "render_closes"]

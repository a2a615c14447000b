"""Price history: bars over REST, live bars from the trade stream, and the seam between them.

See :mod:`kis_async.history.fetch` (paging, de-duplication, N-minute bars) and
:mod:`kis_async.history.live` (live bars and what "the same bar" means).
"""

from kis_async.history.fetch import MINUTE_HISTORY_DAYS, HistoryFetcher
from kis_async.history.live import LiveBars
from kis_async.history.service import BarStream, History

__all__ = ["MINUTE_HISTORY_DAYS", "BarStream", "History", "HistoryFetcher", "LiveBars"]

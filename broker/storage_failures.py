"""Reports of a storage failure that clients keep retrying past (a full disk): one WARNING per
interval with the count of the failures in between, and one line when the storage works again."""

from __future__ import annotations

import logging
import time

REPORT_INTERVAL_SECONDS = 60


class RepeatedFailure:
    """The reports of one kind of failure, `what` (e.g. "cannot write committed offsets")."""

    def __init__(self, logger: logging.Logger, what: str, interval: float = REPORT_INTERVAL_SECONDS) -> None:
        self._logger = logger
        self._what = what
        self._interval = interval
        self._reported_at: float | None = None
        self._unreported = 0

    def failed(self, detail: object) -> None:
        self._unreported += 1
        now = time.monotonic()
        if self._reported_at is not None and now - self._reported_at < self._interval:
            return
        earlier = self._unreported - 1
        self._logger.warning("%s: %s%s", self._what, detail,
                             f" ({earlier} more since the last report)" if earlier else "")
        self._reported_at = now
        self._unreported = 0

    def succeeded(self) -> None:
        if self._reported_at is not None:
            self._logger.info("storage works again after: %s (%d more failures since the last report)",
                              self._what, self._unreported)
            self._reported_at = None
            self._unreported = 0

"""Progress reporting and logging set-up.

One :class:`Progress` per long step: a bar on stderr when stderr is a terminal, silent
otherwise (logs and CI stay clean), and an optional GDAL-style callback
``progress(fraction, message)`` for programs that embed spectralmatch. A callback returning
``False`` (or 0) cancels the run with :class:`KeyboardInterrupt`, like GDAL's own callbacks.
"""
from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable

logger = logging.getLogger("spectralmatch")

ProgressCallback = Callable[[float, str], object]

# True while the DEBUG level of the logger comes from configure_logging(debug_logs=True).
_debug_set_here = False


def configure_logging(debug_logs: bool = False) -> None:
    """Give the ``spectralmatch`` logger a stderr handler unless the application set one up.

    ``debug_logs=True`` lowers the level to DEBUG; otherwise INFO messages ("Start ...") and
    warnings are shown.
    """
    global _debug_set_here
    root = logging.getLogger()
    if not logger.handlers and not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    if debug_logs:
        logger.setLevel(logging.DEBUG)
        _debug_set_here = True
    else:
        # An earlier debug_logs=True call must not keep later runs verbose; a DEBUG level the
        # application chose itself is kept.
        if (logger.level == logging.NOTSET or logger.level > logging.INFO
                or (_debug_set_here and logger.level == logging.DEBUG)):
            logger.setLevel(logging.INFO)
        _debug_set_here = False


class Progress:
    """Counts finished units of one step and shows them.

    Args:
        total: Number of units (windows, images) of the step.
        description: Short text shown before the bar and passed to the callback.
        callback: Optional GDAL-style ``callback(fraction, message)``.
        bar: Force the terminal bar on or off (default: on when stderr is a terminal).
    """

    def __init__(self, total: int, description: str, *, callback: ProgressCallback | None = None,
                 bar: bool | None = None) -> None:
        self.total = max(int(total), 0)
        self.description = description
        self.callback = callback
        self.done = 0
        self._bar = sys.stderr.isatty() if bar is None else bar
        self._last_draw = 0.0
        self._start = time.monotonic()
        self._report()

    def update(self, units: int = 1) -> None:
        """Mark ``units`` more units as finished."""
        self.done = min(self.total, self.done + units) if self.total else self.done + units
        self._report()

    def _report(self) -> None:
        fraction = self.done / self.total if self.total else 1.0
        if self.callback is not None:
            keep_going = self.callback(fraction, self.description)
            if keep_going is not None and not keep_going:
                raise KeyboardInterrupt(f"cancelled by the progress callback during "
                                        f"'{self.description}'")
        if self._bar:
            now = time.monotonic()
            if now - self._last_draw >= 0.1 or self.done >= self.total:
                self._last_draw = now
                width = 30
                filled = int(round(width * fraction))
                elapsed = now - self._start
                sys.stderr.write(f"\r{self.description[:40]:<40} [{'#' * filled}{'.' * (width - filled)}]"
                                 f" {self.done}/{self.total} {elapsed:6.1f}s")
                sys.stderr.flush()

    def close(self) -> None:
        if self._bar:
            sys.stderr.write("\n")
            sys.stderr.flush()
            self._bar = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def scaled_callback(callback: ProgressCallback | None, start: float,
                    span: float) -> ProgressCallback | None:
    """A callback reporting ``start + span·fraction`` to ``callback`` (one step of several)."""
    if callback is None:
        return None
    return lambda fraction, message: callback(start + span * fraction, message)

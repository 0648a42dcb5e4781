"""A small progress bar counting written blocks: done / total, rate, ETA."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

__all__ = ["BlockProgress"]


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:d}:{minutes:02d}:{secs:02d}"


def _jupyter_display():
    """IPython's ``display`` when running in a Jupyter kernel, else None."""
    shell = sys.modules.get("IPython") and sys.modules["IPython"].get_ipython()
    if shell is None or type(shell).__name__ != "ZMQInteractiveShell":
        return None
    from IPython.display import display

    return display


class _HTMLLine:
    """Draws the line as an HTML progress bar updated in place in a notebook."""

    def __init__(self, display):
        from IPython.display import HTML

        self._html = HTML
        self._handle = display(HTML(""), display_id=True)

    def draw(self, line: str, done: int, total: int) -> None:
        text = line.split("] ", 1)[-1].replace("<", "&lt;")
        self._handle.update(self._html(
            f'<progress value="{done}" max="{max(total, 1)}" style="width: 20em"></progress>'
            f" <code>{text}</code>"
        ))


class BlockProgress:
    """Counts blocks as they are written and redraws one line.

    In a terminal (or any stream) the line is redrawn with a carriage
    return; in a Jupyter notebook it is an HTML progress bar updated in
    place.  Redraws at most ``interval`` seconds apart, and once at the end.

    Parameters
    ----------
    total : int
        Blocks to write.
    stream : file, optional
        Where to draw (default ``sys.stderr``).
    width : int, optional
        Bar width in characters.
    unit : str, optional
        What is counted: ``"blocks"`` (default), or ``"tiles"`` (the output's
        tiles at full resolution, for outputs encoded tile by tile).

    Examples
    --------
    >>> import io
    >>> out = io.StringIO()
    >>> bar = BlockProgress(4, stream=out, interval=0)
    >>> for _ in range(4):
    ...     bar.update()
    >>> bar.close()
    >>> "4/4 blocks" in out.getvalue()
    True
    """

    def __init__(self, total: int, *, stream: TextIO | None = None, width: int = 30,
                 interval: float = 0.2, label: str = "", unit: str = "blocks"):
        self.total = total
        self.unit = unit
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.interval = interval
        self.label = label
        self._start = time.monotonic()
        self._first: float | None = None  # when the first block arrived
        self._first_done = 0
        self._last = -1.0
        self._lock = threading.Lock()
        self._closed = False
        display = _jupyter_display() if stream is None else None
        self._html = _HTMLLine(display) if display is not None else None

    def update(self, n: int = 1) -> None:
        with self._lock:
            now = time.monotonic()
            self.done += n
            if self._first is None:  # the rate counts the blocks after the first
                self._first, self._first_done = now, self.done
            if now - self._last >= self.interval or self.done >= self.total:
                self._last = now
                self._draw(now)

    def line(self, now: float | None = None) -> str:
        now = time.monotonic() if now is None else now
        elapsed = max(now - self._start, 1e-9)
        if self._first is not None and self.done > self._first_done and now > self._first:
            rate = (self.done - self._first_done) / (now - self._first)
        else:
            rate = 0.0
        fraction = self.done / self.total if self.total else 1.0
        filled = int(self.width * fraction)
        bar = "#" * filled + "-" * (self.width - filled)
        if self.done >= self.total:
            eta = f"in {_clock(elapsed)}"
        elif rate > 0:
            eta = f"ETA {_clock((self.total - self.done) / rate)}"
        else:
            eta = "ETA ?"
        prefix = f"{self.label} " if self.label else ""
        unit = self.unit
        return f"{prefix}[{bar}] {self.done}/{self.total} {unit} {rate:.1f} {unit}/s {eta}"

    def _draw(self, now: float) -> None:
        if self._html is not None:
            self._html.draw(self.line(now), self.done, self.total)
            return
        self.stream.write("\r" + self.line(now))
        self.stream.flush()

    def close(self, then: str | None = None) -> None:
        """Draw the last state and end the line; ``then`` says what comes next."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._last < 0 or self.done < self.total:
                self._draw(time.monotonic())
            if self._html is not None:
                if then:
                    self._html.draw(self.line() + f" - {then}...", self.done, self.total)
                return
            self.stream.write("\n" + (f"{self.label}: {then}...\n" if then else ""))
            self.stream.flush()

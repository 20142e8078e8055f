"""A progress bar with an ETA for long library stages (encoding a factor grid, the IWAE estimate).

On a terminal the line is redrawn in place (at most every `interval` seconds); otherwise a line is
printed about every 10% and once at the end, so logs stay short. The remaining time is estimated
from the work done after the first update (which includes compiling the step), as Keras's
`Progbar` does. Stages shorter than `delay` seconds print nothing. Output goes to stderr by default; `quiet=True` turns it off (library use).
"""

import sys
import time
from typing import Optional, TextIO

__all__ = ["Progress", "bar_line", "write_line"]


def bar_line(fraction: float, elapsed: float, eta: Optional[float], final: bool,
             width: int = 24) -> str:
  """"[=====.....]  42% 12s<17s": the bar, the percentage, elapsed and remaining seconds."""
  filled = int(round(width * fraction))
  bar = "=" * filled + "." * (width - filled)
  timing = (f"{elapsed:.0f}s" if final else
            f"{elapsed:.0f}s<{eta:.0f}s" if eta is not None else f"{elapsed:.0f}s<?")
  return f"[{bar}] {100 * fraction:3.0f}% {timing}"


def write_line(stream: TextIO, line: str, tty: bool) -> None:
  """Redraws `line` in place on a terminal, or prints it as a new line otherwise."""
  if tty:
    stream.write("\r" + line[:200] + "\x1b[K")
  else:
    stream.write(line + "\n")
  stream.flush()


class Progress:
  """Progress of one stage: `update(done)` after each step, `close()` at the end.

  Args:
    label: what is being done, e.g. "encoding 737280 factor combinations".
    total: units of work in the stage (images, examples).
    stream: output stream (default stderr).
    quiet: print nothing.
    interval: minimum seconds between redraws on a terminal.
    delay: draw nothing before this many seconds (short stages print no bar at all).
  """

  def __init__(self, label: str, total: int, stream: Optional[TextIO] = None,
               quiet: bool = False, interval: float = 0.5, delay: float = 3.0):
    self.label = label
    self.total = max(1, int(total))
    self.stream = stream or sys.stderr
    self.quiet = quiet
    self.interval = interval
    self.delay = delay
    self._drawn = False
    self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
    self._start = time.monotonic()
    self._first = None  # (time, done) at the first update.
    self._last_draw = 0.0
    self._last_decile = 0
    self._closed = False
    self.done = 0

  def eta(self, now: Optional[float] = None) -> Optional[float]:
    """Seconds left, from the rate after the first update (None before two updates)."""
    now = time.monotonic() if now is None else now
    if self._first is None or self.done <= self._first[1]:
      return None
    t0, d0 = self._first
    return (now - t0) / (self.done - d0) * (self.total - self.done)

  @property
  def elapsed(self) -> float:
    return time.monotonic() - self._start

  def update(self, done: int):
    """Records that `done` units (cumulative) are finished and redraws when due."""
    now = time.monotonic()
    self.done = min(int(done), self.total)
    if self._first is None:
      self._first = (now, self.done)
    if self.quiet or self._closed or now - self._start < self.delay:
      return
    if self.tty:
      if now - self._last_draw < self.interval:
        return
    else:
      decile = int(10 * self.done / self.total)
      if decile == self._last_decile or self.done >= self.total:
        return  # The final line is printed by close().
      self._last_decile = decile
    self._last_draw = now
    self._draw(now)

  def close(self):
    """Prints the final line (with the stage's wall time) if a bar was drawn."""
    if self.quiet or self._closed or not self._drawn:
      self._closed = True
      return
    self._closed = True
    self._draw(time.monotonic(), final=True)
    if self.tty:
      self.stream.write("\n")
    self.stream.flush()

  def _draw(self, now, final=False):
    self._drawn = True
    line = f"  {self.label} " + bar_line(self.done / self.total, now - self._start,
                                         self.eta(now), final)
    write_line(self.stream, line, self.tty)

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()
    return False

"""Progress on a terminal, weighted by where the time goes, and the same events for listeners.

A bar shows on stderr when interactive (silent under CI or when output is redirected). Long work made of a
few unequal steps names each phase as it starts and, given ``weights`` (the phases' measured times on the
demo settings), advances in proportion to time rather than step count, so the bar's estimate of what is
left is honest. Every event also reaches the functions registered with ``listen``, interactive or not: a
test reads them to check that each phase reports.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

__all__ = ["interactive", "Progress", "ProgressEvent", "listen"]


@dataclass(frozen=True)
class ProgressEvent:
    """One step of progress: ``kind`` is "start", "phase", "update", "total" or "end"; ``done`` and ``total``
    count steps, or phases for a phased bar (a fraction for a phase under way)."""

    kind: str  #: "start", "phase", "update", "total" or "end"
    desc: str  #: what is running, in words
    done: float  #: steps (or phases) done; a fraction for a phase under way
    total: int  #: steps (or phases) in all


_LISTENERS: list[Callable[[ProgressEvent], None]] = []


@contextmanager
def listen() -> Iterator[list[ProgressEvent]]:
    """Collect every progress event raised inside the block (in this process), in order.

    Yields
    ------
    list of ProgressEvent
        Filled as the events come.
    """
    events: list[ProgressEvent] = []
    _LISTENERS.append(events.append)
    try:
        yield events
    finally:
        _LISTENERS.remove(events.append)


def _emit(kind: str, desc: str, done: float, total: int) -> None:
    for fn in list(_LISTENERS):
        fn(ProgressEvent(kind, desc, done, total))


def interactive() -> bool:
    """True when stderr is a terminal and the CI environment variable is not set (progress bars are then drawn)."""
    return sys.stderr.isatty() and not os.environ.get("CI")


class Progress:
    """A tqdm bar on stderr when interactive, otherwise nothing; events to ``listen``ers always.

    Parameters
    ----------
    total : int
        Number of steps (or phases).
    desc : str
        What runs first.
    quiet : bool
        No bar (listeners still hear the events).
    weights : sequence of float, optional
        For a phased bar, each phase's share of the time (measured seconds on the demo settings): the bar then
        shows the share of the time done, not the count of phases.
    """

    def __init__(self, total: int, desc: str, quiet: bool = False, weights: Sequence[float] | None = None):
        self._bar = None
        self._total, self._desc = int(total), desc
        self._cum: list[float] | None = None
        if weights is not None:
            w = [max(float(x), 0.0) for x in weights[: self._total]]
            s = sum(w) or 1.0
            self._cum = [100.0 * sum(w[:i]) / s for i in range(len(w) + 1)]
        if not quiet and interactive():
            from tqdm import tqdm

            fmt = "{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]" if self._cum is not None else None
            self._bar = tqdm(total=100 if self._cum is not None else total, desc=desc, file=sys.stderr, leave=False, bar_format=fmt)
        _emit("start", desc, 0, self._total)

    def _position(self, done: float) -> float:
        """The bar's position after ``done`` steps; a phased bar takes fractions (6.5: half of phase 7 done)."""
        if self._cum is None:
            return done
        i = min(max(int(done), 0), len(self._cum) - 1)
        part = min(max(done - i, 0.0), 1.0) if i + 1 < len(self._cum) else 0.0
        return self._cum[i] + part * (self._cum[i + 1] - self._cum[i]) if part else self._cum[i]

    def update_to(self, done: int) -> None:
        """Move the bar to ``done`` steps (a fraction for a phase under way) and tell the listeners.

        Parameters
        ----------
        done : int or float
            Steps done.
        """
        if self._bar is not None:
            self._bar.update(self._position(done) - self._bar.n)
        _emit("update", self._desc, done, self._total)

    def set_total(self, total: int) -> None:
        """The number of steps, once known (e.g. after a scenario is built).

        Parameters
        ----------
        total : int
        """
        self._total = int(total)
        if self._bar is not None and self._cum is None:
            self._bar.total = total
            self._bar.refresh()
        _emit("total", self._desc, 0, self._total)

    def phase(self, done: float, desc: str) -> None:
        """Name the phase now running (``done`` phases finished; a fraction for a phase under way): for work
        made of a few long steps.

        Parameters
        ----------
        done : float
            Phases finished (6.5: half of phase 7 done).
        desc : str
            The phase now running, in words.
        """
        self._desc = desc
        if self._bar is not None:
            self._bar.update(self._position(done) - self._bar.n)
            self._bar.set_description(desc)  # shown at once: a phase may take minutes
        _emit("phase", desc, done, self._total)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.close()
        _emit("end", self._desc, self._total, self._total)

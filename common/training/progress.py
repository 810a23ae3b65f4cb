"""What a training run prints: a tqdm bar on a terminal, else a log line every few steps."""

from __future__ import annotations

import sys
from typing import Any


class Progress:
    """Log lines and the progress bar of one run (silent on ranks other than 0).

    Args:
        name: the run's name (the bar's label).
        is_main: whether this process prints.
        bar: show a tqdm bar when stderr is a terminal.
        log_interval: steps between log lines (``<= 0``: none).
    """

    def __init__(self, name: str, *, is_main: bool, bar: bool, log_interval: int) -> None:
        self.name = name
        self.is_main = is_main
        self.want_bar = bar
        self.log_interval = log_interval
        self._bar: Any = None

    def log(self, message: str) -> None:
        """Print one line (through the bar when it is shown)."""
        if not self.is_main:
            return
        if self._bar is not None:
            self._bar.write(message)
        else:
            print(message, flush=True)

    def log_due(self, step: int) -> bool:
        """Whether ``step`` gets a log line."""
        return self.log_interval > 0 and step % self.log_interval == 0

    def open(self, initial: int, target: int) -> None:
        """Show the bar (on a terminal) for steps ``initial`` to ``target``."""
        self._bar = None
        if not (self.is_main and self.want_bar and sys.stderr.isatty()):
            return
        from tqdm.auto import tqdm

        bar = tqdm(total=target, initial=initial, desc=self.name, dynamic_ncols=True)
        if bar.disable:  # tqdm turned itself off (e.g. TQDM_DISABLE): log lines instead
            bar.close()
        else:
            self._bar = bar

    def close(self) -> None:
        """Remove the bar."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def step(
        self, step: int, target: int, stats: dict[str, Any], tok_per_s: float, elapsed: float
    ) -> None:
        """Report optimizer step ``step`` (``stats``: ``loss``, ``lr``, ``grad_norm``)."""
        if not self.is_main:
            return
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix(
                loss=f"{stats['loss']:.4f}",
                lr=f"{stats['lr']:.2e}",
                tok_s=f"{tok_per_s:,.0f}",
                refresh=False,
            )
        elif self.log_due(step):
            self.log(
                f"step {step}/{target} | loss {stats['loss']:.4f} | lr {stats['lr']:.2e} | "
                f"grad norm {stats['grad_norm']:.3f} | {tok_per_s:,.0f} tok/s | {elapsed:.0f}s"
            )

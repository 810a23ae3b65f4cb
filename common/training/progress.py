"""What a training run reports: a tqdm bar on a terminal, else a log line every few steps, and the
summary ``Trainer.train`` returns."""

from __future__ import annotations

import sys
from typing import Any

from common.training.records import count_parameters


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


def run_summary(trainer: Any, *, finished: bool, samples: list[str]) -> dict[str, Any]:
    """What ``Trainer.train`` returns: the run's name, folders, progress, last and best
    metrics, samples, size and device."""
    return {
        "experiment_name": trainer.experiment_name,
        "checkpoint_dir": str(trainer.checkpoint_dir),
        "last_checkpoint": str(trainer.last_checkpoint) if trainer.last_checkpoint else None,
        "step": trainer.step,
        "tokens_seen": trainer.tokens_seen,
        "elapsed_s": trainer.elapsed(),
        **{k: trainer.last_metrics.get(k) for k in ("train_loss", "val_loss", "val_perplexity")},
        "val_bits_per_byte": trainer.last_metrics.get("val_bits_per_byte"),
        "val_floor_bits_per_byte": trainer.last_metrics.get("val_floor_bits_per_byte"),
        "val_gap_bits_per_byte": trainer.last_metrics.get("val_gap_bits_per_byte"),
        "best_val_loss": trainer.state.best_val_loss,
        "best_val_step": trainer.best_val_step,
        "samples": samples,
        "num_parameters": count_parameters(trainer.model),
        "device": str(trainer.device),
        "world_size": trainer.dist.world_size,
        "finished": finished,
        "collapsed_at": trainer.collapsed_at,
    }


def generate_samples(trainer: Any) -> list[str]:
    """The run's text samples from ``logging.sample_prompts`` (rank 0, with a tokenizer), logged."""
    from common.training.evaluator import seeded_samples

    prompts, tokens = (
        list(trainer.config.logging.sample_prompts),
        trainer.config.logging.sample_tokens,
    )
    if not prompts or tokens <= 0 or not trainer.dist.is_main or trainer.tokenizer is None:
        return []
    evaluator, seed = trainer._get_evaluator(), trainer.config.training.seed
    samples = seeded_samples(evaluator, prompts, trainer.tokenizer, max_length=tokens, seed=seed)
    for prompt, text in zip(prompts, samples):
        trainer._log(f"sample [{prompt}] {text!r}")
    return samples

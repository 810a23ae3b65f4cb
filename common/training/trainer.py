"""The shared training loop: optimization, evaluation, checkpoints, exact resume, DDP.

``Trainer(model, config, train_loader, val_loader).train()`` runs ``config.training.max_steps``
optimizer steps. Each step accumulates gradients over ``grad_accum_steps`` micro-batches (under
``no_sync`` on the non-final ones when data-parallel), clips them, and takes an AdamW step on the
learning-rate schedule. Every ``eval_interval`` steps and at the end the model is evaluated on the
validation loader through the ``Evaluator``, and the rows (``split`` ``val``, plus a ``train`` row
with the mean training loss since the previous evaluation) are appended to the experiment store
with the run's metadata. Every ``checkpoint_interval`` steps and at the end a checkpoint is written
to ``checkpoint_dir/step_XXXXXXX``; the last ``keep_checkpoints`` are kept.

Resume (``train(resume=True)``) restores weights, optimizer, scheduler, gradient-scaler, RNG states
(per rank) and the data loader's position from the newest intact checkpoint (a damaged one is
skipped, saying so; with none the run restarts from step 0), so on CPU an interrupted and resumed
run ends bitwise equal to an uninterrupted one. The store is the record of what was logged: a
resume from step k first supersedes the run's rows after k, so no row is stored twice or lost.
Rows the store refused (disk full, permissions) are kept, carried in checkpoints and retried.

A non-finite loss (or gradient norm) stops the run with ``TrainingDivergedError`` before the
optimizer step that would spread it into the weights. ``collapse_steps`` steps in a row with an
exactly zero gradient norm or an unchanged loss are reported as a collapse; checkpoints written
then are not "good" ones.

Under ``torchrun`` the model is wrapped in ``DistributedDataParallel``; the loaders must already be
sliced per rank (``prepare_data(..., rank=, world_size=)``). Losses and evaluation metrics are
averaged over ranks; rank 0 alone writes checkpoints, experiment rows and log lines. Ctrl-C stops
every rank after the current step with a checkpoint; a rank that dies or hangs for
``dist_timeout_s`` ends every rank with ``DistributedFailure`` naming it.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from common.models.checkpoint import (
    CheckpointError,
    CheckpointWriteError,
    checkpoint_path,
    list_checkpoints,
    read_verified_metadata,
    rng_state,
    seed_everything,
    set_rng_state,
)
from common.training.distributed import (
    DistributedContext,
    DistributedFailure,
    all_gather_object,
    broadcast_object,
    resolve_device,
)
from common.training.optimizers import create_optimizer
from common.training.records import metrics_row, run_metadata
from common.training.schedules import create_scheduler
from common.utils.config import Config, ConfigError, config_to_dict, validate_config

SCHEDULE_KEYS = ("lr", "min_lr", "warmup_steps", "schedule", "decay_fraction", "max_steps")
"""``training`` keys that shape the learning-rate schedule (changed on resume: a new schedule)."""

Callback = Callable[["Trainer", dict[str, Any]], None]


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped the run after a step; ``checkpoint`` is the checkpoint then written."""

    def __init__(self, message: str, checkpoint: Path | None = None) -> None:
        super().__init__(message)
        self.checkpoint = checkpoint


class RowsNotStoredError(RuntimeError):
    """The run finished (checkpoint written) but some rows could not be stored."""


class TrainingDivergedError(RuntimeError):
    """The loss (or gradient norm) became NaN or infinite; the run was stopped.

    Attributes:
        step: the 1-based optimizer step whose loss diverged.
        loss: the loss value.
        grad_norm: the gradient norm, when it was computed.
        last_checkpoint: the last good checkpoint, if any was written.
    """

    def __init__(
        self,
        step: int,
        loss: float,
        grad_norm: float | None = None,
        last_checkpoint: Path | None = None,
        lr: float | None = None,
        grad_clip: float | None = None,
    ) -> None:
        self.step = step
        self.loss = loss
        self.grad_norm = grad_norm
        self.last_checkpoint = last_checkpoint
        what = f"loss = {loss}" if not math.isfinite(loss) else f"gradient norm = {grad_norm}"
        kept = (
            f"the last good checkpoint is {last_checkpoint}"
            if last_checkpoint is not None
            else "no checkpoint had been written yet"
        )
        clip = (
            "enable gradient clipping (training.grad_clip=1.0)"
            if grad_clip is None
            else f"lower training.grad_clip (now {grad_clip})"
        )
        super().__init__(
            f"training diverged at step {step}: {what}; stopped before updating the weights, "
            f"{kept}. Try a lower learning rate (training.lr, now {lr}), a longer warmup "
            f"(training.warmup_steps) or {clip}."
        )


class Trainer:
    """Trains a ``BaseLanguageModel`` under a ``Config``; see the module docstring.

    Args:
        model: the model (moved to the run's device).
        config: the resolved run configuration; ``config.training`` drives the loop and
            ``config.logging`` the output.
        train_loader: an endless iterator (or re-iterable) of ``(input_ids, labels)`` batches;
            ``state_dict()``/``load_state_dict()`` on it make resume exact.
        val_loader: validation batches for the ``Evaluator`` (None: no evaluation).
        tokenizer: decodes the samples generated at the end (None: no samples).
        experiment_name: names the experiment rows; default ``config.logging.experiment_name``,
            else the checkpoint folder's name.
        checkpoint_dir: where ``step_XXXXXXX`` checkpoints go; default the run folder of
            ``experiment_name`` (``common.training.run.run_dir``).
        metadata: extra run metadata stored with every row (e.g. ``{"project": ...}``).
        storage_dir: the experiment store folder (default: ``get_experiments_dir()``).
        dist_ctx: the ``init_distributed()`` context; default a single process on
            ``config.training.device``.
        train_tokens: tokens in the training set, for the ``epoch`` column (default: read from the
            loader's ``num_tokens``/``tokens`` when it has them).
        data_description: one line saying what data was used, stored as metadata.
        callbacks: functions ``f(trainer, step_metrics)`` called after every optimizer step.
        save_experiments: write rows to the experiment store (rank 0).

    Raises:
        ConfigError: an impossible config value, a bad device, or no way to name the run.
    """

    def __init__(
        self,
        model: nn.Module,
        config: Config,
        train_loader: Any,
        val_loader: Any = None,
        *,
        tokenizer: Any = None,
        experiment_name: str | None = None,
        checkpoint_dir: str | Path | None = None,
        metadata: Mapping[str, Any] | None = None,
        storage_dir: str | Path | None = None,
        dist_ctx: DistributedContext | None = None,
        train_tokens: int | None = None,
        data_description: str | None = None,
        callbacks: Iterable[Callback] = (),
        save_experiments: bool = True,
    ) -> None:
        from common.training.run import run_dir

        tcfg = validate_config(config).training
        self.config = config
        self._bar: Any = None
        if dist_ctx is None:
            try:
                dist_ctx = DistributedContext(device=resolve_device(tcfg.device))
            except ValueError as exc:
                raise ConfigError(f"training.device: {exc}") from None
        self.dist = dist_ctx
        self.device = self.dist.device
        self.model = model.to(self.device)
        self.train_loader = train_loader
        self.val_loader = val_loader
        self.tokenizer = tokenizer
        name = experiment_name or config.logging.experiment_name
        if name is None and checkpoint_dir is not None:
            name = Path(checkpoint_dir).name
        if not name:
            raise ConfigError("the run has no name: pass experiment_name or checkpoint_dir")
        self.experiment_name: str = name
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else run_dir(name)
        self.extra_metadata = dict(metadata or {})
        self.storage_dir = storage_dir
        self.train_tokens = train_tokens or self._loader_tokens(train_loader)
        self.data_description = data_description
        self.callbacks = list(callbacks)
        self.save_experiments = save_experiments
        self._metadata: dict[str, Any] | None = None
        try:
            self.metadata()
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

        self.optimizer = create_optimizer(self.model, tcfg)
        self.scheduler = create_scheduler(self.optimizer, tcfg)
        self.amp_dtype = self._resolve_amp_dtype()
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype is torch.float16 else None
        # the wrappers (DDP, torch.compile) exist only while train() runs: see _wrap_model
        self.ddp_model: DistributedDataParallel | None = None
        self.forward_model: nn.Module = self.model
        if self.device.type == "cuda" and self.amp_dtype is None:
            torch.set_float32_matmul_precision("high")

        self.step = 0
        self.tokens_seen = 0
        self.elapsed_before = 0.0
        self.best_val_loss = math.inf
        self.best_val_step: int | None = None
        self.last_metrics: dict[str, Any] = {}
        self.last_checkpoint: Path | None = None
        self.last_good_checkpoint: Path | None = None
        self.history: list[dict[str, Any]] = []
        self._train_loss_sum = 0.0
        self._train_loss_count = 0
        self._unstored: list[dict[str, Any]] = []
        self._rewind_to: int | None = None
        self._store_error: str | None = None
        self._flat_steps = 0
        self._previous_loss: float | None = None
        self.collapsed_at: int | None = None
        self._last_lr = float(self.optimizer.param_groups[0]["lr"])
        self._iterator: Iterator[Any] | None = None
        self._start_time = time.perf_counter()
        self._stop_requested = False
        self._interrupt_time: float | None = None
        self._evaluator: Any = None

    @classmethod
    def from_prepared(cls, model: nn.Module, config: Config, data: Any, **kwargs: Any) -> Trainer:
        """A Trainer on a ``PreparedData`` (its loaders, tokenizer, token count, description).

        Args:
            model: the model.
            config: the resolved config.
            data: the result of ``prepare_data``.
            **kwargs: any other ``Trainer`` keyword argument.
        """
        kwargs.setdefault("tokenizer", getattr(data, "tokenizer", None))
        kwargs.setdefault("train_tokens", getattr(data, "train_tokens", None))
        kwargs.setdefault("data_description", getattr(data, "description", None))
        return cls(model, config, data.train_loader, data.val_loader, **kwargs)

    # ------------------------------------------------------------------ set-up helpers

    @staticmethod
    def _loader_tokens(loader: Any) -> int | None:
        for attr in ("num_tokens", "tokens"):
            value = getattr(loader, attr, None)
            if isinstance(value, int):
                return value
            if value is not None and hasattr(value, "__len__"):
                return len(value)
        return None

    def _resolve_amp_dtype(self) -> torch.dtype | None:
        dtype = self.config.training.dtype
        if dtype == "float32":
            return None
        if self.device.type != "cuda":
            self._log(f"training.dtype={dtype}: autocast applies on CUDA only; using float32")
            return None
        if dtype == "bf16" and not torch.cuda.is_bf16_supported():
            self._log("bf16 is not supported on this GPU; using fp16 with a gradient scaler")
            return torch.float16
        return torch.bfloat16 if dtype == "bf16" else torch.float16

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda", dtype=self.amp_dtype)

    def _log(self, message: str) -> None:
        if not self.dist.is_main:
            return
        if self._bar is not None:
            self._bar.write(message)
        else:
            print(message, flush=True)

    def _next_batch(self) -> Any:
        if self._iterator is None:
            self._iterator = iter(self.train_loader)
        try:
            return next(self._iterator)
        except StopIteration:  # a finite loader: start another pass
            self._iterator = iter(self.train_loader)
            return next(self._iterator)

    def metadata(self) -> dict[str, Any]:
        """The run metadata stored with every experiment row (``records.run_metadata``).

        Raises:
            ValueError: the extra metadata uses a column the store writes itself.
        """
        if self._metadata is None:
            self._metadata = run_metadata(
                self.config,
                self.model,
                device=self.device,
                world_size=self.dist.world_size,
                data_description=self.data_description,
                train_tokens=self.train_tokens,
                **self.extra_metadata,
            )
        return self._metadata

    def _wrap_model(self) -> None:
        """Wrap the model for one ``train`` call: ``DistributedDataParallel`` under ``torchrun``
        (which also broadcasts rank 0's weights), then ``torch.compile`` when configured."""
        forward_model: nn.Module = self.model
        if self.dist.is_distributed:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp_model = DistributedDataParallel(self.model, device_ids=device_ids)
            forward_model = self.ddp_model
        if self.config.training.compile:
            forward_model = torch.compile(forward_model)  # type: ignore[assignment]
        self.forward_model = forward_model

    def _unwrap_model(self) -> None:
        """Drop the wrappers when ``train`` returns: a DDP wrapper that outlives
        ``destroy_process_group`` can abort the process at exit (gloo: "terminate called without
        an active exception")."""
        self.ddp_model = None
        self.forward_model = self.model

    # ------------------------------------------------------------------ the loop

    def train(self, resume: bool = False, *, stop_at_step: int | None = None) -> dict[str, Any]:
        """Run the training loop to ``config.training.max_steps``.

        Args:
            resume: continue from the newest intact checkpoint in ``checkpoint_dir`` (from step
                0, with a note, when there is none).
            stop_at_step: stop once this many steps are done, writing a checkpoint but skipping
                the final evaluation; the schedule still runs to ``max_steps``. Splits a run into
                segments (a later ``train(resume=True)`` continues it).

        Returns:
            The final metrics: ``step``, ``tokens_seen``, ``elapsed_s``, ``train_loss``,
            ``val_loss``, ``val_perplexity``, ``val_bits_per_byte``, ``best_val_loss``,
            ``best_val_step``, ``samples``, ``last_checkpoint``, ``checkpoint_dir``,
            ``experiment_name``, ``num_parameters``, ``device``, ``world_size``, ``finished``,
            ``collapsed_at``.

        Raises:
            TrainingDivergedError: the loss or gradient norm became NaN or infinite.
            ConfigError: a fresh run's checkpoint folder already holds checkpoints.
            TrainingInterrupted: after Ctrl-C, once the current step finished and a checkpoint
                was written (a second Ctrl-C raises a plain ``KeyboardInterrupt`` at once).
            CheckpointWriteError: a checkpoint could not be written; the previous one is intact.
            RowsNotStoredError: the run finished but rows could not be stored; they are kept in
                the last checkpoint and stored by a later resume.
            DistributedFailure: another rank died or did not answer within ``dist_timeout_s``.
        """
        try:
            return self._train(resume, stop_at_step)
        except RuntimeError as exc:
            if isinstance(exc, (DistributedFailure, TrainingDivergedError, RowsNotStoredError)):
                raise
            failure = self.dist.failure(exc)
            if failure is None:
                raise
            raise failure from exc

    def _train(self, resume: bool, stop_at_step: int | None) -> dict[str, Any]:
        tcfg = self.config.training
        max_steps = tcfg.max_steps
        target = max_steps if stop_at_step is None else min(stop_at_step, max_steps)
        if resume:
            self._resume()
        else:
            if list_checkpoints(self.checkpoint_dir):
                raise ConfigError(
                    f"run {self.experiment_name!r} already has checkpoints in "
                    f"{self.checkpoint_dir}; resume it (--resume {self.experiment_name}) or "
                    "choose another experiment name (--name)"
                )
            seed_everything(tcfg.seed + self.dist.rank)
        self._flush_store()
        self._start_time = time.perf_counter()

        if self.dist.is_main:
            self._log(
                f"training {self.experiment_name}: {_count_parameters(self.model):,} parameters "
                f"on {self.device} x{self.dist.world_size}, steps {self.step} -> {target} of "
                f"{max_steps}, global batch "
                f"{tcfg.batch_size * tcfg.grad_accum_steps * self.dist.world_size} sequences"
            )
        self._open_progress_bar(target)
        self._stop_requested = False
        previous_handler = self._install_interrupt_handler()
        interrupted = False
        just_saved = self.step == target and self.last_checkpoint is not None
        try:
            self._wrap_model()
            window_tokens, window_start = 0, time.perf_counter()
            while self.step < target:
                stats = self._train_step()
                window_tokens += stats["tokens"]
                just_saved = False
                for callback in self.callbacks:
                    callback(self, stats)
                now = time.perf_counter()
                tok_per_s = window_tokens / max(now - window_start, 1e-9)
                self._report_step(stats, tok_per_s, target)
                if self._log_due():
                    window_tokens, window_start = 0, now
                final = self.step == max_steps
                paused = False
                if final or (tcfg.eval_interval > 0 and self.step % tcfg.eval_interval == 0):
                    self._evaluate_and_record()
                    paused = True
                if (
                    final
                    or self.step == target
                    or (tcfg.checkpoint_interval > 0 and self.step % tcfg.checkpoint_interval == 0)
                ):
                    self.save_checkpoint()
                    just_saved = paused = True
                if paused:  # tokens per second measure training only
                    window_tokens, window_start = 0, time.perf_counter()
                # Under torchrun every rank stops at the step where any rank saw Ctrl-C.
                stop = stats["stop"] or (self._stop_requested and not self.dist.is_distributed)
                if stop and self.step < target:
                    interrupted = True
                    break
            if interrupted and not just_saved:
                self.save_checkpoint()
        finally:
            self._unwrap_model()
            self._close_progress_bar()
            self._restore_interrupt_handler(previous_handler)
        if interrupted:
            message = (
                f"interrupted at step {self.step}; checkpoint {self.last_checkpoint} written; "
                f"continue with --resume {self.experiment_name}"
            )
            self._log(message)
            raise TrainingInterrupted(message, self.last_checkpoint)
        samples: list[str] = []
        if self.step >= max_steps and self.tokenizer is not None:
            samples = self._generate_samples()
        if not self._flush_store():
            raise RowsNotStoredError(
                f"{len(self._unstored)} row(s) of run {self.experiment_name!r} could not be "
                f"stored: {self._store_error}. They are kept in checkpoint "
                f"{self.last_checkpoint}; once the store is writable, `--resume "
                f"{self.experiment_name}` stores them"
            )
        return self._summary(finished=self.step >= max_steps, samples=samples)

    def _train_step(self) -> dict[str, Any]:
        tcfg = self.config.training
        accum = tcfg.grad_accum_steps
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss_sum = torch.zeros((), device=self.device)
        tokens = 0
        for micro in range(accum):
            x, y = _to_device(self._next_batch(), self.device)
            tokens += x.numel()
            sync = self.ddp_model is None or micro == accum - 1
            if sync:
                self.dist.mark(f"the gradient all-reduce of step {self.step + 1}")
            no_sync = (
                self.ddp_model.no_sync()
                if self.ddp_model is not None and not sync
                else contextlib.nullcontext()
            )
            with no_sync:
                with self._autocast():
                    out = self.forward_model(x, labels=y)
                loss = out["loss"].float() / accum
                if self.scaler is not None:
                    self.scaler.scale(loss).backward()
                else:
                    loss.backward()
            loss_sum += loss.detach()
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        max_norm = tcfg.grad_clip if tcfg.grad_clip is not None and tcfg.grad_clip > 0 else math.inf
        grad_norm_t = torch.nn.utils.clip_grad_norm_(params, max_norm)
        # One collective per step: the loss (averaged) and whether any rank got Ctrl-C.
        reduced = torch.stack(
            [
                loss_sum.float(),
                torch.tensor(float(self._stop_requested), device=loss_sum.device),
                grad_norm_t.to(loss_sum.device, torch.float32),
            ]
        )
        if self.dist.is_distributed:
            self.dist.mark(f"the loss all-reduce of step {self.step + 1}")
            self.dist.all_reduce(reduced[:2])
            reduced[0] /= self.dist.world_size
        loss_value, stop, grad_norm = (float(v) for v in reduced.tolist())
        lr = float(self.optimizer.param_groups[0]["lr"])
        if not math.isfinite(loss_value) or (self.scaler is None and not math.isfinite(grad_norm)):
            raise TrainingDivergedError(
                self.step + 1,
                loss_value,
                grad_norm,
                self.last_good_checkpoint,
                lr=tcfg.lr,
                grad_clip=tcfg.grad_clip,
            )
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        self._last_lr = lr
        self._watch_collapse(loss_value, grad_norm, lr)
        global_tokens = tokens * self.dist.world_size
        self.tokens_seen += global_tokens
        self._train_loss_sum += loss_value
        self._train_loss_count += 1
        return {
            "step": self.step,
            "loss": loss_value,
            "lr": lr,
            "grad_norm": grad_norm,
            "tokens": global_tokens,
            "tokens_seen": self.tokens_seen,
            "stop": stop > 0,
        }

    def _watch_collapse(self, loss: float, grad_norm: float, lr: float) -> None:
        """Count steps with an exactly zero gradient norm or an unchanged loss; warn once."""
        flat = grad_norm == 0.0 or loss == self._previous_loss
        self._previous_loss = loss
        self._flat_steps = self._flat_steps + 1 if flat else 0
        limit = self.config.training.collapse_steps
        if limit <= 0 or self._flat_steps != limit or self.collapsed_at is not None:
            return
        self.collapsed_at = self.step
        what = "gradient norm exactly 0" if grad_norm == 0.0 else f"loss stuck at {loss:.6g}"
        kept = (
            f"the last good checkpoint is {self.last_good_checkpoint}"
            if self.last_good_checkpoint
            else "no good checkpoint was written"
        )
        self._log(
            f"warning: training collapsed at step {self.step}: {what} for {limit} steps "
            f"(lr {lr:.3g}); {kept}. Try a lower learning rate (training.lr)."
        )

    @property
    def _healthy(self) -> bool:
        limit = self.config.training.collapse_steps
        return limit <= 0 or self._flat_steps < limit

    # ------------------------------------------------------------------ logging

    def _log_due(self) -> bool:
        interval = self.config.logging.log_interval
        return interval > 0 and self.step % interval == 0

    def _open_progress_bar(self, target: int) -> None:
        self._bar = None
        if not (self.dist.is_main and self.config.logging.progress_bar and sys.stderr.isatty()):
            return
        from tqdm.auto import tqdm

        bar = tqdm(total=target, initial=self.step, desc=self.experiment_name, dynamic_ncols=True)
        if bar.disable:  # tqdm turned itself off (e.g. TQDM_DISABLE): log lines instead
            bar.close()
        else:
            self._bar = bar

    def _close_progress_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def _report_step(self, stats: dict[str, Any], tok_per_s: float, target: int) -> None:
        if not self.dist.is_main:
            return
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix(
                loss=f"{stats['loss']:.4f}",
                lr=f"{stats['lr']:.2e}",
                tok_s=f"{tok_per_s:,.0f}",
                refresh=False,
            )
        elif self._log_due():
            self._log(
                f"step {self.step}/{target} | loss {stats['loss']:.4f} | lr {stats['lr']:.2e} | "
                f"grad norm {stats['grad_norm']:.3f} | {tok_per_s:,.0f} tok/s | "
                f"{self._elapsed():.0f}s"
            )

    def _elapsed(self) -> float:
        return self.elapsed_before + time.perf_counter() - self._start_time

    # ------------------------------------------------------------------ evaluation and rows

    def _get_evaluator(self) -> Any:
        if self._evaluator is None:
            from common.training.evaluator import Evaluator

            self._evaluator = Evaluator(self.model, device=self.device, amp_dtype=self.amp_dtype)
        return self._evaluator

    def evaluate(self) -> dict[str, Any]:
        """Validation metrics of the current weights (token-weighted, over every rank's shard).

        ``training.eval_batches`` counts global batches: with a loader that can cut itself to
        its first global batches (``SequentialLoader.first_batches``) the evaluated windows are
        the same whatever the number of processes.

        Returns:
            The ``Evaluator.evaluate`` result on ``val_loader``: ``loss``, ``perplexity``,
            ``num_tokens``, ``num_batches`` and ``bits_per_byte`` when the loader reports bytes.
        """
        batches = self.config.training.eval_batches
        loader = self.val_loader
        if batches is not None and hasattr(loader, "first_batches"):
            loader, batches = loader.first_batches(batches), None
        elif batches is not None:
            batches = max(1, math.ceil(batches / self.dist.world_size))
        self.dist.mark(f"the evaluation all-reduce at step {self.step}")
        return dict(self._get_evaluator().evaluate(loader, max_batches=batches))

    def _evaluate_and_record(self) -> None:
        columns = {
            "step": self.step,
            "lr": self._last_lr,
            "tokens_seen": self.tokens_seen,
            "elapsed_s": self._elapsed(),
        }
        epoch = self.tokens_seen / self.train_tokens if self.train_tokens else None
        rows: list[dict[str, Any]] = []
        train_note = ""
        if self._train_loss_count:
            train_loss = self._train_loss_sum / self._train_loss_count
            train = {"loss": train_loss, "bits_per_byte": None}
            rows.append(metrics_row(train, split="train", epoch=epoch, **columns))
            self.last_metrics["train_loss"] = train_loss
            self._train_loss_sum, self._train_loss_count = 0.0, 0
            train_note = f" | train loss {train_loss:.4f}"
        if self.val_loader is not None:
            metrics: dict[str, Any] = self.evaluate()
            row = metrics_row(
                {
                    "loss": float(metrics["loss"]),
                    "perplexity": float(metrics["perplexity"]),
                    "bits_per_byte": metrics.get("bits_per_byte"),
                },
                split="val",
                epoch=epoch,
                **columns,
            )
            rows.append(row)
            self.last_metrics.update(
                {
                    "val_loss": row["loss"],
                    "val_perplexity": row["perplexity"],
                    "val_bits_per_byte": row["bits_per_byte"],
                    "val_step": self.step,
                }
            )
            if row["loss"] < self.best_val_loss:
                self.best_val_loss, self.best_val_step = row["loss"], self.step
            bpb = row["bits_per_byte"]
            self._log(
                f"eval step {self.step}: val loss {row['loss']:.4f} | perplexity "
                f"{row['perplexity']:.2f}"
                + (f" | bits/byte {bpb:.4f}" if bpb is not None else "")
                + train_note
            )
        self.history.extend(rows)
        if self.save_experiments and self.dist.is_main:
            self._unstored.extend(rows)
            self._flush_store()

    def _flush_store(self) -> bool:
        """Apply a pending rewind and store the kept rows; False (rows kept) if the store fails."""
        if not (self.save_experiments and self.dist.is_main):
            return True
        if not self._unstored and self._rewind_to is None:
            return True
        from common.utils import ExperimentStoreError, rewind_experiment, save_experiment

        try:
            if self._rewind_to is not None:
                superseded = rewind_experiment(
                    self.experiment_name, self._rewind_to, storage_dir=self.storage_dir
                )
                if superseded:
                    self._log(
                        f"superseded {superseded} stored row(s) of {self.experiment_name} after "
                        f"step {max(self._rewind_to, 0)} (they are re-logged from here)"
                    )
                self._rewind_to = None
            if self._unstored:
                save_experiment(
                    self.experiment_name,
                    self._unstored,
                    self.metadata(),
                    storage_dir=self.storage_dir,
                    mode="append",
                )
                self._unstored = []
        except ExperimentStoreError as exc:
            if self._store_error is None:
                self._log(
                    f"warning: the experiment store refused {len(self._unstored)} row(s): {exc}; "
                    "they are kept (and saved in checkpoints) and retried at each evaluation"
                )
            self._store_error = str(exc)
            return False
        if self._store_error is not None:
            self._log("the experiment store accepts rows again; the kept rows are stored")
            self._store_error = None
        return True

    def _generate_samples(self) -> list[str]:
        prompts = list(self.config.logging.sample_prompts)
        if not prompts or self.config.logging.sample_tokens <= 0 or not self.dist.is_main:
            return []
        evaluator = self._get_evaluator()
        devices = [self.device] if self.device.type == "cuda" else []
        # Sampling draws random numbers; fork so it never shifts the training RNG streams.
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.config.training.seed)
            samples = list(
                evaluator.generate_samples(
                    prompts, self.tokenizer, max_length=self.config.logging.sample_tokens
                )
            )
        for prompt, text in zip(prompts, samples):
            self._log(f"sample [{prompt}] {text!r}")
        return samples

    def _summary(self, finished: bool, samples: list[str]) -> dict[str, Any]:
        return {
            "experiment_name": self.experiment_name,
            "checkpoint_dir": str(self.checkpoint_dir),
            "last_checkpoint": str(self.last_checkpoint) if self.last_checkpoint else None,
            "step": self.step,
            "tokens_seen": self.tokens_seen,
            "elapsed_s": self._elapsed(),
            "train_loss": self.last_metrics.get("train_loss"),
            "val_loss": self.last_metrics.get("val_loss"),
            "val_perplexity": self.last_metrics.get("val_perplexity"),
            "val_bits_per_byte": self.last_metrics.get("val_bits_per_byte"),
            "best_val_loss": self.best_val_loss if math.isfinite(self.best_val_loss) else None,
            "best_val_step": self.best_val_step,
            "samples": samples,
            "num_parameters": _count_parameters(self.model),
            "device": str(self.device),
            "world_size": self.dist.world_size,
            "finished": finished,
            "collapsed_at": self.collapsed_at,
        }

    # ------------------------------------------------------------------ checkpoints

    def save_checkpoint(self) -> Path | None:
        """Write ``checkpoint_dir/step_XXXXXXX`` (rank 0) and prune old ones; every rank calls it.

        Returns:
            The checkpoint folder on rank 0, None on other ranks.

        Raises:
            TrainingDivergedError: the weights are not finite (never checkpointed).
            CheckpointWriteError: on every rank, when rank 0 could not write it (the previous
                checkpoint is intact).
        """
        self.dist.mark(f"the checkpoint of step {self.step}")
        states = all_gather_object(rng_state())
        if not all(bool(torch.isfinite(p).all()) for p in self.model.parameters()):
            raise TrainingDivergedError(
                self.step,
                math.nan,
                None,
                self.last_good_checkpoint,
                lr=self.config.training.lr,
                grad_clip=self.config.training.grad_clip,
            )
        path: Path | None = None
        failure: str | None = None
        if self.dist.is_main:
            try:
                path = self._write_checkpoint(states)
            except CheckpointWriteError as exc:
                kept = (
                    f"the previous checkpoint {self.last_checkpoint} is intact"
                    if self.last_checkpoint
                    else "no earlier checkpoint exists"
                )
                failure = f"{exc}; {kept}; free space, then continue with --resume"
        self.last_checkpoint, self.last_good_checkpoint, failure = broadcast_object(
            (self.last_checkpoint, self.last_good_checkpoint, failure)
        )
        if failure is not None:
            raise CheckpointWriteError(failure)
        self.dist.barrier()
        return path

    def _write_checkpoint(self, states: list[dict[str, Any]]) -> Path:
        extra_tensors: dict[str, torch.Tensor] = {}
        rng_json: dict[str, Any] = {}
        for rank, state in enumerate(states):
            extra_tensors[f"rng_torch_cpu_rank{rank}"] = state["torch_cpu"]
            if "torch_cuda" in state:
                extra_tensors[f"rng_torch_cuda_rank{rank}"] = state["torch_cuda"]
            rng_json[str(rank)] = {"python": state["python"], "numpy": state["numpy"]}
        loader_state = (
            self.train_loader.state_dict() if hasattr(self.train_loader, "state_dict") else None
        )
        healthy = self._healthy
        good = checkpoint_path(self.checkpoint_dir, self.step) if healthy else None
        extra = {
            "config": config_to_dict(self.config),
            "experiment_name": self.experiment_name,
            "data_state": loader_state,
            "tokens_seen": self.tokens_seen,
            "elapsed_s": self._elapsed(),
            "best_val_loss": self.best_val_loss if math.isfinite(self.best_val_loss) else None,
            "best_val_step": self.best_val_step,
            "train_loss_sum": self._train_loss_sum,
            "train_loss_count": self._train_loss_count,
            "last_metrics": self.last_metrics,
            "world_size": self.dist.world_size,
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "rng": rng_json,
            "healthy": healthy,
            "last_good_checkpoint": str(good or self.last_good_checkpoint or "") or None,
            "flat_steps": self._flat_steps,
            "previous_loss": self._previous_loss,
            "collapsed_at": self.collapsed_at,
            "unstored_rows": self._unstored,
            "store_rewind_to": self._rewind_to,
        }
        metrics = {k: v for k, v in self.last_metrics.items() if isinstance(v, (int, float))}
        path = self.model.save_checkpoint(  # type: ignore[operator]
            checkpoint_path(self.checkpoint_dir, self.step),
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            step=self.step,
            extra=extra,
            metrics=metrics,
            extra_tensors=extra_tensors,
        )
        self.last_checkpoint = Path(path)
        if healthy:
            self.last_good_checkpoint = self.last_checkpoint
        self._prune_checkpoints()
        return self.last_checkpoint

    def _prune_checkpoints(self) -> None:
        keep = self.config.training.keep_checkpoints
        if keep <= 0:
            return
        protected = {self.last_good_checkpoint}
        for old in list_checkpoints(self.checkpoint_dir)[:-keep]:
            if old not in protected:
                shutil.rmtree(old, ignore_errors=True)

    def _resume(self) -> None:
        """Load the newest intact checkpoint, or restart from step 0 when there is none."""
        candidates = list_checkpoints(self.checkpoint_dir)
        for path in reversed(candidates):
            try:
                state = _ResumeState.read(path)
                self._apply_resume(path, state)
            except CheckpointError as exc:
                self._log(f"cannot resume from {path}: {exc}; trying the checkpoint before it")
                continue
            if path != candidates[-1]:
                self._log(f"resuming from {path.name}, the newest intact checkpoint")
            return
        what = "no intact checkpoint" if candidates else "no checkpoint"
        self._log(
            f"{what} in {self.checkpoint_dir}; restarting run {self.experiment_name} from step 0"
        )
        seed_everything(self.config.training.seed + self.dist.rank)
        self._rewind_to = -1

    def _apply_resume(self, path: Path, state: _ResumeState) -> None:
        loader = self.train_loader
        if state.data_state is not None and hasattr(loader, "load_state_dict"):
            before = loader.state_dict()
            try:
                loader.load_state_dict(state.data_state)
            except (KeyError, TypeError, ValueError) as exc:
                loader.load_state_dict(before)
                raise CheckpointError(
                    f"{path}: data_state {state.data_state!r:.80} does not fit the training "
                    f"loader ({type(exc).__name__}: {exc})"
                ) from None
        elif not hasattr(loader, "load_state_dict"):
            self._log("the training loader has no load_state_dict: data order restarts")
        meta = self.model.load_checkpoint(  # type: ignore[operator]
            path, optimizer=self.optimizer, scheduler=self.scheduler, map_location=self.device
        )
        self.step = state.step
        self.tokens_seen = state.tokens_seen
        self.elapsed_before = state.elapsed_s
        self.best_val_loss = math.inf if state.best_val_loss is None else state.best_val_loss
        self.best_val_step = state.best_val_step
        self._train_loss_sum, self._train_loss_count = state.train_loss_sum, state.train_loss_count
        self.last_metrics = state.last_metrics
        self.last_checkpoint = path
        self.last_good_checkpoint = state.last_good_checkpoint
        self._flat_steps, self._previous_loss = state.flat_steps, state.previous_loss
        self.collapsed_at = state.collapsed_at
        self._unstored = state.unstored_rows
        self._rewind_to = min(
            self.step, state.store_rewind_to if state.store_rewind_to is not None else self.step
        )
        if state.scaler and self.scaler is not None:
            self.scaler.load_state_dict(state.scaler)
        self._iterator = None
        rank = self.dist.rank
        tensors = meta.get("extra_tensors") or {}
        if state.world_size != self.dist.world_size:
            self._log(
                f"checkpoint written by {state.world_size} process(es), resuming with "
                f"{self.dist.world_size}: RNG streams are re-seeded, the run is not bitwise exact"
            )
            seed_everything(self.config.training.seed + rank + self.step)
        else:
            rng_json = state.rng.get(str(rank), {})
            set_rng_state(
                {
                    "torch_cpu": tensors.get(f"rng_torch_cpu_rank{rank}"),
                    "torch_cuda": (
                        tensors.get(f"rng_torch_cuda_rank{rank}")
                        if self.device.type == "cuda"
                        else None
                    ),
                    "python": rng_json.get("python"),
                    "numpy": rng_json.get("numpy"),
                }
            )
        self._apply_schedule_changes(state.config)
        self._log(f"resumed from {path} (step {self.step})")

    def _apply_schedule_changes(self, saved: Mapping[str, Any] | None) -> None:
        """Log config changes since the checkpoint; a changed schedule applies from this step."""
        if not saved:
            return
        current = config_to_dict(self.config)
        changed = [
            (section, key, saved[section].get(key), value)
            for section, values in current.items()
            if isinstance(values, dict) and isinstance(saved.get(section), dict)
            for key, value in values.items()
            if json.dumps(saved[section].get(key), default=str) != json.dumps(value, default=str)
        ]
        if changed:
            self._log(
                "config differs from the checkpoint's: "
                + "; ".join(f"{s}.{k}: {old!r} -> {new!r}" for s, k, old, new in changed)
            )
        if any(s == "training" and k in SCHEDULE_KEYS for s, k, *_ in changed):
            self.scheduler = create_scheduler(
                self.optimizer, self.config.training, start_step=self.step
            )
            self._last_lr = float(self.optimizer.param_groups[0]["lr"])
            self.extra_metadata["schedule_changed_at_step"] = self.step
            self._metadata = None
            self._log(
                f"new learning-rate schedule from step {self.step}: lr {self._last_lr:.3g} now"
            )

    # ------------------------------------------------------------------ Ctrl-C

    def _install_interrupt_handler(self) -> Any:
        if threading.current_thread() is not threading.main_thread():
            return None
        distributed = self.dist.is_distributed

        def handler(signum: int, frame: Any) -> None:
            now = time.monotonic()
            if self._interrupt_time is not None:
                # torchrun forwards the terminal's Ctrl-C: one press reaches a rank twice.
                if distributed and now - self._interrupt_time < 2.0:
                    return
                raise KeyboardInterrupt
            self._interrupt_time = now
            self._stop_requested = True
            if self.dist.is_main:
                sys.stderr.write(
                    "\nCtrl-C: finishing the current step, then writing a checkpoint "
                    "(Ctrl-C again to abort without one)\n"
                )
                sys.stderr.flush()

        self._interrupt_time = None
        try:
            return signal.signal(signal.SIGINT, handler)
        except ValueError:  # not the main interpreter thread
            return None

    @staticmethod
    def _restore_interrupt_handler(previous: Any) -> None:
        if previous is not None:
            with contextlib.suppress(ValueError):
                signal.signal(signal.SIGINT, previous)


class _ResumeState:
    """The training state a checkpoint's ``extra`` holds, checked field by field."""

    def __init__(self, path: Path, meta: Mapping[str, Any]) -> None:
        extra = meta["extra"]
        where = f"{path}: checkpoint.json extra"

        def field(name: str, types: tuple[type, ...], default: Any) -> Any:
            value = extra.get(name, default)
            if value is None and default is None:
                return None
            if isinstance(value, bool) and bool not in types:
                value = "not a bool"
            if not isinstance(value, types):
                raise CheckpointError(f"{where}.{name} is malformed: {value!r:.80}")
            return value

        number = (int, float)
        self.step = int(meta.get("step") or 0)
        self.tokens_seen = int(field("tokens_seen", (int,), 0))
        self.elapsed_s = float(field("elapsed_s", number, 0.0))
        best = field("best_val_loss", number, None)
        self.best_val_loss = None if best is None else float(best)
        self.best_val_step = field("best_val_step", (int,), None)
        self.train_loss_sum = float(field("train_loss_sum", number, 0.0))
        self.train_loss_count = int(field("train_loss_count", (int,), 0))
        self.last_metrics = dict(field("last_metrics", (dict,), {}))
        self.world_size = int(field("world_size", (int,), 1))
        self.scaler = field("scaler", (dict,), None)
        self.data_state = field("data_state", (dict,), None)
        self.rng = field("rng", (dict,), {})
        self.config = field("config", (dict,), None)
        good = field("last_good_checkpoint", (str,), None)
        self.last_good_checkpoint = Path(good) if good else None
        self.flat_steps = int(field("flat_steps", (int,), 0))
        previous = field("previous_loss", number, None)
        self.previous_loss = None if previous is None else float(previous)
        self.collapsed_at = field("collapsed_at", (int,), None)
        self.unstored_rows = list(field("unstored_rows", (list,), []))
        self.store_rewind_to = field("store_rewind_to", (int,), None)
        if self.tokens_seen < 0 or self.world_size < 1:
            raise CheckpointError(f"{where}: tokens_seen or world_size out of range")

    @classmethod
    def read(cls, path: Path) -> _ResumeState:
        """Verify ``path`` (checksums, fields) without loading anything into the model."""
        return cls(path, read_verified_metadata(path))


def _to_device(batch: Any, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(batch, Mapping):
        x, y = batch["input_ids"], batch["labels"]
    else:
        x, y = batch
    non_blocking = device.type == "cuda"
    return x.to(device, non_blocking=non_blocking), y.to(device, non_blocking=non_blocking)


def _count_parameters(model: nn.Module) -> int:
    counter = getattr(model, "num_parameters", None)
    if callable(counter):
        return int(counter())
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())

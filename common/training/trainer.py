"""The shared training loop: optimization, evaluation, checkpoints, exact resume, DDP.

``Trainer(model, config, train_loader, val_loader).train()`` runs ``config.training.max_steps``
optimizer steps. Each step accumulates gradients over ``grad_accum_steps`` micro-batches (under
``no_sync`` on the non-final ones when data-parallel), clips them, and takes an AdamW step on the
learning-rate schedule. Every ``eval_interval`` steps and at the end the model is evaluated on the
validation loader through the ``Evaluator``, and the rows (``split`` ``val``, plus a ``train`` row
with the mean training loss since the previous evaluation, both with the ``sys__*`` system
metrics of ``system_metrics``) are appended to the experiment store with the run's metadata.
Every ``checkpoint_interval`` steps and at the end a checkpoint is written to
``checkpoint_dir/step_XXXXXXX``; the last ``keep_checkpoints`` are kept.

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
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from common import device as cuda
from common.models.checkpoint import list_checkpoints, seed_everything
from common.training import checkpointing
from common.training.checkpointing import run_dir
from common.training.distributed import (
    DistributedContext,
    DistributedFailure,
    resolve_amp_dtype,
    resolve_device,
    wrap_model,
)
from common.training.errors import (
    RowsNotStoredError,
    RunPruned,
    TrainingDivergedError,
    TrainingInterrupted,
)
from common.training.evaluator import split_batch
from common.training.health import is_healthy, watch_collapse
from common.training.interrupt import InterruptHandler
from common.training.lease import acquire_run_lease
from common.training.optimizers import create_optimizer
from common.training.progress import Progress, generate_samples, run_summary
from common.training.recorder import Recorder, evaluation_rows
from common.training.records import count_parameters, loader_tokens, run_metadata
from common.training.schedules import create_scheduler
from common.training.state import TrainState
from common.training.system_metrics import SystemMetrics
from common.utils.config import SCHEDULE_KEYS, Config, ConfigError, validate_config

__all__ = [
    "SCHEDULE_KEYS",
    "Callback",
    "RowsNotStoredError",
    "Trainer",
    "TrainingDivergedError",
    "TrainingInterrupted",
    "TrainState",
]

Callback = Callable[["Trainer", dict[str, Any]], None]
EvaluationHook = Callable[["Trainer", list[dict[str, Any]]], bool]
"""``f(trainer, rows)`` after each evaluation, before its rows are stored; True stops the run
(pruned: the rows get ``pruned = true``, a checkpoint is written, ``RunPruned`` is raised)."""


def _from_state(name: str, doc: str) -> Any:
    return property(lambda self: getattr(self.state, name), doc=doc)


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
            ``experiment_name`` (``common.training.checkpointing.run_dir``).
        metadata: extra run metadata stored with every row (e.g. ``{"project": ...}``).
        storage_dir: the experiment store folder (default: ``get_experiments_dir()``).
        dist_ctx: the ``init_distributed()`` context; default a single process on
            ``config.training.device``.
        train_tokens: tokens in the training set, for the ``epoch`` column (default: read from the
            loader's ``num_tokens``/``tokens`` when it has them).
        data_description: one line saying what data was used, stored as metadata.
        floor_bits_per_byte: the validation data's entropy in bits per byte (the embedded
            corpus's); validation rows then carry it and the gap to it.
        callbacks: functions ``f(trainer, step_metrics)`` called after every optimizer step.
        evaluation_hooks: ``EvaluationHook`` functions (a search's pruning).
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
        floor_bits_per_byte: float | None = None,
        callbacks: Iterable[Callback] = (),
        save_experiments: bool = True,
        evaluation_hooks: Iterable[EvaluationHook] = (),
    ) -> None:
        tcfg = validate_config(config).training
        self.config = config
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
        self.progress = Progress(
            name,
            is_main=self.dist.is_main,
            bar=config.logging.progress_bar,
            log_interval=config.logging.log_interval,
        )
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else run_dir(name)
        self.extra_metadata = dict(metadata or {})
        self.storage_dir = storage_dir
        self.train_tokens = train_tokens or loader_tokens(train_loader)
        self.data_description = data_description
        self.floor_bits_per_byte = floor_bits_per_byte
        self.callbacks = list(callbacks)
        self.evaluation_hooks = list(evaluation_hooks)
        self._pruned = False
        self.save_experiments = save_experiments
        self._metadata: dict[str, Any] | None = None
        try:
            self.metadata()
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

        self.optimizer = create_optimizer(self.model, tcfg)
        self.scheduler = create_scheduler(self.optimizer, tcfg)
        self.amp_dtype = resolve_amp_dtype(tcfg.dtype, self.device, self._log)
        self.scaler = cuda.grad_scaler(self.amp_dtype)
        # the wrappers (DDP, torch.compile) exist only while train() runs
        self.ddp_model: DistributedDataParallel | None = None
        self.forward_model: nn.Module = self.model
        if self.device.type == "cuda" and self.amp_dtype is None:
            torch.set_float32_matmul_precision("high")

        self.state = TrainState()
        self.last_checkpoint: Path | None = None
        self.history: list[dict[str, Any]] = []
        self.recorder = Recorder(
            self.experiment_name,
            self.metadata,
            self._log,
            storage_dir=storage_dir,
            enabled=save_experiments and self.dist.is_main,
        )
        self._last_lr = float(self.optimizer.param_groups[0]["lr"])
        self._iterator: Iterator[Any] | None = None
        self._start_time = time.perf_counter()
        self._interrupt = InterruptHandler(
            distributed=self.dist.is_distributed, announce=self.dist.is_main
        )
        self._evaluator: Any = None
        self._system = SystemMetrics(self.device) if self.dist.is_main else None

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
        kwargs.setdefault("floor_bits_per_byte", getattr(data, "floor_bits_per_byte", None))
        return cls(model, config, data.train_loader, data.val_loader, **kwargs)

    # the progress, read from ``self.state`` (the seed's attribute names)
    step = _from_state("step", "Optimizer steps done.")
    tokens_seen = _from_state("tokens_seen", "Training tokens consumed, over every rank.")
    best_val_step = _from_state("best_val_step", "The step of ``best_val_loss``.")
    last_metrics = _from_state("last_metrics", "The latest training and validation metrics.")
    collapsed_at = _from_state("collapsed_at", "The step training was reported collapsed at.")

    @property
    def best_val_loss(self) -> float:
        """The lowest validation loss so far (``inf`` before the first evaluation)."""
        return self.state.best_loss

    @property
    def last_good_checkpoint(self) -> Path | None:
        """The newest checkpoint written while training was healthy."""
        good = self.state.last_good_checkpoint
        return Path(good) if good else None

    @property
    def _interrupt_time(self) -> float | None:
        return self._interrupt.time

    # ------------------------------------------------------------------ set-up helpers

    def _log(self, message: str) -> None:
        self.progress.log(message)

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
            ``progress.run_summary``: name and folders, progress, last and best metrics (with
            the floor and gap on the embedded corpus), samples, size, device, ``finished``.

        Raises:
            TrainingDivergedError: the loss or gradient norm became NaN or infinite.
            ConfigError: a fresh run's checkpoint folder already holds checkpoints.
            TrainingInterrupted: after Ctrl-C, once the current step finished and a checkpoint
                was written (a second Ctrl-C raises a plain ``KeyboardInterrupt`` at once).
            CheckpointWriteError: a checkpoint could not be written; the previous one is intact.
            RowsNotStoredError: the run finished but rows could not be stored; they are kept in
                the last checkpoint and stored by a later resume.
            DistributedFailure: another rank died or did not answer within ``dist_timeout_s``.
            RunLeasedError: another process is training this run (``common.training.lease``).
        """
        main, name = self.dist.is_main, self.experiment_name
        lease = acquire_run_lease(self.checkpoint_dir, is_main=main, run=name, log=self._log)
        try:
            return self._train(resume, stop_at_step)
        except RuntimeError as exc:
            if isinstance(exc, (DistributedFailure, TrainingDivergedError, RowsNotStoredError)):
                raise
            failure = self.dist.failure(exc)
            if failure is None:
                raise
            raise failure from exc
        finally:
            if lease is not None:
                lease.release()

    def _train(self, resume: bool, stop_at_step: int | None) -> dict[str, Any]:
        tcfg = self.config.training
        max_steps = tcfg.max_steps
        target = max_steps if stop_at_step is None else min(stop_at_step, max_steps)
        if resume:
            checkpointing.resume(self)
        else:
            if list_checkpoints(self.checkpoint_dir):
                raise ConfigError(
                    f"run {self.experiment_name!r} already has checkpoints in "
                    f"{self.checkpoint_dir}; resume it (--resume {self.experiment_name}) or "
                    "choose another experiment name (--name)"
                )
            seed_everything(tcfg.seed + self.dist.rank)
        self.recorder.flush(self.state)
        self._start_time = time.perf_counter()

        if self.dist.is_main:
            self._log(
                f"training {self.experiment_name}: {count_parameters(self.model):,} parameters "
                f"on {self.device} x{self.dist.world_size}, steps {self.step} -> {target} of "
                f"{max_steps}, global batch "
                f"{tcfg.batch_size * tcfg.grad_accum_steps * self.dist.world_size} sequences"
            )
        self.progress.open(self.step, target)
        self._interrupt.install()
        interrupted = False
        just_saved = self.step == target and self.last_checkpoint is not None
        try:
            self.ddp_model, self.forward_model = wrap_model(
                self.model, self.dist, compile=self.config.training.compile
            )
            window_tokens, window_start = 0, time.perf_counter()
            while self.step < target:
                stats = self._train_step()
                window_tokens += stats["tokens"]
                just_saved = False
                for callback in self.callbacks:
                    callback(self, stats)
                now = time.perf_counter()
                tok_per_s = window_tokens / max(now - window_start, 1e-9)
                self.progress.step(self.step, target, stats, tok_per_s, self.elapsed())
                if self.progress.log_due(self.step):
                    window_tokens, window_start = 0, now
                final = self.step == max_steps
                paused = False
                if final or (tcfg.eval_interval > 0 and self.step % tcfg.eval_interval == 0):
                    self._evaluate_and_record()
                    paused = True
                if (
                    final
                    or self._pruned
                    or self.step == target
                    or (tcfg.checkpoint_interval > 0 and self.step % tcfg.checkpoint_interval == 0)
                ):
                    self.save_checkpoint()
                    just_saved = paused = True
                if paused:  # tokens per second measure training only
                    window_tokens, window_start = 0, time.perf_counter()
                if self._pruned and not final:
                    break
                # Under torchrun every rank stops at the step where any rank saw Ctrl-C.
                stop = stats["stop"] or (self._interrupt.requested and not self.dist.is_distributed)
                if stop and self.step < target:
                    interrupted = True
                    break
            if interrupted and not just_saved:
                self.save_checkpoint()
        finally:
            # a DDP wrapper that outlives destroy_process_group can abort the process at exit
            self.ddp_model, self.forward_model = None, self.model
            self.progress.close()
            self._interrupt.restore()
        if self._pruned and self.step < max_steps:
            message = f"pruned at step {self.step}; checkpoint {self.last_checkpoint} written"
            self._log(message)
            self.recorder.flush(self.state)
            raise RunPruned(message, self.step, self.last_checkpoint)
        if interrupted:
            message = (
                f"interrupted at step {self.step}; checkpoint {self.last_checkpoint} written; "
                f"continue with --resume {self.experiment_name}"
            )
            self._log(message)
            raise TrainingInterrupted(message, self.last_checkpoint)
        samples = generate_samples(self) if self.step >= max_steps else []
        if not self.recorder.flush(self.state):
            raise RowsNotStoredError(
                f"{len(self.state.unstored_rows)} row(s) of run {self.experiment_name!r} could "
                f"not be stored: {self.recorder.error}. They are kept in checkpoint "
                f"{self.last_checkpoint}; once the store is writable, `--resume "
                f"{self.experiment_name}` stores them"
            )
        return run_summary(self, finished=self.step >= max_steps, samples=samples)

    def _train_step(self) -> dict[str, Any]:
        tcfg = self.config.training
        accum = tcfg.grad_accum_steps
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss_sum = torch.zeros((), device=self.device)
        tokens = 0
        for micro in range(accum):
            x, y = (t.to(self.device, non_blocking=True) for t in split_batch(self._next_batch()))
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
                with cuda.autocast(self.device, self.amp_dtype):
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
                torch.tensor(float(self._interrupt.requested), device=loss_sum.device),
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
        state = self.state
        state.step += 1
        self._last_lr = lr
        watch_collapse(
            self.state,
            loss_value,
            grad_norm,
            lr,
            limit=self.config.training.collapse_steps,
            last_good=self.last_good_checkpoint,
            log=self._log,
        )
        global_tokens = tokens * self.dist.world_size
        state.tokens_seen += global_tokens
        state.train_loss_sum += loss_value
        state.train_loss_count += 1
        return {
            "step": self.step,
            "loss": loss_value,
            "lr": lr,
            "grad_norm": grad_norm,
            "tokens": global_tokens,
            "tokens_seen": self.tokens_seen,
            "stop": stop > 0,
        }

    @property
    def healthy(self) -> bool:
        """Whether training is not collapsed now (checkpoints written now are "good" ones)."""
        return is_healthy(self.state, self.config.training.collapse_steps)

    def elapsed(self) -> float:
        """Seconds spent training this run, over every segment."""
        return self.state.elapsed_s + time.perf_counter() - self._start_time

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
            "elapsed_s": self.elapsed(),
        }
        epoch = self.tokens_seen / self.train_tokens if self.train_tokens else None
        metrics = self.evaluate() if self.val_loader is not None else None
        if self._system is not None:  # sys__* columns: memory, CPU and GPU use
            columns.update(self._system.sample())
        rows, line = evaluation_rows(
            self.state,
            metrics,
            epoch=epoch,
            floor_bits_per_byte=self.floor_bits_per_byte,
            **columns,
        )
        if line:
            self._log(line)
        stop = self.dist.is_main and any([hook(self, rows) for hook in self.evaluation_hooks])
        if self.dist.is_distributed and self.evaluation_hooks:  # every rank stops together
            flag = torch.tensor([float(stop)], device=self.device)
            self.dist.all_reduce(flag)
            stop = bool(flag.item() > 0)
        if stop and self.step < self.config.training.max_steps:  # the last one has nothing to save
            self._pruned = True
            for row in rows:
                row["pruned"] = True
        self.history.extend(rows)
        self.recorder.record(self.state, rows)

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
        return checkpointing.save(self)

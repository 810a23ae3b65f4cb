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
(torch CPU and CUDA, Python, NumPy; per rank) and the data loader's position from the latest
complete checkpoint, so on CPU an interrupted and resumed run ends bitwise equal to an
uninterrupted one. Rows the store already holds for steps up to the largest stored step are not
written again, so a resumed run leaves no duplicates.

A non-finite loss (or gradient norm) stops the run with ``TrainingDivergedError`` before the
optimizer step that would spread it into the weights; no checkpoint is written then, so the last
good one is kept.

Under ``torchrun`` the model is wrapped in ``DistributedDataParallel``; the loaders must already be
sliced per rank (``prepare_data(..., rank=, world_size=)``). Losses and evaluation metrics are
averaged over ranks; rank 0 alone writes checkpoints, experiment rows and log lines.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import re
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from common.paths import get_checkpoints_dir
from common.training.distributed import (
    DistributedContext,
    all_gather_object,
    all_reduce_sum,
    broadcast_object,
    resolve_device,
)
from common.training.optimizers import create_optimizer
from common.training.schedules import create_scheduler, validate_schedule
from common.utils.config import Config, ConfigError, config_to_dict

# Columns the experiment store adds to every row itself (kept in sync with
# common.utils.experiment_storage.PROVENANCE_COLUMNS; not imported to keep duckdb out of here).
PROVENANCE_COLUMNS = ("saved_at", "git_commit", "git_dirty", "host")

CHECKPOINT_PATTERN = re.compile(r"^step_(\d{7,})$")
ROW_COLUMNS = (
    "step",
    "epoch",
    "split",
    "loss",
    "perplexity",
    "bits_per_byte",
    "lr",
    "tokens_seen",
    "elapsed_s",
)

Callback = Callable[["Trainer", dict[str, Any]], None]


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


def list_checkpoints(checkpoint_dir: str | Path) -> list[Path]:
    """Complete checkpoints (``step_XXXXXXX`` folders with ``checkpoint.json``), oldest first."""
    root = Path(checkpoint_dir)
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        match = CHECKPOINT_PATTERN.match(path.name)
        if match and path.is_dir() and (path / "checkpoint.json").is_file():
            found.append((int(match.group(1)), path))
    return [path for _, path in sorted(found)]


def latest_checkpoint(checkpoint_dir: str | Path) -> Path | None:
    """The complete checkpoint with the highest step in ``checkpoint_dir``, or None."""
    found = list_checkpoints(checkpoint_dir)
    return found[-1] if found else None


def checkpoint_path(checkpoint_dir: str | Path, step: int) -> Path:
    """``checkpoint_dir/step_XXXXXXX`` for ``step``."""
    return Path(checkpoint_dir) / f"step_{step:07d}"


def default_experiment_name(project: str | None, stem: str | None = None) -> str:
    """``<project>-<stem>-<UTC timestamp>`` (parts that are None are left out)."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return "-".join(part for part in (project or "run", stem, stamp) if part)


def _python_rng_state() -> list[Any]:
    version, internal, gauss_next = random.getstate()
    return [version, list(internal), gauss_next]


def _set_python_rng_state(state: Sequence[Any]) -> None:
    version, internal, gauss_next = state
    random.setstate((version, tuple(internal), gauss_next))


def _numpy_rng_state() -> list[Any] | None:
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy ships with torch's extras
        return None
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return [name, [int(k) for k in keys], int(pos), int(has_gauss), float(cached)]


def _set_numpy_rng_state(state: Sequence[Any] | None) -> None:
    if state is None:
        return
    import numpy as np

    name, keys, pos, has_gauss, cached = state
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
    with contextlib.suppress(ImportError):
        import numpy as np

        np.random.seed(seed % 2**32)


def _to_device(batch: Any, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(batch, Mapping):
        x, y = batch["input_ids"], batch["labels"]
    else:
        x, y = batch
    non_blocking = device.type == "cuda"
    return x.to(device, non_blocking=non_blocking), y.to(device, non_blocking=non_blocking)


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
        experiment_name: names the experiment rows and (by default) the checkpoint folder; default
            ``config.logging.experiment_name`` or a timestamped name.
        checkpoint_dir: where ``step_XXXXXXX`` checkpoints go; default
            ``get_checkpoints_dir() / experiment_name``.
        metadata: extra run metadata stored with every row (e.g. ``{"project": ...}``).
        storage_dir: the experiment store folder (default: ``get_experiments_dir()``).
        dist_ctx: the ``init_distributed()`` context; default a single process on
            ``config.training.device``.
        train_tokens: tokens in the training set, for the ``epoch`` column (default: read from the
            loader's ``num_tokens``/``tokens`` when it has them).
        data_description: one line saying what data was used, stored as metadata.
        callbacks: functions ``f(trainer, step_metrics)`` called after every optimizer step.
        save_experiments: write rows to the experiment store (rank 0).
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
        tcfg = config.training
        validate_schedule(tcfg)
        if tcfg.grad_accum_steps < 1:
            raise ConfigError(
                f"training.grad_accum_steps: must be >= 1, got {tcfg.grad_accum_steps}"
            )
        if tcfg.dtype not in ("float32", "bf16", "fp16"):
            raise ConfigError(
                f"training.dtype: unknown dtype {tcfg.dtype!r}; valid: float32, bf16, fp16"
            )
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
        self.experiment_name = (
            experiment_name
            or config.logging.experiment_name
            or default_experiment_name(config.logging.project)
        )
        self.checkpoint_dir = Path(
            checkpoint_dir if checkpoint_dir is not None else get_checkpoints_dir()
        )
        if checkpoint_dir is None:
            self.checkpoint_dir = self.checkpoint_dir / self.experiment_name
        self.extra_metadata = dict(metadata or {})
        reserved = sorted(set(self.extra_metadata) & {"experiment_name", *PROVENANCE_COLUMNS})
        if reserved:
            raise ConfigError(
                f"metadata keys {reserved} are written by the experiment store itself; rename them"
            )
        self.storage_dir = storage_dir
        self.train_tokens = train_tokens or self._loader_tokens(train_loader)
        self.data_description = data_description
        self.callbacks = list(callbacks)
        self.save_experiments = save_experiments

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
        self.history: list[dict[str, Any]] = []
        self._train_loss_sum = 0.0
        self._train_loss_count = 0
        self._stored_max_step: int | None = None
        self._last_lr = float(self.optimizer.param_groups[0]["lr"])
        self._metadata: dict[str, Any] | None = None
        self._iterator: Iterator[Any] | None = None
        self._start_time = time.perf_counter()
        self._stop_requested = False
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
        """The run metadata stored with every experiment row (computed once).

        The resolved config (flattened by the store to ``training__lr`` etc.), seed, torch and
        Python versions, device, world size, parameter count, model class and data description;
        the store adds the git commit, dirty flag and host itself.
        """
        if self._metadata is None:
            cls = type(self.model)
            meta: dict[str, Any] = dict(config_to_dict(self.config))
            meta.update(
                {
                    "seed": self.config.training.seed,
                    "torch_version": torch.__version__,
                    "python_version": sys.version.split()[0],
                    "device": str(self.device),
                    "device_name": (
                        torch.cuda.get_device_name(self.device)
                        if self.device.type == "cuda"
                        else self.device.type
                    ),
                    "world_size": self.dist.world_size,
                    "num_parameters": _count_parameters(self.model),
                    "model_class": f"{cls.__module__}:{cls.__qualname__}",
                    "data_description": self.data_description,
                    "train_tokens": self.train_tokens,
                    "global_batch_size": (
                        self.config.training.batch_size
                        * self.config.training.grad_accum_steps
                        * self.dist.world_size
                    ),
                }
            )
            meta.update(self.extra_metadata)
            self._metadata = meta
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
            resume: continue from the latest complete checkpoint in ``checkpoint_dir`` (starts
                from scratch, with a note, when there is none).
            stop_at_step: stop once this many steps are done, writing a checkpoint but skipping
                the final evaluation; the schedule still runs to ``max_steps``. Splits a run into
                segments (a later ``train(resume=True)`` continues it).

        Returns:
            The final metrics: ``step``, ``tokens_seen``, ``elapsed_s``, ``train_loss``,
            ``val_loss``, ``val_perplexity``, ``val_bits_per_byte``, ``best_val_loss``,
            ``best_val_step``, ``samples``, ``last_checkpoint``, ``checkpoint_dir``,
            ``experiment_name``, ``num_parameters``, ``device``, ``world_size``, ``finished``.

        Raises:
            TrainingDivergedError: the loss or gradient norm became NaN or infinite.
            ConfigError: a fresh run's checkpoint folder already holds checkpoints.
            KeyboardInterrupt: after Ctrl-C, once the current step finished and a checkpoint was
                written.
        """
        tcfg = self.config.training
        max_steps = tcfg.max_steps
        target = max_steps if stop_at_step is None else min(stop_at_step, max_steps)
        if resume:
            self._resume()
        else:
            existing = latest_checkpoint(self.checkpoint_dir)
            if existing is not None:
                raise ConfigError(
                    f"run {self.experiment_name!r} already has checkpoints in "
                    f"{self.checkpoint_dir}; resume it (--resume {self.experiment_name}) or "
                    "choose another experiment name (--name)"
                )
            _seed_everything(tcfg.seed + self.dist.rank)
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
                if self._stop_requested:
                    interrupted = True
                    break
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
            if interrupted and not just_saved:
                self.save_checkpoint()
        finally:
            self._unwrap_model()
            self._close_progress_bar()
            self._restore_interrupt_handler(previous_handler)
        if interrupted:
            self._log(
                f"interrupted at step {self.step}; checkpoint {self.last_checkpoint}; "
                f"resume with resume=True (--resume {self.experiment_name})"
            )
            raise KeyboardInterrupt
        samples: list[str] = []
        if self.step >= max_steps and self.tokenizer is not None:
            samples = self._generate_samples()
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
        reduced = torch.stack([loss_sum, grad_norm_t.to(loss_sum.device, torch.float32)])
        if self.dist.is_distributed:
            all_reduce_sum(reduced[:1])
            reduced[0] /= self.dist.world_size
        loss_value, grad_norm = (float(v) for v in reduced.tolist())
        lr = float(self.optimizer.param_groups[0]["lr"])
        if not math.isfinite(loss_value) or (self.scaler is None and not math.isfinite(grad_norm)):
            raise TrainingDivergedError(
                self.step + 1,
                loss_value,
                grad_norm,
                self.last_checkpoint or latest_checkpoint(self.checkpoint_dir),
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
        }

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

        ``training.eval_batches`` counts global batches: each of ``world_size`` ranks evaluates
        its share, so the evaluated windows do not depend on the number of processes.

        Returns:
            The ``Evaluator.evaluate`` result on ``val_loader``: ``loss``, ``perplexity``,
            ``num_tokens``, ``num_batches`` and ``bits_per_byte`` when the loader reports bytes.
        """
        batches = self.config.training.eval_batches
        if batches is not None:
            batches = max(1, math.ceil(batches / self.dist.world_size))
        return dict(self._get_evaluator().evaluate(self.val_loader, max_batches=batches))

    def _evaluate_and_record(self) -> None:
        from common.training.evaluator import compute_perplexity

        lr = self._last_lr
        epoch = self.tokens_seen / self.train_tokens if self.train_tokens else None
        base = {
            "step": self.step,
            "epoch": epoch,
            "lr": lr,
            "tokens_seen": self.tokens_seen,
            "elapsed_s": self._elapsed(),
        }
        rows: list[dict[str, Any]] = []
        if self._train_loss_count:
            train_loss = self._train_loss_sum / self._train_loss_count
            rows.append(
                {
                    **base,
                    "split": "train",
                    "loss": train_loss,
                    "perplexity": compute_perplexity(train_loss),
                    "bits_per_byte": None,
                }
            )
            self.last_metrics["train_loss"] = train_loss
            self._train_loss_sum, self._train_loss_count = 0.0, 0
        if self.val_loader is not None:
            metrics = self.evaluate()
            val_loss = float(metrics["loss"])
            rows.append(
                {
                    **base,
                    "split": "val",
                    "loss": val_loss,
                    "perplexity": float(metrics["perplexity"]),
                    "bits_per_byte": metrics.get("bits_per_byte"),
                }
            )
            self.last_metrics.update(
                {
                    "val_loss": val_loss,
                    "val_perplexity": float(metrics["perplexity"]),
                    "val_bits_per_byte": metrics.get("bits_per_byte"),
                    "val_step": self.step,
                }
            )
            if val_loss < self.best_val_loss:
                self.best_val_loss, self.best_val_step = val_loss, self.step
            bpb = metrics.get("bits_per_byte")
            self._log(
                f"eval step {self.step}: val loss {val_loss:.4f} | perplexity "
                f"{metrics['perplexity']:.2f}"
                + (f" | bits/byte {bpb:.4f}" if bpb is not None else "")
                + (f" | train loss {rows[0]['loss']:.4f}" if rows[0]["split"] == "train" else "")
            )
        self.history.extend(rows)
        self._store_rows(rows)

    def _store_rows(self, rows: list[dict[str, Any]]) -> None:
        if not (self.save_experiments and self.dist.is_main and rows):
            return
        if self._stored_max_step is not None:
            rows = [r for r in rows if r["step"] > self._stored_max_step]
            if not rows:
                return
        from common.utils.experiment_storage import save_experiment

        save_experiment(
            self.experiment_name,
            rows,
            self.metadata(),
            storage_dir=self.storage_dir,
            mode="append",
        )

    def _stored_steps_max(self) -> int | None:
        """The largest step stored for this experiment (None: no rows or no store)."""
        from common.utils.experiment_storage import connect

        try:
            con = connect(self.storage_dir)
        except Exception:  # noqa: BLE001 - an empty or absent store has nothing to skip
            return None
        try:
            row = con.execute(
                "SELECT max(step) FROM experiments WHERE experiment_name = ?",
                [self.experiment_name],
            ).fetchone()
        except Exception:  # noqa: BLE001 - no experiments view yet
            return None
        finally:
            con.close()
        return int(row[0]) if row and row[0] is not None else None

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
        }

    # ------------------------------------------------------------------ checkpoints

    def _rng_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "torch_cpu": torch.get_rng_state(),
            "python": _python_rng_state(),
            "numpy": _numpy_rng_state(),
        }
        if self.device.type == "cuda":
            state["torch_cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def save_checkpoint(self) -> Path | None:
        """Write ``checkpoint_dir/step_XXXXXXX`` (rank 0) and prune old ones; every rank calls it.

        Returns:
            The checkpoint folder on rank 0, None on other ranks.

        Raises:
            TrainingDivergedError: the weights are not finite (never checkpointed).
        """
        states = all_gather_object(self._rng_state())
        if not all(bool(torch.isfinite(p).all()) for p in self.model.parameters()):
            raise TrainingDivergedError(
                self.step,
                math.nan,
                None,
                self.last_checkpoint,
                lr=self.config.training.lr,
                grad_clip=self.config.training.grad_clip,
            )
        path: Path | None = None
        if self.dist.is_main:
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
            }
            metrics = {k: v for k, v in self.last_metrics.items() if isinstance(v, (int, float))}
            self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
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
            self._prune_checkpoints()
        self.last_checkpoint = broadcast_object(self.last_checkpoint)
        self.dist.barrier()
        return path

    def _prune_checkpoints(self) -> None:
        keep = self.config.training.keep_checkpoints
        if keep is None or keep <= 0:
            return
        for old in list_checkpoints(self.checkpoint_dir)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)

    def _resume(self) -> None:
        path = latest_checkpoint(self.checkpoint_dir)
        if path is None:
            self._log(f"no checkpoint in {self.checkpoint_dir}; starting from scratch")
            _seed_everything(self.config.training.seed + self.dist.rank)
            return
        meta = self.model.load_checkpoint(  # type: ignore[operator]
            path, optimizer=self.optimizer, scheduler=self.scheduler, map_location=self.device
        )
        extra = meta.get("extra") or {}
        tensors = meta.get("extra_tensors") or {}
        self.step = int(meta.get("step") or 0)
        self.tokens_seen = int(extra.get("tokens_seen", 0))
        self.elapsed_before = float(extra.get("elapsed_s", 0.0))
        best = extra.get("best_val_loss")
        self.best_val_loss = math.inf if best is None else float(best)
        self.best_val_step = extra.get("best_val_step")
        self._train_loss_sum = float(extra.get("train_loss_sum", 0.0))
        self._train_loss_count = int(extra.get("train_loss_count", 0))
        self.last_metrics = dict(extra.get("last_metrics") or {})
        self.last_checkpoint = path
        saved_world = int(extra.get("world_size", 1))
        if extra.get("scaler") and self.scaler is not None:
            self.scaler.load_state_dict(extra["scaler"])
        if extra.get("data_state") is not None and hasattr(self.train_loader, "load_state_dict"):
            self.train_loader.load_state_dict(extra["data_state"])
        elif not hasattr(self.train_loader, "load_state_dict"):
            self._log("the training loader has no load_state_dict: data order restarts")
        self._iterator = None
        rank = self.dist.rank
        if saved_world != self.dist.world_size:
            self._log(
                f"checkpoint written by {saved_world} process(es), resuming with "
                f"{self.dist.world_size}: RNG streams are re-seeded, the run is not bitwise exact"
            )
            _seed_everything(self.config.training.seed + rank + self.step)
        else:
            rng_json = (extra.get("rng") or {}).get(str(rank), {})
            cpu_state = tensors.get(f"rng_torch_cpu_rank{rank}")
            if cpu_state is not None:
                torch.set_rng_state(cpu_state.to("cpu", torch.uint8))
            cuda_state = tensors.get(f"rng_torch_cuda_rank{rank}")
            if cuda_state is not None and self.device.type == "cuda":
                torch.cuda.set_rng_state(cuda_state.to("cpu", torch.uint8), self.device)
            if rng_json.get("python") is not None:
                _set_python_rng_state(rng_json["python"])
            _set_numpy_rng_state(rng_json.get("numpy"))
        self._warn_config_changes(extra.get("config"))
        if self.dist.is_main and self.save_experiments:
            self._stored_max_step = self._stored_steps_max()
        self._log(f"resumed from {path} (step {self.step})")

    def _warn_config_changes(self, saved: Mapping[str, Any] | None) -> None:
        if not saved:
            return
        current = config_to_dict(self.config)
        changes = [
            f"{section}.{key}: {saved[section].get(key)!r} -> {value!r}"
            for section, values in current.items()
            if isinstance(values, dict) and isinstance(saved.get(section), dict)
            for key, value in values.items()
            if json.dumps(saved[section].get(key), default=str) != json.dumps(value, default=str)
        ]
        if changes:
            self._log("config differs from the checkpoint's: " + "; ".join(changes))

    # ------------------------------------------------------------------ Ctrl-C

    def _install_interrupt_handler(self) -> Any:
        if self.dist.is_distributed or threading.current_thread() is not threading.main_thread():
            return None

        def handler(signum: int, frame: Any) -> None:
            self._stop_requested = True
            # A second Ctrl-C interrupts at once.
            signal.signal(signal.SIGINT, signal.default_int_handler)
            self._log("stopping after this step (Ctrl-C again to abort without a checkpoint)")

        try:
            return signal.signal(signal.SIGINT, handler)
        except ValueError:  # not the main interpreter thread
            return None

    @staticmethod
    def _restore_interrupt_handler(previous: Any) -> None:
        if previous is not None:
            with contextlib.suppress(ValueError):
                signal.signal(signal.SIGINT, previous)


def _count_parameters(model: nn.Module) -> int:
    counter = getattr(model, "num_parameters", None)
    if callable(counter):
        return int(counter())
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())

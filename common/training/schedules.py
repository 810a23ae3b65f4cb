"""Learning-rate schedules: linear warmup, then cosine, linear, constant or warmup-stable-decay.

``lr_at_step(step, cfg)`` is the learning rate used by optimizer step ``step`` (0-based):

- warmup (``step < warmup_steps``): ``lr * (step + 1) / warmup_steps``, rising to ``lr``;
- ``cosine``: half a cosine from ``lr`` down to ``min_lr``;
- ``linear``: a straight line from ``lr`` down to ``min_lr``;
- ``constant``: ``lr``;
- ``wsd`` (warmup-stable-decay): ``lr`` until the last ``decay_fraction`` of the steps, then a
  straight line down to ``min_lr``.

The decaying schedules reach ``min_lr`` at the last step, ``max_steps - 1``. After warmup the rate
never goes below ``min_lr`` (steps past ``max_steps`` stay at the floor).
``create_scheduler`` wraps the same function in a ``LambdaLR`` whose state is plain JSON.
"""

from __future__ import annotations

import math

import torch

from common.utils.config import SCHEDULES, TrainingConfig, validate_schedule

__all__ = ["SCHEDULES", "create_scheduler", "lr_at_step", "validate_schedule"]


def lr_at_step(step: int, cfg: TrainingConfig) -> float:
    """The learning rate of optimizer step ``step`` (0-based) under ``cfg``'s schedule.

    Args:
        step: the optimizer step about to be taken.
        cfg: ``lr``, ``min_lr``, ``warmup_steps``, ``max_steps``, ``schedule`` and
            ``decay_fraction`` are read.

    Returns:
        The learning rate.

    Raises:
        ConfigError: unknown schedule name.
    """
    if cfg.schedule not in SCHEDULES:
        validate_schedule(cfg)
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return cfg.lr
    if cfg.schedule == "wsd":
        decay_steps = round(cfg.decay_fraction * cfg.max_steps)
        decay_start = max(cfg.max_steps - decay_steps, cfg.warmup_steps)
        if step < decay_start:
            return cfg.lr
        span = max(cfg.max_steps - 1 - decay_start, 1)
        progress = min((step - decay_start) / span, 1.0)
        return max(cfg.min_lr, cfg.lr - (cfg.lr - cfg.min_lr) * progress)
    span = max(cfg.max_steps - 1 - cfg.warmup_steps, 1)
    progress = min((step - cfg.warmup_steps) / span, 1.0)
    if cfg.schedule == "linear":
        value = cfg.lr - (cfg.lr - cfg.min_lr) * progress
    else:
        value = cfg.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (cfg.lr - cfg.min_lr)
    return max(cfg.min_lr, value)


def create_scheduler(
    optimizer: torch.optim.Optimizer, cfg: TrainingConfig, start_step: int = 0
) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` that sets every param group's rate to ``lr_at_step(step, cfg)``.

    Call ``scheduler.step()`` after each ``optimizer.step()``. The scheduler's ``state_dict()`` is
    JSON-serializable (numbers only), so it checkpoints without pickling.

    Args:
        optimizer: the optimizer (every group's base rate is set to ``cfg.lr``).
        cfg: the training config.
        start_step: the step the schedule starts at (a resumed run whose schedule changed
            takes the new schedule's rate from that step on).

    Returns:
        The scheduler, already applied to ``start_step``.

    Raises:
        ConfigError: invalid schedule settings.
    """
    validate_schedule(cfg)
    for group in optimizer.param_groups:
        group["lr"] = group["initial_lr"] = cfg.lr
    # A closure, not a callable object: LambdaLR.state_dict() would store an object's __dict__.
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_at_step(step, cfg) / cfg.lr, last_epoch=start_step - 1
    )

"""Learning-rate schedules: warmup, then cosine / linear / constant / warmup-stable-decay."""

from __future__ import annotations

import json
import math

import pytest
import torch

from common.training.schedules import create_scheduler, lr_at_step
from common.utils.config import ConfigError, TrainingConfig


def _cfg(schedule: str, **kw) -> TrainingConfig:
    base = {"max_steps": 100, "warmup_steps": 10, "lr": 1.0, "min_lr": 0.1}
    return TrainingConfig(schedule=schedule, **{**base, **kw})


def _curve(cfg: TrainingConfig, steps: int = 110) -> list[float]:
    return [lr_at_step(s, cfg) for s in range(steps)]


@pytest.mark.parametrize("schedule", ["cosine", "linear", "constant", "wsd"])
def test_linear_warmup_reaches_peak(schedule: str) -> None:
    lrs = _curve(_cfg(schedule))
    assert lrs[:10] == pytest.approx([(s + 1) / 10 for s in range(10)])
    assert lrs[10] == pytest.approx(1.0)


def test_cosine_decays_monotonically_to_floor_at_last_step() -> None:
    lrs = _curve(_cfg("cosine"))
    decay = lrs[10:100]
    assert all(a >= b for a, b in zip(decay, decay[1:]))
    assert lrs[99] == pytest.approx(0.1)
    mid = 10 + (99 - 10) / 2  # halfway through the decay the cosine is at the midpoint
    assert lr_at_step(int(mid), _cfg("cosine")) == pytest.approx(0.55, abs=0.02)
    assert min(lrs) >= 0.1 - 1e-12 and lrs[105] == pytest.approx(0.1)


def test_linear_is_a_straight_line() -> None:
    lrs = _curve(_cfg("linear"))
    diffs = [a - b for a, b in zip(lrs[10:99], lrs[11:100])]
    assert max(diffs) == pytest.approx(min(diffs)) and diffs[0] > 0
    assert lrs[99] == pytest.approx(0.1)


def test_constant_stays_at_peak() -> None:
    lrs = _curve(_cfg("constant"))
    assert all(v == 1.0 for v in lrs[10:])


def test_wsd_stable_then_decays_over_last_fraction() -> None:
    lrs = _curve(_cfg("wsd", decay_fraction=0.2))
    assert all(v == 1.0 for v in lrs[10:81])  # stable until the last 20 steps
    assert lrs[81] < 1.0
    decay = lrs[80:100]
    assert all(a > b for a, b in zip(decay, decay[1:]))
    assert lrs[99] == pytest.approx(0.1) and lrs[109] == pytest.approx(0.1)


def test_no_warmup_starts_at_peak() -> None:
    assert lr_at_step(0, _cfg("cosine", warmup_steps=0)) == pytest.approx(1.0)


def test_scheduler_applies_schedule_and_state_is_json() -> None:
    cfg = _cfg("cosine", lr=3e-3, min_lr=3e-4)
    param = torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.AdamW([param], lr=123.0)
    sched = create_scheduler(opt, cfg)
    seen = []
    for _ in range(100):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert seen == pytest.approx([lr_at_step(s, cfg) for s in range(100)])
    state = json.loads(json.dumps(sched.state_dict()))
    fresh = create_scheduler(torch.optim.AdamW([param], lr=1.0), cfg)
    fresh.load_state_dict(state)
    assert fresh.get_last_lr() == pytest.approx(sched.get_last_lr())
    assert math.isfinite(fresh.get_last_lr()[0])


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"schedule": "exponential"}, "training.schedule"),
        ({"min_lr": 2.0}, "training.min_lr"),
        ({"decay_fraction": 1.5}, "training.decay_fraction"),
        ({"max_steps": 0}, "training.max_steps"),
    ],
)
def test_invalid_settings_name_the_field(changes: dict, field: str) -> None:
    cfg = _cfg(**{"schedule": "cosine", **changes})
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))])
    with pytest.raises(ConfigError, match=field):
        create_scheduler(opt, cfg)

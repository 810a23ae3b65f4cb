"""Evaluation rows of a run on the embedded corpus carry its floor and the model's gap to it."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.training.records import metrics_row

TINY = [
    "model.d_model=32",
    "model.n_layers=1",
    "model.n_heads=2",
    "model.context_length=32",
    "data.synthetic_train_stories=120",
    "data.synthetic_val_stories=8",
    "data.vocab_size=300",
    "training.batch_size=4",
    "training.max_steps=3",
    "training.warmup_steps=1",
    "training.eval_interval=3",
    "training.eval_batches=2",
    "training.checkpoint_interval=3",
    "training.device=cpu",
    "logging.sample_tokens=2",
]


def test_metrics_row_adds_floor_and_gap_only_when_given_a_floor() -> None:
    row = metrics_row({"loss": 1.0, "bits_per_byte": 0.9}, split="val", floor_bits_per_byte=0.5)
    assert row["floor_bits_per_byte"] == 0.5
    assert row["gap_bits_per_byte"] == pytest.approx(0.4)
    plain = metrics_row({"loss": 1.0, "bits_per_byte": 0.9}, split="val")
    assert "floor_bits_per_byte" not in plain and "gap_bits_per_byte" not in plain
    no_bpb = metrics_row({"loss": 1.0}, split="val", floor_bits_per_byte=0.5)
    assert no_bpb["gap_bits_per_byte"] is None
    with pytest.raises(ValueError, match="given twice"):
        metrics_row({"loss": 1.0, "gap_bits_per_byte": 0.1}, split="val")


@pytest.mark.slow
def test_training_and_evaluate_rows_carry_floor_and_gap(
    isolated_assets: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from common.utils import query_experiments
    from projects.custom_transformer import evaluate, train

    args = [a for item in TINY for a in ("--set", item)]
    assert train.main(["--config", "configs/tiny.yaml", "--name", "floored", *args]) == 0
    out = capsys.readouterr().out
    assert "finished floored: step 3" in out
    assert "floor " in out and "gap " in out

    assert evaluate.main(["--run", "floored", "--max-new-tokens", "2"]) == 0
    out = capsys.readouterr().out
    assert "floor (a perfect model's score)" in out and "gap" in out

    frame = query_experiments(
        "SELECT step, split, bits_per_byte, floor_bits_per_byte, gap_bits_per_byte, "
        "eval_batches IS NOT NULL AS by_evaluate FROM experiments "
        "WHERE experiment_name = 'floored' AND split = 'val' ORDER BY step, by_evaluate"
    )
    rows = list(frame.itertuples(index=False))
    assert [(r.step, bool(r.by_evaluate)) for r in rows] == [(3, False), (3, True)]
    floors = {r.floor_bits_per_byte for r in rows}
    assert len(floors) == 1 and 0 < floors.pop() < 8
    for r in rows:
        assert r.bits_per_byte > r.floor_bits_per_byte  # an untrained model is far from perfect
        assert r.gap_bits_per_byte == pytest.approx(r.bits_per_byte - r.floor_bits_per_byte)

"""Checkpoints of ``BaseLanguageModel``: exact round trips, atomicity, no pickle, clear errors."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from torch import nn

import common.models.checkpoint as base
import common.utils.atomic as atomic
from common.models import BaseLanguageModel, CheckpointError, load_model_from_checkpoint

REPO_ROOT = Path(__file__).resolve().parent.parent


class TinyLM(BaseLanguageModel):
    """Embedding -> linear -> tied head; dropout so that RNG state matters when resuming."""

    def __init__(
        self,
        vocab_size: int = 13,
        d_model: int = 8,
        context_length: int = 16,
        dropout: float = 0.0,
        extra_layer: bool = False,
    ) -> None:
        super().__init__(
            vocab_size,
            d_model=d_model,
            context_length=context_length,
            dropout=dropout,
            extra_layer=extra_layer,
        )
        self.emb = nn.Embedding(vocab_size, d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.extra = nn.Linear(d_model, d_model) if extra_layer else None
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(d_model, vocab_size, bias=False)
        self.head.weight = self.emb.weight
        self.register_buffer("scale", torch.full((1,), 0.5))

    def forward(
        self, input_ids: torch.Tensor, labels: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        h = torch.tanh(self.proj(self.emb(input_ids)))
        if self.extra is not None:
            h = h + self.extra(h)
        logits = self.head(self.drop(h) * self.scale)
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = self.loss_from_logits(logits, labels)
        return out


class OtherLM(TinyLM):
    """A distinct subclass, to check class checks in ``from_checkpoint``."""


def _batch(seed: int, batch: int = 4, length: int = 8, vocab: int = 13) -> torch.Tensor:
    return torch.randint(
        0, vocab, (batch, length + 1), generator=torch.Generator().manual_seed(seed)
    )


def _setup(seed: int = 0, dropout: float = 0.1):
    torch.manual_seed(seed)
    model = TinyLM(dropout=dropout)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0 / (1 + s))
    return model, optimizer, scheduler


def _train(model, optimizer, scheduler, steps: range) -> None:
    model.train()
    for step in steps:
        data = _batch(step)
        loss = model(data[:, :-1], data[:, 1:])["loss"]
        loss.backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)


def _assert_state_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], torch.Tensor):
            assert a[key].dtype == b[key].dtype, key
            assert torch.equal(a[key], b[key]), key
        elif isinstance(a[key], dict):
            _assert_state_equal(a[key], b[key])
        else:
            assert a[key] == b[key] and type(a[key]) is type(b[key]), key


def _assert_optimizer_equal(a: torch.optim.Optimizer, b: torch.optim.Optimizer) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    assert [type(g["betas"]) for g in sb["param_groups"]] == [tuple] * len(sb["param_groups"])
    _assert_state_equal(sa["state"], sb["state"])


def test_round_trip_restores_everything_bitwise(tmp_path: Path) -> None:
    model, optimizer, scheduler = _setup()
    _train(model, optimizer, scheduler, range(3))
    rng = torch.get_rng_state()
    extra_tensors = {"rng": rng, "half": torch.arange(4, dtype=torch.bfloat16) / 3}
    extra = {"loader": {"step": 3}, "note": "x", "values": [1, 2.5, None]}
    path = model.save_checkpoint(
        tmp_path / "ckpt",
        optimizer,
        scheduler,
        step=3,
        extra=extra,
        metrics={"loss": torch.tensor(1.25), "acc": 0.5},
        extra_tensors=extra_tensors,
    )
    assert path == tmp_path / "ckpt"

    fresh, fresh_opt, fresh_sched = _setup(seed=123)
    info = fresh.load_checkpoint(path, fresh_opt, fresh_sched)

    _assert_state_equal(model.state_dict(), fresh.state_dict())
    assert fresh.head.weight is fresh.emb.weight
    _assert_optimizer_equal(optimizer, fresh_opt)
    assert fresh_sched.state_dict() == scheduler.state_dict()
    assert fresh_sched.get_last_lr() == scheduler.get_last_lr()
    assert info["step"] == 3
    assert info["extra"] == extra
    assert info["metrics"] == {"loss": 1.25, "acc": 0.5}
    assert info["config"] == model.config
    assert info["class"] == f"{__name__}:TinyLM"
    assert info["torch_version"] == torch.__version__
    assert "created_at" in info
    assert info["extra_tensors"].keys() == extra_tensors.keys()
    for key, tensor in extra_tensors.items():
        assert info["extra_tensors"][key].dtype == tensor.dtype
        assert torch.equal(info["extra_tensors"][key], tensor)


def test_resumed_training_equals_uninterrupted_training_bitwise(tmp_path: Path) -> None:
    model, optimizer, scheduler = _setup()
    _train(model, optimizer, scheduler, range(6))

    first, first_opt, first_sched = _setup()
    _train(first, first_opt, first_sched, range(3))
    first.save_checkpoint(
        tmp_path / "ckpt",
        first_opt,
        first_sched,
        step=3,
        extra_tensors={"rng": torch.get_rng_state()},
    )
    torch.manual_seed(999)  # disturb the RNG: resuming must restore it

    resumed, resumed_opt, resumed_sched = _setup(seed=7)
    info = resumed.load_checkpoint(tmp_path / "ckpt", resumed_opt, resumed_sched)
    torch.set_rng_state(info["extra_tensors"]["rng"])
    _train(resumed, resumed_opt, resumed_sched, range(info["step"], 6))

    _assert_state_equal(model.state_dict(), resumed.state_dict())
    _assert_optimizer_equal(optimizer, resumed_opt)


def test_files_are_only_safetensors_and_json(tmp_path: Path) -> None:
    model, optimizer, scheduler = _setup()
    _train(model, optimizer, scheduler, range(1))
    path = model.save_checkpoint(
        tmp_path / "ckpt", optimizer, scheduler, step=1, extra_tensors={"r": torch.get_rng_state()}
    )
    names = sorted(p.name for p in path.iterdir())
    assert names == sorted(
        [
            "checkpoint.json",
            "model.safetensors",
            "optimizer.json",
            "optimizer.safetensors",
            "scheduler.json",
            "state.safetensors",
        ]
    )
    for name in names:
        if name.endswith(".json"):
            json.loads((path / name).read_text())
        else:
            with safe_open(str(path / name), framework="pt") as fh:
                assert list(fh.keys())
    with safe_open(str(path / "model.safetensors"), framework="pt") as fh:
        # The tied head is stored once and recorded as an alias.
        assert "head.weight" not in set(fh.keys()) and "emb.weight" in set(fh.keys())
    meta = json.loads((path / "checkpoint.json").read_text())
    assert meta["aliases"]["model.safetensors"] == {"head.weight": "emb.weight"}
    assert meta["format_version"] == 2
    # Only the model file when there is nothing else to save.
    bare = model.save_checkpoint(tmp_path / "bare")
    assert sorted(p.name for p in bare.iterdir()) == ["checkpoint.json", "model.safetensors"]


def test_loading_never_unpickles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model, optimizer, scheduler = _setup()
    _train(model, optimizer, scheduler, range(2))
    path = model.save_checkpoint(
        tmp_path / "ckpt", optimizer, scheduler, step=2, extra_tensors={"r": torch.get_rng_state()}
    )

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("checkpoint loading must not unpickle")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    monkeypatch.setattr(torch, "load", refuse)

    fresh, fresh_opt, fresh_sched = _setup(seed=5)
    fresh.load_checkpoint(path, fresh_opt, fresh_sched)
    _assert_state_equal(model.state_dict(), fresh.state_dict())
    rebuilt = load_model_from_checkpoint(path)
    _assert_state_equal(model.state_dict(), rebuilt.state_dict())


def test_non_json_state_is_refused_before_touching_disk(tmp_path: Path) -> None:
    model, optimizer, scheduler = _setup()
    model.save_checkpoint(tmp_path / "ckpt", step=1)

    class TensorScheduler:
        def state_dict(self) -> dict:
            return {"last": torch.zeros(2)}

    with pytest.raises(TypeError, match="scheduler"):
        model.save_checkpoint(tmp_path / "ckpt", scheduler=TensorScheduler(), step=2)
    with pytest.raises(TypeError, match="extra"):
        model.save_checkpoint(tmp_path / "ckpt", step=2, extra={"obj": object()})
    with pytest.raises(TypeError, match="extra_tensors"):
        model.save_checkpoint(tmp_path / "ckpt", step=2, extra_tensors={"x": [1, 2]})  # type: ignore[dict-item]
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]
    assert model.load_checkpoint(tmp_path / "ckpt")["step"] == 1


def test_crash_while_writing_keeps_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, optimizer, scheduler = _setup()
    path = model.save_checkpoint(tmp_path / "ckpt", optimizer, scheduler, step=1)
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    _train(model, optimizer, scheduler, range(2))

    real_write_json = base._write_json
    calls = []

    def crash_after_first(file: Path, payload: object) -> None:
        calls.append(file.name)
        if len(calls) > 1:
            raise OSError("disk full (simulated)")
        real_write_json(file, payload)

    monkeypatch.setattr(base, "_write_json", crash_after_first)
    with pytest.raises(base.CheckpointWriteError, match="simulated"):
        model.save_checkpoint(path, optimizer, scheduler, step=2)
    monkeypatch.undo()
    assert calls[0] == "optimizer.json"  # model and optimizer files were already on disk

    fresh = TinyLM(dropout=0.1)
    assert fresh.load_checkpoint(path)["step"] == 1
    _assert_state_equal(saved, fresh.state_dict())
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]  # the partial temp dir is gone


def test_crash_between_renames_loads_a_complete_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, optimizer, scheduler = _setup()
    path = model.save_checkpoint(tmp_path / "ckpt", optimizer, scheduler, step=1)
    old_state = {k: v.clone() for k, v in model.state_dict().items()}
    _train(model, optimizer, scheduler, range(2))

    real_rename = os.rename
    renames = []

    def crash_on_second_rename(src: str | os.PathLike, dst: str | os.PathLike) -> None:
        renames.append((Path(src).name, Path(dst).name))
        if len(renames) == 2:
            raise KeyboardInterrupt("killed between renames (simulated)")
        real_rename(src, dst)

    monkeypatch.setattr(atomic.os, "rename", crash_on_second_rename)
    with pytest.raises(KeyboardInterrupt):
        model.save_checkpoint(path, optimizer, scheduler, step=2)
    monkeypatch.undo()
    assert not path.exists()  # old moved aside, the new one removed by the failed save

    fresh, fresh_opt, fresh_sched = _setup(seed=3)
    info = fresh.load_checkpoint(path, fresh_opt, fresh_sched)
    assert info["step"] == 1  # the complete sibling
    _assert_state_equal(old_state, fresh.state_dict())
    assert base.read_checkpoint_metadata(path)["step"] == 1

    model.save_checkpoint(path, optimizer, scheduler, step=3)
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]  # leftovers cleaned up
    assert fresh.load_checkpoint(path)["step"] == 3


_KILL_SCRIPT = textwrap.dedent("""
    import sys
    import torch
    from torch import nn
    from common.models.base import BaseLanguageModel

    class Big(BaseLanguageModel):
        def __init__(self, vocab_size=1024, d_model=512):
            super().__init__(vocab_size, d_model=d_model)
            self.emb = nn.Embedding(vocab_size, d_model)
            self.a = nn.Linear(d_model, d_model)
            self.b = nn.Linear(d_model, vocab_size)

        def forward(self, input_ids, labels=None):
            return {"logits": self.b(self.a(self.emb(input_ids)))}

    torch.set_num_threads(1)
    model = Big()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    step = 0
    while True:
        step += 1
        with torch.no_grad():
            for p in model.parameters():
                p.fill_(step)
        model.save_checkpoint(sys.argv[1], optimizer=opt, step=step)
        print(step, flush=True)
    """)


@pytest.mark.slow
def test_killed_saving_process_leaves_a_complete_checkpoint(tmp_path: Path) -> None:
    script = tmp_path / "saver.py"
    script.write_text(_KILL_SCRIPT)
    target = tmp_path / "ckpt"
    for delay in (0.013,):
        proc = subprocess.Popen(
            [sys.executable, str(script), str(target)],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            for _ in range(3):  # let a few saves complete, then kill in the middle of another
                assert proc.stdout.readline().strip(), "saver process died"
            time.sleep(delay)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()

        meta = base.read_checkpoint_metadata(target)
        step = meta["step"]
        assert step >= 3
        state = base._load_tensors(
            base.resolve_checkpoint_dir(target) / "model.safetensors", "cpu", {}
        )
        assert state and all(bool((t == step).all()) for t in state.values())


def test_architecture_mismatch_names_keys_and_shapes(tmp_path: Path) -> None:
    path = TinyLM(d_model=8).save_checkpoint(tmp_path / "ckpt")

    with pytest.raises(CheckpointError) as info:
        TinyLM(d_model=12).load_checkpoint(path)
    message = str(info.value)
    assert "emb.weight: checkpoint (13, 8) vs model (13, 12)" in message
    assert "proj.weight: checkpoint (8, 8) vs model (12, 12)" in message

    with pytest.raises(CheckpointError) as info:
        TinyLM(extra_layer=True).load_checkpoint(path)
    assert "missing keys" in str(info.value)
    assert "extra.weight" in str(info.value) and "extra.bias" in str(info.value)

    bigger = TinyLM(extra_layer=True).save_checkpoint(tmp_path / "bigger")
    untouched = TinyLM()
    before = {k: v.clone() for k, v in untouched.state_dict().items()}
    with pytest.raises(CheckpointError) as info:
        untouched.load_checkpoint(bigger)
    assert "unexpected keys" in str(info.value) and "extra.weight" in str(info.value)
    _assert_state_equal(before, untouched.state_dict())  # nothing was half-loaded


def test_optimizer_mismatch_and_missing_state_are_clear(tmp_path: Path) -> None:
    model, optimizer, _ = _setup()
    _train(model, optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0), range(1))
    path = model.save_checkpoint(tmp_path / "ckpt", optimizer)
    other = TinyLM()
    with pytest.raises(CheckpointError, match="scheduler"):
        other.load_checkpoint(
            path,
            scheduler=torch.optim.lr_scheduler.LambdaLR(
                torch.optim.AdamW(other.parameters()), lambda s: 1.0
            ),
        )
    weights_only = model.save_checkpoint(tmp_path / "weights")
    with pytest.raises(CheckpointError, match="no optimizer state"):
        other.load_checkpoint(weights_only, torch.optim.AdamW(other.parameters()))
    with pytest.raises(CheckpointError, match="optimizer"):
        other.load_checkpoint(path, torch.optim.AdamW([other.emb.weight]))


def test_from_checkpoint_rebuilds_the_recorded_class(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = OtherLM(vocab_size=17, d_model=6, context_length=5)
    path = model.save_checkpoint(tmp_path / "ckpt", step=4)

    for rebuilt in (
        BaseLanguageModel.from_checkpoint(path),
        load_model_from_checkpoint(str(path)),
        TinyLM.from_checkpoint(path),
        OtherLM.from_checkpoint(path / "checkpoint.json"),
    ):
        assert type(rebuilt) is OtherLM
        assert rebuilt.config == model.config
        assert rebuilt.context_length == 5
        assert not rebuilt.training
        assert rebuilt.head.weight is rebuilt.emb.weight
        _assert_state_equal(model.state_dict(), rebuilt.state_dict())

    tiny_path = TinyLM().save_checkpoint(tmp_path / "tiny")
    with pytest.raises(CheckpointError, match="not a subclass of OtherLM"):
        OtherLM.from_checkpoint(tiny_path)


def test_from_checkpoint_refuses_classes_that_are_not_models(tmp_path: Path) -> None:
    path = TinyLM().save_checkpoint(tmp_path / "ckpt")
    meta_file = path / "checkpoint.json"
    meta = json.loads(meta_file.read_text())
    for spec, pattern in [
        ("collections:OrderedDict", "not a registered model class"),
        ("os:system", "not a registered model class"),
        ("no_such_module_xyz:Model", "not a registered model class"),
        (f"{__name__}:Missing", "not a registered model class"),
        ("TinyLM", "module:QualName"),
    ]:
        meta["class"] = spec
        meta_file.write_text(json.dumps(meta))
        with pytest.raises(CheckpointError, match=pattern):
            load_model_from_checkpoint(path)


def test_missing_or_incomplete_checkpoints_raise(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no checkpoint found"):
        TinyLM().load_checkpoint(tmp_path / "nothing")
    path = TinyLM().save_checkpoint(tmp_path / "ckpt")
    with open(path / "model.safetensors", "ab") as fh:
        fh.write(b"junk")  # size no longer matches the recorded one
    with pytest.raises(CheckpointError, match="not a complete checkpoint"):
        TinyLM().load_checkpoint(path)
    (path / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="not a complete checkpoint"):
        load_model_from_checkpoint(path)


def test_overwriting_replaces_the_checkpoint_and_leaves_no_debris(tmp_path: Path) -> None:
    model, optimizer, scheduler = _setup()
    path = model.save_checkpoint(tmp_path / "run" / "latest", optimizer, scheduler, step=1)
    _train(model, optimizer, scheduler, range(1))
    model.save_checkpoint(path, step=2)  # no optimizer this time: its files must disappear
    assert sorted(p.name for p in path.iterdir()) == ["checkpoint.json", "model.safetensors"]
    assert [p.name for p in path.parent.iterdir()] == ["latest"]
    fresh = TinyLM()
    assert fresh.load_checkpoint(path)["step"] == 2
    _assert_state_equal(model.state_dict(), fresh.state_dict())


def test_untied_shared_views_are_stored_without_sharing(tmp_path: Path) -> None:
    class Views(BaseLanguageModel):
        def __init__(self, vocab_size: int = 4) -> None:
            super().__init__(vocab_size)
            self.w = nn.Parameter(torch.arange(8.0).reshape(2, 4))
            self.register_buffer("row", self.w.data[1])  # a view into w's storage

        def forward(self, input_ids: torch.Tensor, labels: torch.Tensor | None = None) -> dict:
            return {"logits": self.w[0].expand(*input_ids.shape, 4)}

    model = Views()
    path = model.save_checkpoint(tmp_path / "ckpt")
    fresh = Views()
    with torch.no_grad():
        fresh.w.zero_()
    fresh.load_checkpoint(path)
    assert torch.equal(fresh.w, model.w) and torch.equal(fresh.row, model.row)


def test_a_changed_weight_is_caught_by_its_checksum(tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    model = TinyLM()
    path = model.save_checkpoint(tmp_path / "ckpt", step=1)
    weights = load_file(str(path / "model.safetensors"))
    weights["proj.weight"][0, :4] = 1.0  # same size, different content
    save_file(weights, str(path / "model.safetensors"))
    with pytest.raises(CheckpointError, match="model.safetensors does not match its recorded SHA"):
        TinyLM().load_checkpoint(path)
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_model_from_checkpoint(path)


def test_loading_never_imports_the_module_a_checkpoint_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    canary = tmp_path / "mods" / "canary_mod.py"
    canary.parent.mkdir()
    marker = tmp_path / "imported"
    canary.write_text(f"open({str(marker)!r}, 'w').close()\nX = object\n")
    monkeypatch.syspath_prepend(str(canary.parent))
    path = TinyLM().save_checkpoint(tmp_path / "ckpt")
    meta = json.loads((path / "checkpoint.json").read_text())
    meta["class"] = "canary_mod:X"
    (path / "checkpoint.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="not a registered model class"):
        load_model_from_checkpoint(path)
    assert not marker.exists() and "canary_mod" not in sys.modules


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("step", "eighty", "field 'step' must be a whole number"),
        ("step", -3, "field 'step' must be a whole number"),
        ("extra", [], "field 'extra' must be a dict"),
        ("config", "x", "field 'config' must be a dict"),
        ("class", 5, "field 'class' must be a str"),
        ("aliases", {"model.safetensors": [1]}, "malformed tensor aliases"),
        ("format_version", 99, "format version 99"),
    ],
)
def test_malformed_fields_are_one_clear_error(
    tmp_path: Path, field: str, value: object, message: str
) -> None:
    path = TinyLM().save_checkpoint(tmp_path / "ckpt", step=1)
    meta = json.loads((path / "checkpoint.json").read_text())
    meta[field] = value
    (path / "checkpoint.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=message):
        load_model_from_checkpoint(path)


def test_a_full_disk_leaves_the_previous_checkpoint_intact(tmp_path: Path) -> None:
    model, optimizer, scheduler = _setup()
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        path = model.save_checkpoint(disk / "ckpt", step=1)
        saved = {k: v.clone() for k, v in model.state_dict().items()}
        with pytest.raises(base.CheckpointWriteError, match="No space left") as info:
            model.save_checkpoint(path, optimizer, scheduler, step=2, extra={"pad": "x" * 60_000})
        assert str(path) in str(info.value)
        fresh = TinyLM()
        assert fresh.load_checkpoint(path)["step"] == 1
        _assert_state_equal(saved, fresh.state_dict())
        assert [p.name for p in disk.iterdir()] == ["ckpt"]
    finally:
        subprocess.run(["umount", str(disk)], check=True)

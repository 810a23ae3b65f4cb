"""pretrained_lm on a tiny random GPT-2 and Llama served by the Hub stand-in and downloaded with
the real CLI: the adapter's conventions, LoRA, checkpoints, export, a changed base, zero-shot
evaluation, fine-tuning, and SIGKILL then resume equal to an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from common.models.checkpoint import CheckpointError
from projects.pretrained_lm.model import (
    BaseModelChangedError,
    PretrainedLM,
    export_pretrained,
)
from projects.pretrained_lm.tests.tiny_models import GPT2_REPO, LLAMA_REPO

REPO_ROOT = Path(__file__).resolve().parents[3]
WORKER = Path(__file__).resolve().parent / "kill_worker.py"
TINY = "projects/pretrained_lm/configs/tiny.yaml"
QUICK_SETTINGS = [
    "model.context_length=32", "data.synthetic_train_stories=200",
    "data.synthetic_val_stories=20", "data.num_workers=1", "training.batch_size=4",
    "training.lr=1e-2", "training.warmup_steps=2", "training.max_steps=8",
    "training.eval_interval=2", "training.checkpoint_interval=3",
    "training.keep_checkpoints=10", "training.device=cpu",
    "logging.progress_bar=false", "logging.log_interval=0", "logging.sample_tokens=4",
]  # fmt: skip
"""8 steps of 4 x 32 tokens, evaluated every 2 over the whole (20-story) validation split."""


def sets(*settings: str) -> list[str]:
    """``--set`` arguments for ``settings``."""
    return [arg for setting in settings for arg in ("--set", setting)]


QUICK = sets(*QUICK_SETTINGS)


def batch(model: PretrainedLM, length: int = 24) -> tuple[torch.Tensor, torch.Tensor]:
    """Two sequences of the model's own tokens (``length + 1`` each), some labels ``-100``."""
    from common.data.tokenizers import load_tokenizer

    tokenizer = load_tokenizer(model.base_folder)
    text = "Once upon a time there was a little girl named Lily. She found a shiny stone. " * 3
    ids = torch.tensor(tokenizer.encode(text)[: 2 * (length + 1)]).view(2, length + 1)
    masked = ids.clone()
    masked[0, 5:9] = -100
    return ids, masked


def perturb_adapter(model: PretrainedLM) -> None:
    """Give the LoRA B matrices (zero at initialization) values, so the adapter changes logits."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.5)


def run(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip


def check_ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr
    return proc.stdout


def rows(name: str) -> list[tuple]:
    from common.utils import query_experiments

    frame = query_experiments(
        "SELECT step, split, loss, bits_per_byte FROM experiments "
        f"WHERE experiment_name = '{name}' ORDER BY step, split"
    )
    return [
        tuple(None if isinstance(v, float) and v != v else v for v in row)  # NaN: no bytes
        for row in frame.itertuples(index=False)
    ]


# ------------------------------------------------------------------------------ the adapter
@pytest.mark.parametrize("repo", [GPT2_REPO, LLAMA_REPO])
@pytest.mark.parametrize("lora_rank", [0, 4])
def test_loss_equals_transformers_own_loss(models: Path, repo: str, lora_rank: int) -> None:
    model = PretrainedLM(pretrained=repo, context_length=32, lora_rank=lora_rank).eval()
    perturb_adapter(model)
    ids, masked = batch(model)
    with torch.no_grad():
        ours = model(ids[:, :-1], labels=masked[:, 1:])  # the loader's convention: shifted
        theirs = model.hf(input_ids=ids, labels=masked)  # transformers shifts inside
        base = PretrainedLM(pretrained=repo, context_length=32).eval()(ids[:, :-1])
    assert abs(float(ours["loss"]) - float(theirs.loss)) < 1e-5
    assert torch.allclose(ours["logits"], theirs.logits[:, :-1], atol=1e-6)
    changed = float((base["logits"] - ours["logits"]).abs().max())
    assert changed > 1e-3 if lora_rank else changed == 0.0  # the adapter is in the loss


def test_lora_trains_only_the_adapter_and_checkpoints_only_it(models: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    model = PretrainedLM(pretrained=GPT2_REPO, context_length=32, lora_rank=4, lora_alpha=16)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    perturb_adapter(model)
    path = model.save_checkpoint(tmp_path / "ckpt", step=3)
    stored = load_file(str(path / "model.safetensors"))
    assert set(stored) == trainable
    assert model.config["base_folder"] == str(models / GPT2_REPO)
    assert model.config["revision"] and "model.safetensors" in model.config["base_files"]
    again = PretrainedLM.from_checkpoint(path)
    ids, masked = batch(model)
    model.eval()
    assert torch.equal(again(ids)["logits"], model(ids)["logits"])


@pytest.mark.parametrize(("repo", "lora_rank"), [(GPT2_REPO, 4), (LLAMA_REPO, 0)])
def test_export_loads_with_from_pretrained(
    models: Path, tmp_path: Path, repo: str, lora_rank: int
) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = PretrainedLM(pretrained=repo, context_length=32, lora_rank=lora_rank)
    perturb_adapter(model)
    if not lora_rank:
        with torch.no_grad():
            next(model.parameters()).add_(0.25)  # a fine-tuned weight, not the base's
    checkpoint = model.save_checkpoint(tmp_path / "ckpt", step=1)
    out = export_pretrained(checkpoint, tmp_path / "exported")
    loaded = AutoModelForCausalLM.from_pretrained(str(out), local_files_only=True).eval()
    ids, _ = batch(model)
    model.eval()
    assert torch.allclose(loaded(input_ids=ids).logits, model(ids)["logits"], atol=1e-5)
    assert not any("lora" in k for k in loaded.state_dict())
    tokenizer = AutoTokenizer.from_pretrained(str(out), local_files_only=True)
    assert tokenizer.decode(tokenizer.encode("Once upon a time")) == "Once upon a time"
    with pytest.raises(FileExistsError):
        export_pretrained(checkpoint, out)


def test_a_changed_base_folder_is_refused(models: Path, tmp_path: Path) -> None:
    model = PretrainedLM(pretrained=LLAMA_REPO, context_length=32, lora_rank=2)
    checkpoint = model.save_checkpoint(tmp_path / "ckpt", step=1)
    weights = models / LLAMA_REPO / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + b"\x00" * 8)  # same size, other bytes
    with pytest.raises(CheckpointError, match=r"changed since .* model\.safetensors differ"):
        PretrainedLM.from_checkpoint(checkpoint)
    fresh = PretrainedLM(pretrained=LLAMA_REPO, context_length=32, lora_rank=2)
    with pytest.raises(BaseModelChangedError, match="--revision .* --force"):
        fresh.load_checkpoint(checkpoint)  # what a resume does


def test_a_model_not_downloaded_is_one_clear_line(
    isolated_assets: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from projects.pretrained_lm.evaluate import main as evaluate_main
    from projects.pretrained_lm.train import main as train_main

    code = train_main(["--config", TINY, "--set", "model.pretrained=nobody/missing"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "python tools/download_hf_model.py --repo-id nobody/missing" in err
    assert evaluate_main(["--model", "nobody/missing", "--config", TINY]) == 2
    assert "--repo-id nobody/missing" in capsys.readouterr().err


def test_bits_per_byte_count_the_same_bytes_for_every_tokenizer(models: Path) -> None:
    from common.data.pipeline import prepare_data
    from common.utils.config import load_config
    from projects.pretrained_lm.model import PretrainedConfig

    overrides = ["data.synthetic_train_stories=50", "data.synthetic_val_stories=10"]
    counts = {}
    for name, extra in (
        ("bpe", ["data.tokenizer=bpe", "data.vocab_size=300"]),
        ("gpt2", [f"model.pretrained={GPT2_REPO}"]),
        ("llama", [f"model.pretrained={LLAMA_REPO}"]),
    ):
        config = load_config(REPO_ROOT / TINY, overrides + extra, model_cls=PretrainedConfig)
        data = prepare_data(config.data, 32, 4, seed=0)
        counts[name] = (data.val_file.num_bytes, data.val_file.meta["exact_bytes"])  # type: ignore[union-attr]
        if name == "llama":
            assert data.tokenizer.eot_token == "</s>"
    assert counts["bpe"] == counts["gpt2"] == counts["llama"]
    assert counts["bpe"][1] is True


# ------------------------------------------------------------------------------ the commands
def start(*args: str, **env: str) -> subprocess.Popen[str]:
    """``python ARGS`` in the background (the slow tests run their processes side by side)."""
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore", **env}
    return subprocess.Popen(
        [sys.executable, *args], cwd=REPO_ROOT, env=environment, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def finish(proc: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    out, err = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.slow
def test_zero_shot_lora_and_the_flagship_rank_on_one_validation_text(models: Path) -> None:
    from common.utils import best_experiments

    zero_shot = start(
        "-m", "projects.pretrained_lm.evaluate", "--model", GPT2_REPO, "--config", TINY,
        *sets(*QUICK_SETTINGS[:4]), "--max-new-tokens", "4",
    )  # fmt: skip
    lora = [*QUICK, "--set", f"model.pretrained={GPT2_REPO}", "--set", "model.lora_rank=8"]
    lora_run = start(
        "-m", "projects.pretrained_lm.train", "--config", TINY, *lora, "--name", "lora"
    )
    flagship = sets(*(q.replace("lr=1e-2", "lr=5e-3") for q in QUICK_SETTINGS))
    flagship_run = start(
        "-m", "projects.custom_transformer.train", "--config",
        "projects/custom_transformer/configs/tiny.yaml", *flagship, "--set", "model.d_model=32",
        "--set", "model.n_heads=2", "--set", "data.vocab_size=300", "--name", "flagship",
    )  # fmt: skip
    assert "stored: split 'val' row at step 0" in check_ok(finish(zero_shot))
    check_ok(finish(lora_run))
    check_ok(finish(flagship_run))
    best = best_experiments("bits_per_byte", top=5).df()
    print(best.to_string())
    zero_name = "pretrained_lm-tiny-gpt2-tiny-zeroshot"
    assert set(best["experiment_name"]) == {zero_name, "lora", "flagship"}
    assert rows(zero_name)[0][:2] == (0, "val")
    # the adapter learned: fine-tuned bits per byte below the zero-shot ones
    assert rows("lora")[-1][3] < rows(zero_name)[0][3]


def weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


@pytest.mark.slow
@pytest.mark.parametrize(("repo", "lora_rank"), [(GPT2_REPO, 0), (LLAMA_REPO, 4)])
def test_sigkill_then_resume_equals_an_uninterrupted_run(
    models: Path, isolated_assets: Path, repo: str, lora_rank: int,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    from projects.pretrained_lm.train import main as train_main

    args = ["--config", TINY, *QUICK, "--set", f"model.pretrained={repo}"]
    args += ["--set", f"model.lora_rank={lora_rank}"]
    whole = start(str(WORKER), *args, "--name", "whole")
    killed = finish(start(str(WORKER), *args, "--name", "killed", KILL_AT_RENAME=r"step_0000006$"))
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    check_ok(finish(whole))
    runs = isolated_assets / "outputs" / "checkpoints"
    assert (runs / "killed" / "step_0000003").is_dir()
    assert not (runs / "killed" / "step_0000006").exists()
    check_ok(finish(start("-m", "projects.pretrained_lm.train", "--resume", "killed")))
    assert rows("killed") == rows("whole") and len(rows("whole")) == 8
    final = {name: weights(runs / name / "step_0000008") for name in ("whole", "killed")}
    assert final["whole"].keys() == final["killed"].keys()
    assert all(torch.equal(final["whole"][k], final["killed"][k]) for k in final["whole"])
    if lora_rank:
        assert all("lora_" in k for k in final["whole"])
    # the base changes under the run: resuming refuses with one line naming the file
    config_file = models / repo / "config.json"
    config_file.write_text(config_file.read_text() + "\n")
    capsys.readouterr()
    assert train_main(["--resume", "killed", "--max-steps", "10"]) == 2
    err = capsys.readouterr().err
    assert "config.json differ" in err and "Traceback" not in err
    assert len(rows("killed")) == 8

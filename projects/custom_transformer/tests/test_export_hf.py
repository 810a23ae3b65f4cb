"""``export_hf``: ``transformers.LlamaForCausalLM.from_pretrained`` reproduces our logits.

Tolerance: logits within ``atol=1e-4`` in float32 (observed ~5e-7; Hugging Face runs the same
math with its own kernels). Non-default ``rope_theta`` and ``norm_eps`` and non-unit norm gains
make sure those are carried over.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from projects.custom_transformer.export import export_hf
from projects.custom_transformer.model import CustomTransformer
from projects.custom_transformer.tests.helpers import one_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")

transformers = pytest.importorskip("transformers")


@pytest.mark.parametrize("tied", [True, False])
def test_llama_from_pretrained_gives_same_logits(tmp_path: Path, tied: bool) -> None:
    torch.manual_seed(0)
    model = CustomTransformer(
        vocab_size=101, context_length=32, d_model=64, n_layers=2, n_heads=4, d_ff=96,
        tie_embeddings=tied, rope_theta=500.0, norm_eps=1e-6,
    )  # fmt: skip
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("norm.weight"):
                param.add_(0.2 * torch.randn_like(param))
    out = export_hf(model, tmp_path / "hf", eos_token_id=3)

    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "llama" and config["architectures"] == ["LlamaForCausalLM"]
    assert config["hidden_size"] == 64 and config["intermediate_size"] == 96
    assert config["num_attention_heads"] == config["num_key_value_heads"] == 4
    assert config["tie_word_embeddings"] is tied and config["max_position_embeddings"] == 32
    assert config["rms_norm_eps"] == 1e-6 and config["rope_parameters"]["rope_theta"] == 500.0
    assert json.loads((out / "generation_config.json").read_text())["eos_token_id"] == 3

    from safetensors import safe_open

    with safe_open(str(out / "model.safetensors"), "pt") as f:
        names = set(f.keys())
    assert "model.layers.1.self_attn.k_proj.weight" in names
    assert "model.layers.0.mlp.gate_proj.weight" in names
    assert ("lm_head.weight" in names) is not tied
    assert len(names) == 2 + 9 * 2 + (0 if tied else 1)

    hf = transformers.LlamaForCausalLM.from_pretrained(out)
    hf.eval()
    model.eval()
    ids = torch.randint(0, 101, (2, 32))
    with torch.no_grad():
        ours = model(ids)["logits"]
        theirs = hf(ids).logits
    torch.testing.assert_close(theirs, ours, atol=1e-4, rtol=0)


def test_export_rejects_other_models(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="export_hf expects"):
        export_hf(torch.nn.Linear(2, 2), tmp_path)  # type: ignore[arg-type]

"""Export to the Hugging Face Llama format (``transformers.LlamaForCausalLM.from_pretrained``).

The architecture is exactly Llama's (pre-norm RMSNorm, rotary embeddings with ``rotate_half``,
SwiGLU, no biases, ``num_key_value_heads == num_attention_heads``), so the export only renames
parameters and splits the fused matrices:

=====================================  ==============================================
this repository                        Hugging Face Llama
=====================================  ==============================================
``embed.weight``                       ``model.embed_tokens.weight``
``layers.{i}.attn_norm.weight``        ``model.layers.{i}.input_layernorm.weight``
``layers.{i}.attn.wqkv.weight``        ``model.layers.{i}.self_attn.{q,k,v}_proj.weight``
``layers.{i}.attn.wo.weight``          ``model.layers.{i}.self_attn.o_proj.weight``
``layers.{i}.ffn_norm.weight``         ``model.layers.{i}.post_attention_layernorm.weight``
``layers.{i}.ffn.w_gate_up.weight``    ``model.layers.{i}.mlp.{gate,up}_proj.weight``
``layers.{i}.ffn.w_down.weight``       ``model.layers.{i}.mlp.down_proj.weight``
``norm.weight``                        ``model.norm.weight``
``lm_head.weight`` (untied only)       ``lm_head.weight`` (absent when tied)
=====================================  ==============================================
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from common.models.base import BaseLanguageModel

__all__ = ["export_hf", "hf_config", "hf_state_dict"]

_DTYPE_NAMES = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}


def _check_model(model: BaseLanguageModel) -> dict[str, Any]:
    cfg = dict(getattr(model, "config", None) or {})
    needed = ("vocab_size", "context_length", "d_model", "n_layers", "n_heads", "d_ff")
    missing = [k for k in needed if cfg.get(k) is None]
    if missing or not hasattr(model, "layers"):
        raise TypeError(
            f"export_hf expects a CustomTransformer or ReferenceTransformer; "
            f"{type(model).__name__} lacks {missing or ['layers']}"
        )
    return cfg


def hf_config(
    model: BaseLanguageModel,
    dtype: torch.dtype = torch.float32,
    bos_token_id: int | None = None,
    eos_token_id: int | None = None,
) -> dict[str, Any]:
    """The ``config.json`` content (a ``LlamaConfig``) describing ``model``.

    Args:
        model: A ``CustomTransformer`` or ``ReferenceTransformer``.
        dtype: Dtype the weights are stored in.
        bos_token_id, eos_token_id: Special token ids to record (None: not set).

    Returns:
        A JSON-serializable dict.
    """
    cfg = _check_model(model)
    rope_theta = float(cfg.get("rope_theta", 10000.0))
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": cfg["vocab_size"],
        "hidden_size": cfg["d_model"],
        "intermediate_size": cfg["d_ff"],
        "num_hidden_layers": cfg["n_layers"],
        "num_attention_heads": cfg["n_heads"],
        "num_key_value_heads": cfg["n_heads"],
        "head_dim": cfg["d_model"] // cfg["n_heads"],
        "hidden_act": "silu",
        "max_position_embeddings": cfg["context_length"],
        "rms_norm_eps": float(cfg.get("norm_eps", 1e-5)),
        # transformers >= 5 reads rope_parameters; 4.x reads rope_theta
        "rope_parameters": {"rope_type": "default", "rope_theta": rope_theta},
        "rope_theta": rope_theta,
        "tie_word_embeddings": bool(cfg.get("tie_embeddings", False)),
        "attention_bias": False,
        "attention_dropout": 0.0,
        "mlp_bias": False,
        "initializer_range": 0.02,
        "use_cache": True,
        "pretraining_tp": 1,
        "bos_token_id": bos_token_id,
        "eos_token_id": eos_token_id,
        "pad_token_id": None,
        "torch_dtype": _DTYPE_NAMES.get(dtype, str(dtype).removeprefix("torch.")),
    }


def hf_state_dict(
    model: BaseLanguageModel, dtype: torch.dtype | None = None
) -> dict[str, torch.Tensor]:
    """``model``'s weights under Hugging Face Llama names (fused matrices split).

    Args:
        model: A ``CustomTransformer`` or ``ReferenceTransformer``.
        dtype: Cast to this dtype (None: keep).

    Returns:
        Contiguous CPU tensors by name (no ``lm_head.weight`` when the embeddings are tied).
    """
    cfg = _check_model(model)
    d, f = cfg["d_model"], cfg["d_ff"]
    src = {k: v.detach() for k, v in model.state_dict().items()}
    out: dict[str, torch.Tensor] = {
        "model.embed_tokens.weight": src["embed.weight"],
        "model.norm.weight": src["norm.weight"],
    }
    for i in range(cfg["n_layers"]):
        pre, hf = f"layers.{i}.", f"model.layers.{i}."
        q, k, v = src[pre + "attn.wqkv.weight"].split(d, dim=0)
        gate, up = src[pre + "ffn.w_gate_up.weight"].split(f, dim=0)
        out.update(
            {
                hf + "input_layernorm.weight": src[pre + "attn_norm.weight"],
                hf + "self_attn.q_proj.weight": q,
                hf + "self_attn.k_proj.weight": k,
                hf + "self_attn.v_proj.weight": v,
                hf + "self_attn.o_proj.weight": src[pre + "attn.wo.weight"],
                hf + "post_attention_layernorm.weight": src[pre + "ffn_norm.weight"],
                hf + "mlp.gate_proj.weight": gate,
                hf + "mlp.up_proj.weight": up,
                hf + "mlp.down_proj.weight": src[pre + "ffn.w_down.weight"],
            }
        )
    if not cfg.get("tie_embeddings", False):
        out["lm_head.weight"] = src["lm_head.weight"]
    return {
        name: (t if dtype is None else t.to(dtype)).cpu().contiguous().clone()
        for name, t in out.items()
    }


def export_hf(
    model: BaseLanguageModel,
    path: str | os.PathLike[str],
    *,
    dtype: torch.dtype | None = None,
    bos_token_id: int | None = None,
    eos_token_id: int | None = None,
) -> Path:
    """Write ``model`` as a Hugging Face Llama model directory.

    Files: ``config.json`` (a ``LlamaConfig``), ``model.safetensors`` (Hugging Face parameter
    names) and ``generation_config.json``. ``transformers.LlamaForCausalLM.from_pretrained(path)``
    then gives the same logits as ``model`` (a tokenizer can be saved beside it with
    ``tokenizer.save(path)``).

    Args:
        model: A ``CustomTransformer`` or ``ReferenceTransformer``.
        path: Output directory (created; existing files of the same names are replaced).
        dtype: Store the weights in this dtype (default: the model's parameter dtype).
        bos_token_id, eos_token_id: Special token ids to record in the configs.

    Returns:
        The directory.

    Raises:
        TypeError: ``model`` is not one of this project's transformers.
    """
    from safetensors.torch import save_file

    tensors = hf_state_dict(model, dtype)
    stored = next(iter(tensors.values())).dtype
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    config = hf_config(model, stored, bos_token_id, eos_token_id)
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    generation = {"_from_model_config": True, "bos_token_id": bos_token_id}
    generation["eos_token_id"] = eos_token_id
    (out / "generation_config.json").write_text(json.dumps(generation, indent=2) + "\n")
    return out

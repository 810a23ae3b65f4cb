"""``BaseLanguageModel``: the base class of every language model, with generation and checkpoints.

Checkpoints are folders of safetensors and JSON, checksummed and never pickled; their format and
the registry of model classes live in ``common.models.checkpoint``. Every subclass joins that
registry when it is defined, so ``from_checkpoint`` can rebuild it without importing anything a
file names.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from typing import Any, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from common.models import checkpoint
from common.models.checkpoint import (
    CheckpointError,
    read_checkpoint_metadata,
    resolve_checkpoint_dir,
)

__all__ = [
    "BaseLanguageModel",
    "CheckpointError",
    "load_model_from_checkpoint",
    "read_checkpoint_metadata",
    "resolve_checkpoint_dir",
]

IGNORE_INDEX = -100

M = TypeVar("M", bound="BaseLanguageModel")


class BaseLanguageModel(nn.Module):
    """Base class of every language model in the monorepo.

    Subclasses call ``super().__init__(vocab_size, **all_other_constructor_args)`` first, so that
    ``type(model)(**model.config)`` rebuilds the same architecture (that is how
    :meth:`from_checkpoint` works), and implement :meth:`forward`.

    Forward convention (nanoGPT style, *not* Hugging Face style):
        ``forward(input_ids, labels=None) -> {"logits": [B, T, V], "loss": scalar}``.
        ``labels`` are ALREADY SHIFTED by the data loader: ``labels[:, t]`` is the target for
        the prediction made at position ``t`` (the token following ``input_ids[:, t]``). Models
        must not shift again. Positions whose label is ``-100`` are ignored. ``"loss"`` (present
        only when labels are given) is the mean cross-entropy over the non-ignored positions;
        :meth:`loss_from_logits` computes exactly that.

    Args:
        vocab_size: Size of the vocabulary.
        **kwargs: Every other constructor argument of the subclass (``context_length``,
            ``d_model``, ...). Values must be JSON-serializable.

    Raises:
        TypeError: If the configuration is not JSON-serializable.
    """

    config: dict[str, Any]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        checkpoint.register_model_class(cls)

    def __init__(self, vocab_size: int, **kwargs: Any) -> None:
        super().__init__()
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 1:
            raise TypeError(f"vocab_size must be a positive int, got {vocab_size!r}")
        config = {"vocab_size": vocab_size, **kwargs}
        try:
            text = json.dumps(config, allow_nan=False)
        except (TypeError, ValueError) as exc:
            bad = [k for k, v in config.items() if not _is_json_value(v)]
            raise TypeError(
                f"{type(self).__name__} config must be JSON-serializable (it is saved in "
                f"checkpoints and rebuilt with cls(**config)); offending keys: {bad or '?'} "
                f"({exc})"
            ) from None
        # Stored as its JSON round trip so the in-memory config equals what a checkpoint rebuilds.
        self.config = json.loads(text)

    # ------------------------------------------------------------------ basic properties
    @property
    def vocab_size(self) -> int:
        """Size of the vocabulary."""
        return int(self.config["vocab_size"])

    @property
    def context_length(self) -> int | None:
        """Maximum sequence length the model accepts (``None``: unlimited)."""
        value = self.config.get("context_length")
        return None if value is None else int(value)

    def forward(
        self, input_ids: torch.Tensor, labels: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Compute logits (and the loss when ``labels`` are given); see the class docstring.

        Args:
            input_ids: Token ids ``[B, T]`` (int64).
            labels: Already-shifted targets ``[B, T]``; ``-100`` marks ignored positions.

        Returns:
            ``{"logits": [B, T, V]}`` plus ``"loss"`` (scalar) when labels are given.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement forward()")

    @staticmethod
    def loss_from_logits(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy over non-ignored positions (labels already shifted, ``-100`` ignored).

        Half-precision logits are upcast to float32 first. A batch whose labels are all ``-100``
        gives ``nan`` (0/0), as :func:`torch.nn.functional.cross_entropy` does.

        Args:
            logits: ``[..., V]`` scores.
            labels: ``[...]`` int64 targets, same leading shape as ``logits``.

        Returns:
            Scalar loss tensor.
        """
        if logits.dtype in (torch.float16, torch.bfloat16):
            logits = logits.float()
        return F.cross_entropy(
            logits.reshape(-1, logits.size(-1)), labels.reshape(-1), ignore_index=IGNORE_INDEX
        )

    # ------------------------------------------------------------------ parameters
    def num_parameters(self, exclude_embeddings: bool = False) -> int:
        """Number of parameters, each shared (tied) parameter counted once.

        Args:
            exclude_embeddings: Leave out the weights of every ``nn.Embedding`` module (an output
                head tied to an embedding shares its weight and is left out with it).

        Returns:
            The parameter count.
        """
        excluded: set[int] = set()
        if exclude_embeddings:
            for module in self.modules():
                if isinstance(module, nn.Embedding):
                    excluded.add(id(module.weight))
        seen: set[int] = set()
        total = 0
        for param in self.parameters():  # parameters() already de-duplicates by identity
            if id(param) in seen or id(param) in excluded:
                continue
            seen.add(id(param))
            total += param.numel()
        return total

    # ------------------------------------------------------------------ generation
    @torch.no_grad()
    def generate(
        self,
        input_ids: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        eos_token_id: int | None = None,
        do_sample: bool = True,
        *,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Autoregressively extend ``input_ids`` by up to ``max_new_tokens`` tokens.

        The context fed to the model is cropped to its last ``context_length`` tokens. Decoding is
        greedy when ``do_sample`` is false or ``temperature`` is 0; otherwise tokens are sampled
        from the temperature-scaled distribution after top-k and then nucleus (top-p) filtering.
        A row that produced ``eos_token_id`` is finished: it is padded with ``eos_token_id`` and
        generation stops early once every row is finished. Runs without gradients in eval mode
        and restores the previous train/eval mode.

        Args:
            input_ids: Prompt ids ``[B, T]`` (or ``[T]``, returned as ``[T']``), ``T >= 1``.
            max_new_tokens: Maximum number of tokens to append (>= 0).
            temperature: Softmax temperature (>= 0; 0 means greedy).
            top_k: Keep only the ``top_k`` most likely tokens (>= 1).
            top_p: Keep the smallest set of tokens whose probability mass reaches ``top_p``
                (0 < top_p <= 1).
            eos_token_id: Token that finishes a row.
            do_sample: Sample (True) or take the argmax (False).
            generator: Optional random generator for reproducible sampling.

        Returns:
            ``[B, T + n]`` int64 ids, prompt included, with ``n <= max_new_tokens``.
        """
        if max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
        if temperature < 0 or math.isnan(temperature):
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        if top_k is not None and top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        if top_p is not None and not 0.0 < top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        squeeze = input_ids.dim() == 1
        ids = input_ids.unsqueeze(0) if squeeze else input_ids
        if ids.dim() != 2 or ids.size(1) == 0:
            raise ValueError(f"input_ids must be [B, T] with T >= 1, got shape {tuple(ids.shape)}")
        ids = ids.long()
        greedy = not do_sample or temperature == 0
        limit = self.context_length
        finished = torch.zeros(ids.size(0), dtype=torch.bool, device=ids.device)

        was_training = self.training
        self.eval()
        try:
            for _ in range(max_new_tokens):
                context = ids if limit is None or ids.size(1) <= limit else ids[:, -limit:]
                out = self(context)
                logits = out["logits"] if isinstance(out, Mapping) else out
                logits = logits[:, -1, :].float()
                if greedy:
                    next_ids = logits.argmax(dim=-1)
                else:
                    logits = _filter_logits(logits / temperature, top_k, top_p)
                    probs = torch.softmax(logits, dim=-1)
                    next_ids = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
                if eos_token_id is not None:
                    next_ids = torch.where(
                        finished, torch.full_like(next_ids, eos_token_id), next_ids
                    )
                    finished |= next_ids == eos_token_id
                ids = torch.cat([ids, next_ids.unsqueeze(-1)], dim=1)
                if eos_token_id is not None and bool(finished.all()):
                    break
        finally:
            self.train(was_training)
        return ids.squeeze(0) if squeeze else ids

    # ------------------------------------------------------------------ checkpoints
    # The checkpoint functions take the model first, so they are these methods as they are.
    save_checkpoint = checkpoint.save_checkpoint
    load_checkpoint = checkpoint.load_checkpoint

    @classmethod
    def from_checkpoint(
        cls: type[M], path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
    ) -> M:
        """Rebuild the model class recorded in a checkpoint and load its weights.

        The recorded class is looked up among the defined ``BaseLanguageModel`` subclasses (a
        class registers itself when its module is imported; a checkpoint never causes an
        import); it must be a subclass of the class this is called on. The model is returned on
        ``map_location`` in eval mode.

        Args:
            path: Checkpoint folder.
            map_location: Device to place the model on.

        Returns:
            The rebuilt model.

        Raises:
            CheckpointError: If the class is not registered or not a suitable subclass, cannot be
                built from the stored config, or the checkpoint is damaged or does not fit.
        """
        directory = checkpoint.resolve_checkpoint_dir(path)
        metadata = checkpoint.read_checkpoint_metadata(directory)
        model_cls = checkpoint.registered_model_class(metadata["class"])
        if not issubclass(model_cls, cls):
            raise CheckpointError(
                f"checkpoint {directory} holds a {model_cls.__module__}.{model_cls.__qualname__},"
                f" which is not a subclass of {cls.__qualname__}"
            )
        try:
            model = model_cls(**metadata["config"])
        except (TypeError, ValueError) as exc:
            raise CheckpointError(
                f"cannot build {model_cls.__qualname__} from the config in {directory}: {exc}"
            ) from exc
        model.to(torch.device(map_location))
        model.load_checkpoint(directory, map_location=map_location)
        model.eval()
        return model


def load_model_from_checkpoint(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> BaseLanguageModel:
    """Rebuild whichever registered model class a checkpoint records and load its weights.

    Args:
        path: Checkpoint folder.
        map_location: Device to place the model on.

    Returns:
        The model, in eval mode.
    """
    return BaseLanguageModel.from_checkpoint(path, map_location=map_location)


# ---------------------------------------------------------------------- helpers: generation
def _filter_logits(logits: torch.Tensor, top_k: int | None, top_p: float | None) -> torch.Tensor:
    """Set logits outside the top-k / nucleus sets to -inf (always keeping the best token)."""
    if top_k is not None and top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        probs = torch.softmax(sorted_logits, dim=-1)
        mass_before = probs.cumsum(dim=-1) - probs
        remove_sorted = mass_before >= top_p
        remove_sorted[..., 0] = False
        remove = torch.zeros_like(remove_sorted).scatter(-1, order, remove_sorted)
        logits = logits.masked_fill(remove, float("-inf"))
    return logits


def _is_json_value(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True

"""Evaluation of language models: token-weighted loss, perplexity, bits per byte, samples."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from common.training.records import compute_perplexity, metrics_row

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Evaluator", "compute_perplexity", "split_batch"]

IGNORE_INDEX = -100


class Evaluator:
    """Evaluates a language model on a data loader and generates text samples.

    The model may be wrapped in ``DistributedDataParallel`` (its ``.module`` is used, so no
    collective runs per batch). When ``torch.distributed`` is initialized, each rank evaluates the
    batches of its own loader and the sums are all-reduced, so every rank returns the metrics of
    the union of the shards.

    Args:
        model: A model whose ``forward(input_ids)`` returns ``{"logits": [B, T, V]}`` (or logits).
        device: ``"cuda"`` (default; CPU with a warning when unavailable), ``"cuda:N"``, ``"cpu"``,
            ``"mps"`` or ``"auto"``. The model is moved there.
        amp_dtype: Optional autocast dtype (``torch.bfloat16``/``torch.float16``, or their names)
            used for the forward pass on CUDA.
    """

    def __init__(
        self,
        model: nn.Module,
        device: str | torch.device = "cuda",
        *,
        amp_dtype: torch.dtype | str | None = None,
    ) -> None:
        from common.training.distributed import resolve_device

        self.wrapped_model = model
        self.model: nn.Module = _unwrap(model)
        model_device = _model_device(self.model)
        if str(device) == "cuda" and model_device is not None and model_device.type == "cuda":
            device = model_device
        self.device = resolve_device(str(device))
        if _model_device(self.model) != self.device:
            self.model.to(self.device)
        if isinstance(amp_dtype, str):
            names = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16}
            names |= {"fp16": torch.float16, "float16": torch.float16}
            if amp_dtype not in names:
                raise ValueError(f"amp_dtype must be one of {sorted(names)}, got {amp_dtype!r}")
            amp_dtype = names[amp_dtype]
        self.amp_dtype: torch.dtype | None = amp_dtype

    @staticmethod
    def create_metrics_dataframe(
        metrics: Mapping[str, Any], epoch: int | float, split: str = "val", **extra: Any
    ) -> pd.DataFrame:
        """One-row DataFrame ``epoch, split, <metrics...>, <extra...>`` for ``save_experiment``.

        The row is ``common.training.records.metrics_row``'s, as the Trainer stores it.

        Args:
            metrics: Metric values (numbers; one-element tensors are converted).
            epoch: Epoch number (fractional epochs allowed).
            split: Data split the metrics come from (``val`` for the validation data).
            **extra: More columns (``step``, ``lr``, ``tokens_seen``, ...).

        Raises:
            ValueError: If ``extra`` repeats a metric name or ``epoch``/``split``.
        """
        import pandas as pd

        return pd.DataFrame([metrics_row(metrics, split=split, epoch=epoch, **extra)])

    def evaluate(self, dataloader: Iterable[Any], max_batches: int | None = None) -> dict[str, Any]:
        """Token-weighted cross-entropy of the model over (up to ``max_batches`` of) a loader.

        Batches are ``(input_ids, labels)`` or ``{"input_ids", "labels"}`` with labels already
        shifted and ``-100`` marking ignored positions. ``loss`` is the sum of per-token losses
        divided by the number of non-ignored tokens over all batches (not a mean of batch means).

        Bits per byte are reported when the loader exposes ``batch_num_bytes`` (bytes of text per
        batch, summed over the batches evaluated) or ``num_bytes`` (used only when the whole
        loader was evaluated): ``total_nats / (ln 2 * bytes)``.

        Args:
            dataloader: Iterable of batches (iterated afresh from its start).
            max_batches: Evaluate at most this many batches (``None``: all).

        Returns:
            ``{"loss", "perplexity", "num_tokens", "num_batches"}`` plus ``"bits_per_byte"`` when
            the byte count is known.

        Raises:
            ValueError: If ``max_batches < 1`` or no labelled token was seen.
        """
        if max_batches is not None and max_batches < 1:
            raise ValueError(f"max_batches must be >= 1 or None, got {max_batches}")
        model = self.model
        was_training = model.training
        model.eval()
        total_nats = 0.0
        num_tokens = 0
        num_batches = 0
        stopped_early = False
        try:
            with torch.no_grad():
                for batch in dataloader:
                    input_ids, labels = split_batch(batch)
                    input_ids = input_ids.to(self.device, non_blocking=True)
                    labels = labels.to(self.device, dtype=torch.long, non_blocking=True)
                    nats, tokens = self._batch_loss_sum(model, input_ids, labels)
                    total_nats += nats
                    num_tokens += tokens
                    num_batches += 1
                    # Checked after the batch so no extra batch is drawn from the loader.
                    if max_batches is not None and num_batches >= max_batches:
                        stopped_early = True
                        break
        finally:
            model.train(was_training)
        whole = not stopped_early or (
            _has_len(dataloader) and num_batches == len(dataloader)  # type: ignore[arg-type]
        )
        num_bytes = _bytes_covered(dataloader, num_batches, whole)

        total_nats, num_tokens, num_batches, num_bytes = self._all_reduce(
            total_nats, num_tokens, num_batches, num_bytes
        )
        if num_tokens == 0:
            raise ValueError(
                "evaluation saw no labelled tokens (empty loader or every label is -100)"
            )
        loss = total_nats / num_tokens
        metrics: dict[str, Any] = {
            "loss": loss,
            "perplexity": compute_perplexity(loss),
            "num_tokens": num_tokens,
            "num_batches": num_batches,
        }
        if num_bytes is not None and num_bytes > 0:
            metrics["bits_per_byte"] = total_nats / (math.log(2) * num_bytes)
        return metrics

    def _batch_loss_sum(
        self, model: nn.Module, input_ids: torch.Tensor, labels: torch.Tensor
    ) -> tuple[float, int]:
        """Sum of per-token cross-entropies (nats) and the number of non-ignored tokens."""
        use_amp = self.amp_dtype is not None and self.device.type == "cuda"
        with torch.autocast(
            device_type=self.device.type, dtype=self.amp_dtype or torch.bfloat16, enabled=use_amp
        ):
            out = model(input_ids)
        logits = out["logits"] if isinstance(out, Mapping) else out
        if logits.shape[:-1] != labels.shape:
            raise ValueError(
                f"logits {tuple(logits.shape)} do not match labels {tuple(labels.shape)}"
            )
        losses = F.cross_entropy(
            logits.reshape(-1, logits.size(-1)).float(),
            labels.reshape(-1),
            ignore_index=IGNORE_INDEX,
            reduction="none",
        )
        valid = labels.reshape(-1) != IGNORE_INDEX
        nats = losses.masked_select(valid).double().sum()
        return float(nats.item()), int(valid.sum().item())

    def _all_reduce(
        self, nats: float, tokens: int, batches: int, num_bytes: int | None
    ) -> tuple[float, int, int, int | None]:
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return nats, tokens, batches, num_bytes
        device = self.device if dist.get_backend() == "nccl" else torch.device("cpu")
        # has_bytes counts ranks that know their bytes: bits/byte only if every rank does.
        values = torch.tensor(
            [nats, tokens, batches, num_bytes or 0, 0 if num_bytes is None else 1],
            dtype=torch.float64,
            device=device,
        )
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
        total_nats, total_tokens, total_batches, total_bytes, has_bytes = values.tolist()
        all_bytes = int(has_bytes) == dist.get_world_size()
        return (
            total_nats,
            int(total_tokens),
            int(total_batches),
            int(total_bytes) if all_bytes else None,
        )

    def generate_samples(
        self, prompts: Sequence[str], tokenizer: Any, max_length: int = 50, **gen_kwargs: Any
    ) -> list[str]:
        """Continue each prompt with the model and decode the result.

        Generation stops at ``tokenizer.eot_token_id`` unless ``eos_token_id`` is passed; the
        end-of-text token is not included in the text.

        Args:
            prompts: Prompt strings (an empty prompt starts from the end-of-text token).
            tokenizer: Object with ``encode(str) -> list[int]``, ``decode(list[int]) -> str`` and
                ``eot_token_id``.
            max_length: Maximum number of tokens generated after each prompt.
            **gen_kwargs: Passed to ``model.generate`` (``temperature``, ``top_k``, ``top_p``,
                ``do_sample``, ``eos_token_id``, ``generator``).

        Returns:
            One string per prompt: the prompt followed by its continuation.
        """
        model = self.model
        generate = getattr(model, "generate", None)
        if generate is None:
            raise TypeError(f"{type(model).__name__} has no generate() method")
        eot = getattr(tokenizer, "eot_token_id", None)
        gen_kwargs.setdefault("eos_token_id", eot)
        eos = gen_kwargs["eos_token_id"]
        samples: list[str] = []
        for prompt in prompts:
            prompt_ids = list(tokenizer.encode(prompt)) if prompt else []
            context = prompt_ids or ([eot] if eot is not None else [])
            if not context:
                raise ValueError("empty prompt and the tokenizer has no eot_token_id to start from")
            ids = torch.tensor([context], dtype=torch.long, device=self.device)
            out = generate(ids, max_length, **gen_kwargs)
            new_ids = [int(t) for t in out[0, len(context) :].tolist()]
            if eos is not None and eos in new_ids:
                new_ids = new_ids[: new_ids.index(eos)]
            text = (
                tokenizer.decode(prompt_ids + new_ids) if prompt_ids else tokenizer.decode(new_ids)
            )
            samples.append(text)
        return samples


def seeded_samples(
    evaluator: Evaluator, prompts: Sequence[str], tokenizer: Any, *, max_length: int, seed: int
) -> list[str]:
    """``evaluator.generate_samples`` under ``seed``, leaving the caller's RNG streams as they
    were (training draws from them)."""
    devices = [evaluator.device] if evaluator.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        return list(evaluator.generate_samples(prompts, tokenizer, max_length=max_length))


def _unwrap(model: nn.Module) -> nn.Module:
    from torch.nn.parallel import DistributedDataParallel

    while isinstance(model, (DistributedDataParallel, nn.DataParallel)):
        model = model.module
    return model


def _model_device(model: nn.Module | None) -> torch.device | None:
    if model is None:
        return None
    for param in model.parameters():
        return param.device
    for buffer in model.buffers():
        return buffer.device
    return None


def split_batch(batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``(input_ids, labels)`` of a batch given as a pair or as a dict with those keys.

    Raises:
        ValueError: any other shape of batch.
    """
    if isinstance(batch, Mapping):
        try:
            return batch["input_ids"], batch["labels"]
        except KeyError as exc:
            raise ValueError(f"batch dict needs 'input_ids' and 'labels', missing {exc}") from None
    if isinstance(batch, (tuple, list)) and len(batch) >= 2:
        return batch[0], batch[1]
    raise ValueError(
        "a batch must be (input_ids, labels) or {'input_ids': ..., 'labels': ...}, "
        f"got {type(batch).__name__}"
    )


def _has_len(obj: Any) -> bool:
    try:
        len(obj)
    except TypeError:
        return False
    return True


def _bytes_covered(dataloader: Any, num_batches: int, whole: bool) -> int | None:
    per_batch = getattr(dataloader, "batch_num_bytes", None)
    if per_batch is not None:
        try:
            counts = list(per_batch)
        except TypeError:
            counts = []
        if len(counts) >= num_batches:
            return int(sum(int(c) for c in counts[:num_batches]))
    total = getattr(dataloader, "num_bytes", None)
    if whole and total is not None:
        return int(total)
    return None

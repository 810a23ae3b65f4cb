"""Training-step benchmark: hand-written backward (on ``ops.py`` and on the Triton kernels) vs
the autograd twin, the twin compiled, and Hugging Face's ``LlamaForCausalLM``.

Measures full training steps (forward with loss, ``loss.backward()``, AdamW step, ``zero_grad``)
on identical weights and batches of:

* ``handwritten``: ``CustomTransformer`` on ``ops.py`` (``model.kernels = "torch"``);
* ``handwritten_triton``: ``CustomTransformer`` on the Triton kernels (``kernels = "triton"``;
  CUDA only: on a CPU they would run in Triton's interpreter, which is no speed measurement);
* ``twin``: ``ReferenceTransformer`` (plain autograd); ``twin_compile``: the twin under
  ``torch.compile``;
* ``hf_llama_sdpa``: ``transformers.LlamaForCausalLM`` with ``attn_implementation="sdpa"``, the
  same weights (``projects.custom_transformer.export``); it shifts the labels itself, so its loss
  covers T-1 positions of each sequence (the work is the same to within one token in T);

and reports median step time, tokens per second, peak memory, and on CUDA the MFU. With
``--tinystories`` it also measures the peak memory of one training step of
``configs/tinystories.yaml`` (its model, batch and dtype, default ``kernels: auto``).

Method:
    * Every (variant, round) runs in a fresh subprocess; in each round the variants run back to
      back, in the given order in even rounds and reversed in odd ones (``benchmarks/_paired.py``).
      Each worker runs ``--warmup`` steps, then ``--steps`` timed steps, and reports its median
      step time, wall clock and its own process CPU time.
    * Comparisons (the time targets) are the median over rounds of the per-round ratio of the two
      variants' step times (``paired``: A and B measured in the same round, so a change of
      machine load between rounds cancels), for wall and for CPU time. On CPU the time target
      is decided on the paired CPU-time ratio (on a shared machine the wall clock also counts
      the waits for a busy core), on CUDA on the paired wall ratio (the GPU does the work).
      The per-variant step time, tokens/s and MFU are medians over all timed steps of all rounds.
    * CPU peak memory: a separate subprocess per variant with glibc forced to serve every
      allocation of 64 KiB or more by ``mmap`` (``MALLOC_MMAP_THRESHOLD_=65536``), so that freed
      tensors leave the resident set at once and the resident set follows the live tensor bytes.
      Before each step the kernel's high-water mark is reset (``/proc/self/clear_refs``); the
      step's peak is ``VmHWM`` after the step minus ``VmRSS`` before it (weights, optimizer state
      and batch already resident; gradients are not, ``zero_grad(set_to_none=True)``). Median
      over the timed steps. Timing runs use the default allocator (forcing ``mmap`` makes every
      step page-fault its memory in and would distort the times).
    * CUDA peak memory, measured in the timing workers themselves (reading the allocator's
      counters costs nothing, ``common.device``): the allocator's peak during the step minus
      what was allocated before it (``peak_memory_mib_median``), and the absolute peak with
      weights, gradients and optimizer state (``peak_allocated_mib``).
    * FLOPs per token (MFU on CUDA, TFLOP/s everywhere): ``6 * N + 12 * L * D * T`` with ``N`` the
      parameters used in matrix multiplies (embedding table counted once, as the output
      projection) and the attention term as in the PaLM paper (full, not causal, ``T x T``).
      MFU = tokens/s * FLOPs per token / the device's peak: ``--peak-tflops``, or by default the
      dense bf16 tensor-core peak of a known GPU from its name (``PEAK_BF16_TFLOPS``: H100 SXM
      and H200 989, H100 PCIe 756, A100 312; otherwise the flag is required).

Examples::

    python benchmarks/bench_custom_transformer.py                      # CPU target, float32
    python benchmarks/bench_custom_transformer.py --threads 1 --rounds 5
    python benchmarks/bench_custom_transformer.py --device cuda --dtype bf16 --preset gpt2-small

On a lent GPU, one command inside a time limit that leaves room to run it again (the parent
stops starting workers after ``--max-total-s``; ``timeout`` is the hard stop)::

    timeout 420 .venv/bin/python benchmarks/bench_custom_transformer.py --device cuda \
        --dtype bf16 --preset gpt2-small --rounds 2 --steps 5 --warmup 3 --timeout 150 \
        --max-total-s 360 --tinystories
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _paired  # noqa: E402

from common import device as gpu  # noqa: E402

VARIANTS = ("handwritten", "handwritten_triton", "twin", "twin_compile", "hf_llama_sdpa")
DEFAULT_VARIANTS = {
    "cpu": ("handwritten", "twin", "twin_compile"),
    "cuda": VARIANTS,
}
#: Dense bf16 tensor-core peaks (TFLOP/s, without sparsity) by a substring of the device name.
PEAK_BF16_TFLOPS = (("H100 PCIe", 756.0), ("H100", 989.0), ("H200", 989.0), ("A100", 312.0))
TINYSTORIES_CONFIG = REPO / "projects" / "custom_transformer" / "configs" / "tinystories.yaml"
TINYSTORIES_LIMIT_MIB = 14 * 1024
PRESETS: dict[str, dict[str, Any]] = {
    # the CPU target of the issue
    "cpu-small": dict(
        vocab_size=4096, context_length=256, d_model=256, n_layers=4, n_heads=8, batch_size=16
    ),
    # GPT-2 small sized (124M parameters with the tied 50304-token embedding)
    "gpt2-small": dict(
        vocab_size=50304, context_length=1024, d_model=768, n_layers=12, n_heads=12, batch_size=16
    ),
}
TARGETS = {
    "time_ratio_max": 0.9,
    "memory_ratio_max": 0.8,
    "gpu_mfu_min": 0.40,
    "gpu_triton_mfu_min": 0.45,
    "gpu_triton_vs_twin_compile_speed_min": 1.1,
    "gpu_triton_memory_ratio_max": 0.8,
}


def _fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


# ----------------------------------------------------------------------------- worker side
def _proc_status(field: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0  # MiB
    return float("nan")


def _reset_peak_rss() -> None:
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


def _tinystories_config() -> Any:
    from common.utils.config import load_config
    from projects.custom_transformer.model import TransformerConfig

    return load_config(TINYSTORIES_CONFIG, model_cls=TransformerConfig)


def _build(args: argparse.Namespace, variant: str) -> tuple[Any, Any, int]:
    import torch

    from projects.custom_transformer.model import CustomTransformer
    from projects.custom_transformer.reference import ReferenceTransformer

    kwargs = dict(
        vocab_size=args.vocab_size,
        context_length=args.context_length,
        d_model=args.d_model,
        n_layers=args.n_layers,
        n_heads=args.n_heads,
        tie_embeddings=not args.untied,
    )
    torch.manual_seed(0)
    if variant == "tinystories":
        cfg = _tinystories_config()
        model = CustomTransformer.from_config(cfg.model, cfg.data.vocab_size)
    elif variant.startswith("handwritten"):
        model = CustomTransformer(**kwargs)
        model.kernels = "triton" if variant == "handwritten_triton" else "torch"
    else:
        model = ReferenceTransformer(**kwargs)
    n_params = model.num_parameters()
    if variant == "hf_llama_sdpa":
        from transformers import LlamaConfig, LlamaForCausalLM

        from projects.custom_transformer.export import hf_config, hf_state_dict

        config = LlamaConfig(**hf_config(model), attn_implementation="sdpa")
        hf_model = LlamaForCausalLM(config)
        if hf_model.config._attn_implementation != "sdpa":
            raise RuntimeError(f"attention is {hf_model.config._attn_implementation}, not sdpa")
        missing, unexpected = hf_model.load_state_dict(hf_state_dict(model), strict=False)
        if unexpected or set(missing) - {"lm_head.weight"}:  # tied: lm_head is the embedding
            raise RuntimeError(f"weights do not match: {missing} {unexpected}")
        if config.tie_word_embeddings:
            hf_model.tie_weights()
        model = hf_model
    model = model.to(args.device)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.1)
    if variant == "twin_compile":
        model = torch.compile(model)
    return model, opt, n_params


def worker(args: argparse.Namespace) -> dict[str, Any]:
    import contextlib

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    model, opt, n_params = _build(args, args.variant)
    if args.variant == "tinystories":
        cfg = _tinystories_config()
        args.batch_size, args.context_length = cfg.training.batch_size, cfg.model.context_length
        args.vocab_size, args.dtype = cfg.data.vocab_size, cfg.training.dtype
    gen = torch.Generator().manual_seed(1)
    shape = (args.batch_size, args.context_length)
    ids = torch.randint(0, args.vocab_size, shape, generator=gen).to(device)
    labels = torch.randint(0, args.vocab_size, shape, generator=gen).to(device)
    autocast = (
        torch.autocast(device.type, dtype=torch.bfloat16)
        if args.dtype == "bf16"
        else contextlib.nullcontext()
    )

    def sync() -> None:
        gpu.synchronize(device)

    def step() -> float:
        with autocast:
            out = model(input_ids=ids, labels=labels)
        loss = out["loss"]
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        del out
        return float(loss.detach())

    t0 = time.perf_counter()
    first_loss = step()
    sync()
    first_step_s = time.perf_counter() - t0
    for _ in range(max(0, args.warmup - 1)):
        step()
    sync()
    walls, cpus, peaks = [], [], []
    measure = args.mode == "memory" or cuda
    for _ in range(args.steps):
        if measure:
            if cuda:
                gpu.reset_peak_memory(device)
                base = gpu.memory_allocated_mb(device) or 0.0
            else:
                _reset_peak_rss()
                base = _proc_status("VmRSS")
        sync()
        c0, w0 = time.process_time(), time.perf_counter()
        step()
        sync()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
        if measure:
            if cuda:
                peaks.append((gpu.max_allocated_mb(device) or 0.0) - base)
            else:
                peaks.append(_proc_status("VmHWM") - base)
    return {
        "variant": args.variant,
        "mode": args.mode,
        "params": n_params,
        "first_step_s": first_step_s,
        "first_loss": first_loss,
        "wall_s": walls,
        "cpu_s": cpus,
        "peak_mib": peaks,
        "peak_allocated_mib": gpu.max_allocated_mb(device),
        "kernels": getattr(model, "kernels", None),
        "threads": torch.get_num_threads(),
    }


# ----------------------------------------------------------------------------- parent side
def _run_worker(
    args: argparse.Namespace, variant: str, mode: str, timeout: float
) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", variant, "--mode", mode]
    for key in (
        "device",
        "dtype",
        "vocab_size",
        "context_length",
        "d_model",
        "n_layers",
        "n_heads",
        "batch_size",
        "steps",
        "warmup",
        "threads",
    ):
        cmd += [f"--{key.replace('_', '-')}", str(getattr(args, key))]
    if args.untied:
        cmd.append("--untied")
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    if mode == "memory" and args.device == "cpu":
        env["MALLOC_MMAP_THRESHOLD_"] = "65536"
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s", "elapsed_s": timeout}
    elapsed = time.perf_counter() - start
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"error": f"exit code {proc.returncode}: {' | '.join(tail)}", "elapsed_s": elapsed}
    result = json.loads(lines[-1])
    result["elapsed_s"] = elapsed
    return result


def _flops_per_token(args: argparse.Namespace) -> float:
    from projects.custom_transformer.model import resolve_d_ff

    d, layers, vocab = args.d_model, args.n_layers, args.vocab_size
    f = resolve_d_ff(d, None)
    matmul_params = layers * (4 * d * d + 3 * d * f) + vocab * d
    return 6.0 * matmul_params + 12.0 * layers * d * args.context_length


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _environment(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    env: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "threads": args.threads or torch.get_num_threads(),
        "hostname": platform.node(),
    }
    try:
        with open("/proc/cpuinfo") as fh:
            names = [ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")]
        env["cpu"] = names[0] if names else platform.processor()
    except OSError:
        env["cpu"] = platform.processor()
    if args.device.startswith("cuda") and gpu.cuda_available():
        env["gpu"] = gpu.device_name(torch.device(args.device))
        env["gpu_capability"] = gpu.capability(torch.device(args.device))
        env["cuda"] = gpu.cuda_version()
        env["driver"] = gpu.driver_version()
    from common.utils.provenance import git_info  # never raises: None fields without git

    env.update(git_info())
    return env


def _paired_ratios(runs: dict[str, list[dict]], a: str, b: str) -> dict[str, Any] | None:
    """Median over rounds of the per-round ratio of ``a``'s to ``b``'s median step time."""
    by_round = {r["round"]: r for r in runs.get(b, []) if "error" not in r}
    pairs = [
        (
            _paired.Timing(statistics.median(x["wall_s"]), statistics.median(x["cpu_s"])),
            _paired.Timing(
                statistics.median(by_round[x["round"]]["wall_s"]),
                statistics.median(by_round[x["round"]]["cpu_s"]),
            ),
        )
        for x in runs.get(a, [])
        if "error" not in x and x["round"] in by_round
    ]
    return _paired.paired_ratios(pairs) if pairs else None


def _summarize(
    args: argparse.Namespace, runs: dict[str, list[dict]], mem: dict[str, dict]
) -> dict[str, Any]:
    tokens = args.batch_size * args.context_length
    flops_token = _flops_per_token(args)
    results: dict[str, Any] = {}
    for variant in args.variants:
        good = [r for r in runs[variant] if "error" not in r]
        errors = [r["error"] for r in runs[variant] if "error" in r]
        if not good:
            results[variant] = {"status": "failed", "reason": errors[0] if errors else "not run"}
            continue
        walls = [w for r in good for w in r["wall_s"]]
        cpus = [c for r in good for c in r["cpu_s"]]
        wall = statistics.median(walls)
        entry: dict[str, Any] = {
            "status": "ok",
            "params": good[0]["params"],
            "step_time_s_median": round(wall, 4),
            "step_time_s_min": round(min(walls), 4),
            "step_time_s_max": round(max(walls), 4),
            "cpu_time_s_median": round(statistics.median(cpus), 4),
            "tokens_per_s": round(tokens / wall, 1),
            "model_tflops_per_s": round(tokens / wall * flops_token / 1e12, 4),
            "first_step_s_median": round(statistics.median(r["first_step_s"] for r in good), 2),
            "first_loss": round(good[0]["first_loss"], 5),
            "timed_steps": len(walls),
            "rounds_ok": len(good),
        }
        if errors:
            entry["errors"] = errors
        if args.device.startswith("cuda"):
            entry["mfu"] = round(tokens / wall * flops_token / (args.peak_tflops * 1e12), 4)
        if args.device.startswith("cuda"):
            entry["peak_allocated_mib"] = round(max(r["peak_allocated_mib"] for r in good), 1)
        m = mem.get(variant)
        if m is not None and "error" not in m and m.get("peak_mib"):
            entry["peak_memory_mib_median"] = round(statistics.median(m["peak_mib"]), 1)
        elif m is not None and "error" in m:
            entry["peak_memory_error"] = m["error"]
        results[variant] = entry

    summary: dict[str, Any] = {}
    cuda = args.device.startswith("cuda")
    decided_on = "wall_ratio_median" if cuda else "cpu_ratio_median"
    hw, twin = results.get("handwritten", {}), results.get("twin", {})
    paired = _paired_ratios(runs, "handwritten", "twin")
    if paired is not None:
        summary["paired_handwritten_vs_twin"] = paired
        summary["time_ratio_handwritten_vs_twin"] = paired[decided_on]
        summary["time_ratio_decided_on"] = f"paired {decided_on}"
        summary["time_target_met"] = paired[decided_on] <= TARGETS["time_ratio_max"]
    if "peak_memory_mib_median" in hw and "peak_memory_mib_median" in twin:
        mratio = hw["peak_memory_mib_median"] / twin["peak_memory_mib_median"]
        summary["memory_ratio_handwritten_vs_twin"] = round(mratio, 4)
        summary["memory_target_met"] = mratio <= TARGETS["memory_ratio_max"]
    paired_compile = _paired_ratios(runs, "handwritten", "twin_compile")
    if paired_compile is not None:
        summary["paired_handwritten_vs_twin_compile"] = paired_compile
    if args.device.startswith("cuda") and hw.get("status") == "ok":
        summary["gpu_mfu_target_met"] = hw["mfu"] >= TARGETS["gpu_mfu_min"]
    tri = results.get("handwritten_triton", {})
    if tri.get("status") == "ok":
        summary["triton_mfu_target_met"] = tri["mfu"] >= TARGETS["gpu_triton_mfu_min"]
        paired_tri = _paired_ratios(runs, "handwritten_triton", "twin_compile")
        if paired_tri is not None and paired_tri["wall_ratio_median"]:
            summary["paired_triton_vs_twin_compile"] = paired_tri
            speed = 1.0 / paired_tri["wall_ratio_median"]  # tokens/s ratio = inverse time ratio
            summary["tokens_per_s_ratio_triton_vs_twin_compile"] = round(speed, 4)
            summary["triton_speed_target_met"] = (
                speed >= TARGETS["gpu_triton_vs_twin_compile_speed_min"]
            )
        if "peak_memory_mib_median" in tri and "peak_memory_mib_median" in twin:
            mratio = tri["peak_memory_mib_median"] / twin["peak_memory_mib_median"]
            summary["memory_ratio_triton_vs_twin"] = round(mratio, 4)
            summary["triton_memory_target_met"] = mratio <= TARGETS["gpu_triton_memory_ratio_max"]
    hf = results.get("hf_llama_sdpa", {})
    for name, entry in (("handwritten", hw), ("handwritten_triton", tri)):
        if entry.get("status") == "ok" and hf.get("status") == "ok":
            summary[f"tokens_per_s_ratio_{name}_vs_hf_llama_sdpa"] = round(
                entry["tokens_per_s"] / hf["tokens_per_s"], 4
            )
    return {"results": results, "summary": summary, "flops_per_token": flops_token}


def _table(report: dict[str, Any]) -> str:
    rows = [
        ("variant", "step s (median)", "cpu s", "tokens/s", "peak MiB", "MFU", "status"),
    ]
    for variant, r in report["results"].items():
        if r.get("status") != "ok":
            rows.append((variant, "-", "-", "-", "-", "-", f"failed: {r.get('reason', '')}"[:60]))
            continue
        rows.append(
            (
                variant,
                f"{r['step_time_s_median']:.3f}",
                f"{r['cpu_time_s_median']:.3f}",
                f"{r['tokens_per_s']:.0f}",
                f"{r.get('peak_memory_mib_median', float('nan')):.0f}",
                f"{r['mfu']:.1%}" if "mfu" in r else "-",
                "ok",
            )
        )
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for key, value in report["summary"].items():
        if isinstance(value, dict):  # a paired comparison
            value = (
                f"wall {value['wall_ratio_median']}, CPU {value['cpu_ratio_median']} "
                f"(median of {value['rounds']} per-round ratios)"
            )
        lines.append(f"{key}: {value}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", choices=sorted(PRESETS), default=None)
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    p.add_argument("--dtype", choices=["float32", "bf16"], default="float32")
    p.add_argument("--vocab-size", type=int)
    p.add_argument("--context-length", type=int)
    p.add_argument("--d-model", type=int)
    p.add_argument("--n-layers", type=int)
    p.add_argument("--n-heads", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--untied", action="store_true", help="untied output projection")
    p.add_argument("--steps", type=int, default=5, help="timed steps per worker")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per worker (>= 1)")
    p.add_argument("--rounds", type=int, default=5, help="workers per variant (interleaved)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument(
        "--variants",
        default=None,
        help=f"comma-separated, from {', '.join(VARIANTS)} (default: "
        + "; ".join(f"{k}: {','.join(v)}" for k, v in DEFAULT_VARIANTS.items())
        + ")",
    )
    p.add_argument("--compile-rounds", type=int, default=1, help="rounds for twin_compile")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per worker")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory workers")
    p.add_argument(
        "--peak-tflops",
        type=float,
        default=None,
        help="device peak (TFLOP/s) for MFU; default: from the GPU's name (PEAK_BF16_TFLOPS)",
    )
    p.add_argument(
        "--tinystories",
        action="store_true",
        help="also measure the peak memory of a training step of configs/tinystories.yaml (CUDA)",
    )
    p.add_argument(
        "--max-total-s",
        type=float,
        default=None,
        help="start no new worker after this many seconds (what was measured is written)",
    )
    p.add_argument("--out", type=Path, default=None, help="JSON output path")
    p.add_argument("--note", default=None, help="free text stored in the JSON")
    p.add_argument(
        "--worker", choices=(*VARIANTS, "tinystories"), default=None, help=argparse.SUPPRESS
    )
    p.add_argument("--mode", choices=["time", "memory"], default="time", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    preset = args.preset or ("gpt2-small" if args.device.startswith("cuda") else "cpu-small")
    args.preset = preset
    for key, value in PRESETS[preset].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    cuda = args.device.startswith("cuda")
    if args.variants is None:
        args.variants = list(DEFAULT_VARIANTS["cuda" if cuda else "cpu"])
    else:
        args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    bad = [v for v in args.variants if v not in VARIANTS]
    if bad:
        _fail(f"unknown variant(s) {bad}; choose from {', '.join(VARIANTS)}")
    if "handwritten_triton" in args.variants and not cuda:
        _fail(
            "handwritten_triton is for --device cuda (on a CPU the Triton kernels run in "
            "Triton's interpreter, which is for tests, not a speed measurement)"
        )
    if args.tinystories and not cuda:
        _fail("--tinystories measures GPU memory: it needs --device cuda")
    if args.dtype == "bf16" and not args.device.startswith("cuda"):
        _fail("--dtype bf16 is for --device cuda (bf16 autocast)")
    if args.steps < 1 or args.warmup < 1 or args.rounds < 1:
        _fail("--steps, --warmup and --rounds must be >= 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        args.variant = args.worker
        print(json.dumps(worker(args)))
        return
    if args.device.startswith("cuda"):
        if not gpu.cuda_available():
            _fail("--device cuda requested but CUDA is not available")
        if args.peak_tflops is None:
            name = gpu.device_name(args.device) or ""
            known = [peak for key, peak in PEAK_BF16_TFLOPS if key in name]
            if not known:
                _fail(f"no known bf16 peak for {name!r}: pass --peak-tflops")
            args.peak_tflops = known[0]
    elif args.peak_tflops is None:
        args.peak_tflops = float("nan")  # no MFU on a CPU
    if args.out is None:
        tag = "cpu" if args.device == "cpu" else f"{args.device.split(':')[0]}_{args.dtype}"
        args.out = REPO / "benchmarks" / "results" / f"custom_transformer_{tag}.json"
    load_before = _loadavg()
    started = time.time()
    runs: dict[str, list[dict]] = {v: [] for v in args.variants}

    def out_of_time() -> bool:
        return args.max_total_s is not None and time.time() - started > args.max_total_s

    for r in range(args.rounds):
        for variant in _paired.order(args.variants, r):
            if variant == "twin_compile" and r >= args.compile_rounds:
                continue
            if variant == "twin_compile" and runs[variant] and "error" in runs[variant][-1]:
                continue
            if out_of_time():
                print(f"[round {r + 1}] {variant}: skipped (--max-total-s)", file=sys.stderr)
                continue
            result = _run_worker(args, variant, "time", args.timeout)
            result["round"] = r
            runs[variant].append(result)
            status = result.get("error") or f"median {statistics.median(result['wall_s']):.3f} s"
            print(f"[round {r + 1}/{args.rounds}] {variant}: {status}", file=sys.stderr)
    mem: dict[str, dict] = {}
    if args.device.startswith("cuda"):  # measured in the timing workers
        for variant in args.variants:
            good = [r for r in runs[variant] if "error" not in r]
            if good:
                mem[variant] = {"peak_mib": [p for r in good for p in r["peak_mib"]]}
    elif not args.no_memory:
        for variant in args.variants:
            if not any("error" not in r for r in runs[variant]) or out_of_time():
                continue
            mem[variant] = _run_worker(args, variant, "memory", args.timeout)
            status = mem[variant].get("error") or f"peak {_median(mem[variant]['peak_mib'])} MiB"
            print(f"[memory] {variant}: {status}", file=sys.stderr)
    report = _summarize(args, runs, mem)
    if args.tinystories:
        ts = _run_worker(args, "tinystories", "memory", args.timeout)
        if "error" in ts:
            report["tinystories"] = {"status": "failed", "reason": ts["error"]}
        else:
            peak = ts["peak_allocated_mib"]
            report["tinystories"] = {
                "status": "ok",
                "config": str(TINYSTORIES_CONFIG.relative_to(REPO)),
                "kernels": ts["kernels"],
                "params": ts["params"],
                "peak_allocated_mib": round(peak, 1),
                "step_peak_mib_median": round(statistics.median(ts["peak_mib"]), 1),
                "step_time_s_median": round(statistics.median(ts["wall_s"]), 4),
                "limit_mib": TINYSTORIES_LIMIT_MIB,
                "fits_16gb_card": peak <= TINYSTORIES_LIMIT_MIB,
            }
        print(f"[tinystories] {report['tinystories']}", file=sys.stderr)
    report = {
        "benchmark": "custom_transformer training step",
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "duration_s": round(time.time() - started, 1),
        "config": {
            "preset": args.preset,
            "device": args.device,
            "dtype": args.dtype,
            "vocab_size": args.vocab_size,
            "context_length": args.context_length,
            "d_model": args.d_model,
            "n_layers": args.n_layers,
            "n_heads": args.n_heads,
            "batch_size": args.batch_size,
            "tokens_per_step": args.batch_size * args.context_length,
            "tie_embeddings": not args.untied,
            "optimizer": "AdamW(lr=3e-4, weight_decay=0.1), zero_grad(set_to_none=True)",
            "steps_per_worker": args.steps,
            "warmup_steps": args.warmup,
            "rounds": args.rounds,
            "compile_rounds": args.compile_rounds,
            "variants": args.variants,
            "peak_tflops": args.peak_tflops if args.device.startswith("cuda") else None,
            "flops_formula": "6 * N_matmul_params + 12 * n_layers * d_model * context_length",
        },
        "targets": TARGETS,
        "environment": {**_environment(args), "loadavg_before": load_before},
        "method": (__doc__ or "").split("Method:")[1].split("Examples::")[0].strip(),
        "note": args.note,
        **report,
    }
    report["environment"]["loadavg_after"] = _loadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(_table(report))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

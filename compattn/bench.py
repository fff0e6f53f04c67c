"""``python -m compattn bench``: time and memory of every variant, as ratios measured side by side.

Method (see the chapter "Making it fast"):

* every candidate is a full attention layer (projections included) run forward *and*
  backward on the same input, with gradients for its inputs and parameters;
* all candidates run in one process; after warm-up (which also compiles), each *round* runs
  every candidate once in a freshly shuffled order, and a candidate's time in a round is
  divided by the baseline's time in the same round -- drift and noisy neighbours cancel;
* reported: the median of those per-round ratios with a bootstrap 95 % interval, the bytes
  each candidate saves for backward (exact, from ``saved_tensors_hooks``), its peak extra
  memory (resident set on a CPU, allocator peak on a GPU), and the slope of log time and log
  memory against log T -- the scaling exponents;
* the Hugging Face implementations of the same ideas run in the same rounds, so the ratios
  to them are measured, not quoted.
"""
from __future__ import annotations

import gc
import json
import math
import os
import platform
import random
import statistics
import time
from pathlib import Path

import torch

import compattn

from .train import git_commit

BASELINE = "none"      # compattn's plain attention: projections + fused SDPA
HF = ("hf_bert_relative_key_query", "hf_t5", "hf_convbert")
COMPILED = ("composite", "composite_fixed", "t5")
PLAIN = ("composite", "composite_fixed")      # the (T, T) path, beside the automatic choice


# --- candidates ---------------------------------------------------------------------------------
def make_candidate(name: str, d_model: int, n_heads: int, T: int, k: int, device, dtype):
    """A callable module x -> y for a candidate name: ``variant``, ``variant+compile``,
    ``variant+plain`` (a relative variant kept on the materialised (T, T) path: no blocks, no
    FlexAttention) or ``hf_*``."""
    torch.manual_seed(0)
    if name == "sdpa_core":     # the attention core alone: no projections, q = k = v = x
        module = torch.nn.Module()
        split = lambda x: x.view(x.shape[0], x.shape[1], n_heads, -1).transpose(1, 2)  # noqa: E731
        forward = lambda x: torch.nn.functional.scaled_dot_product_attention(  # noqa: E731
            split(x), split(x), split(x)).transpose(1, 2).reshape(x.shape)
    elif name.startswith("hf_"):
        module = _hugging_face(name, d_model, n_heads, T, k)
        forward = lambda x: module(x)[0]  # noqa: E731
    else:
        variant = name.removesuffix("+compile").removesuffix("+plain")
        opts = {"max_rel": k} if "max_rel" in compattn.options(variant) else {}
        if name.endswith("+plain"):
            opts["chunked"] = False
        module = compattn.build(variant, d_model, n_heads, max_len=max(T, 16), **opts)
        if name.endswith("+plain"):
            module.flex = False       # on CUDA too: the materialised (T, T) path
        forward = torch.compile(module, dynamic=False) if name.endswith("+compile") else module
    module.to(device=device, dtype=dtype).train()
    for p in module.parameters():
        p.requires_grad_(True)
    return module, forward


def _hugging_face(name, d_model, n_heads, T, k):
    if name == "hf_bert_relative_key_query":
        from transformers import BertConfig
        from transformers.models.bert.modeling_bert import BertSelfAttention

        config = BertConfig(hidden_size=d_model, num_attention_heads=n_heads, max_position_embeddings=T,
                            attention_probs_dropout_prob=0.0, position_embedding_type="relative_key_query")
        config._attn_implementation = "eager"
        return BertSelfAttention(config, position_embedding_type="relative_key_query")
    if name == "hf_t5":
        from transformers import T5Config
        from transformers.models.t5.modeling_t5 import T5Attention

        config = T5Config(d_model=d_model, d_kv=d_model // n_heads, num_heads=n_heads, dropout_rate=0.0,
                          is_decoder=False)
        module = T5Attention(config, has_relative_attention_bias=True)
        return _WithCachePosition(module)
    if name == "hf_convbert":
        from transformers import ConvBertConfig
        from transformers.models.convbert.modeling_convbert import ConvBertSelfAttention

        config = ConvBertConfig(hidden_size=d_model, num_attention_heads=n_heads, embedding_size=d_model,
                                conv_kernel_size=9, head_ratio=2, attention_probs_dropout_prob=0.0)
        return ConvBertSelfAttention(config)
    raise ValueError(f"unknown Hugging Face candidate {name!r}; known: {HF}")


class _WithCachePosition(torch.nn.Module):
    """T5Attention needs the query positions passed in when it computes its own bias."""

    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, x):
        return self.module(x, cache_position=torch.arange(x.shape[1], device=x.device))


# --- measurements --------------------------------------------------------------------------------
def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def _step(forward, module, x, grad):
    y = forward(x)
    y.backward(grad)
    for p in module.parameters():
        p.grad = None
    x.grad = None


def saved_bytes(forward, module, x, grad) -> int:
    """Bytes of the distinct tensors autograd keeps for backward (inputs and parameters excluded)."""
    exclude = {x.untyped_storage().data_ptr()} | {p.untyped_storage().data_ptr() for p in module.parameters()}
    storages = {}

    def pack(t):
        s = t.untyped_storage()
        if s.data_ptr() not in exclude:
            storages[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = forward(x)
    y.backward(grad)
    return sum(storages.values())


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    return 0


def peak_bytes(forward, module, x, grad, device) -> int | None:
    """Peak extra memory of one step: allocator peak on CUDA, resident-set high-water mark on Linux."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        _step(forward, module, x, grad)
        _sync(device)
        return torch.cuda.max_memory_allocated() - before
    try:
        Path("/proc/self/clear_refs").write_text("5")   # reset the high-water mark (Linux)
    except OSError:
        return None
    before = _rss_kib("VmRSS")
    _step(forward, module, x, grad)
    return max(0, _rss_kib("VmHWM") - before) * 1024


def bootstrap_interval(values, n=2000, level=0.95, seed=0):
    """Median of ``values`` and a percentile-bootstrap interval for it."""
    rng = random.Random(seed)
    medians = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(n))
    lo, hi = medians[int((1 - level) / 2 * n)], medians[int((1 + level) / 2 * n) - 1]
    return statistics.median(values), lo, hi


def scaling_exponent(sizes, values):
    """Least-squares slope of log(value) against log(size)."""
    pts = [(math.log(s), math.log(v)) for s, v in zip(sizes, values) if v and v > 0]
    if len(pts) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    return sum((a - mx) * (b - my) for a, b in pts) / sum((a - mx) ** 2 for a, _ in pts)


def run_benchmark(candidates, lengths, *, batch=8, n_heads=4, d_head=64, k=16, rounds=None, device="cpu",
                  dtype=torch.float32, seed=0, progress=print) -> dict:
    device = torch.device(device)
    d_model = n_heads * d_head
    if BASELINE not in candidates:
        candidates = [BASELINE, *candidates]
    rng = random.Random(seed)
    results = {}
    torch._dynamo.config.recompile_limit = 64   # every compiled candidate x length is its own graph
    for T in lengths:
        torch._dynamo.reset()
        R = rounds or {128: 21, 256: 15, 512: 11, 1024: 7}.get(T, 5)
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(batch, T, d_model, generator=g).to(device=device, dtype=dtype).requires_grad_(True)
        grad = torch.randn(batch, T, d_model, generator=g).to(device=device, dtype=dtype)
        built = {}
        for name in candidates:
            module, forward = make_candidate(name, d_model, n_heads, T, k, device, dtype)
            start = time.perf_counter()
            for _ in range(2):                                    # warm-up (and compilation)
                _step(forward, module, x, grad)
            _sync(device)
            built[name] = (module, forward, time.perf_counter() - start)
        times = {name: [] for name in candidates}
        for _ in range(R):
            order = list(candidates)
            rng.shuffle(order)
            for name in order:
                module, forward, _ = built[name]
                gc.collect()
                _sync(device)
                start = time.perf_counter()
                _step(forward, module, x, grad)
                _sync(device)
                times[name].append(time.perf_counter() - start)
        for name in candidates:
            module, forward, warmup = built[name]
            ratios = [t / b for t, b in zip(times[name], times[BASELINE])]
            median, lo, hi = bootstrap_interval(ratios)
            results.setdefault(name, {})[str(T)] = {
                "median_ms": 1e3 * statistics.median(times[name]), "ratio": median, "ratio_ci95": [lo, hi],
                "rounds": R, "warmup_s": warmup, "saved_bytes": saved_bytes(forward, module, x, grad),
                "peak_bytes": peak_bytes(forward, module, x, grad, device)}
        progress(f"T={T}: " + ", ".join(f"{n} {results[n][str(T)]['ratio']:.2f}x" for n in candidates))
        del built
    for name, by_T in results.items():
        big = [T for T in lengths if T >= 512] or list(lengths)
        by_T["exponents"] = {
            "time": scaling_exponent(big, [by_T[str(T)]["median_ms"] for T in big]),
            "saved_bytes": scaling_exponent(big, [by_T[str(T)]["saved_bytes"] for T in big]),
            "peak_bytes": scaling_exponent(big, [by_T[str(T)]["peak_bytes"] for T in big])}
    return {"provenance": provenance(device), "config": {"batch": batch, "n_heads": n_heads, "d_head": d_head,
            "k": k, "lengths": list(lengths), "dtype": str(dtype).removeprefix("torch."), "baseline": BASELINE,
            "seed": seed}, "results": results}


def provenance(device) -> dict:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_model()
    return {"device": name, "device_type": device.type, "torch": torch.__version__, "threads": torch.get_num_threads(),
            "commit": git_commit(), "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cpus)"
    except OSError:
        pass
    return platform.processor() or "cpu"


BENCH_SCHEMA = {
    "type": "object", "required": ["provenance", "config", "results"],
    "properties": {
        "provenance": {"type": "object", "required": ["device", "torch", "threads", "commit"]},
        "config": {"type": "object", "required": ["batch", "n_heads", "d_head", "k", "lengths", "baseline"]},
        "results": {"type": "object", "additionalProperties": {
            "type": "object", "required": ["exponents"],
            "additionalProperties": {"type": "object"}}},
    },
}
ENTRY_KEYS = ("median_ms", "ratio", "ratio_ci95", "rounds", "saved_bytes", "peak_bytes")


def validate_bench(report: dict) -> None:
    import jsonschema

    try:
        jsonschema.validate(report, BENCH_SCHEMA)
    except jsonschema.ValidationError as err:
        raise ValueError(f"invalid benchmark report: {err.message}") from None
    for name, by_T in report["results"].items():
        for T in report["config"]["lengths"]:
            entry = by_T.get(str(T))
            if entry is None or any(key not in entry for key in ENTRY_KEYS):
                raise ValueError(f"benchmark report: {name} at T={T} lacks one of {ENTRY_KEYS}")
            lo, hi = entry["ratio_ci95"]
            if not lo <= entry["ratio"] <= hi:
                raise ValueError(f"benchmark report: {name} at T={T} has its median outside its interval")


def main(quick: bool = False, out: Path | None = None, device: str = "auto", lengths=None) -> dict:
    from .config import resolve_device

    device = resolve_device(device)
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    candidates = [v for v in compattn.variants() if v != BASELINE]
    if quick:
        candidates = ["t5", "composite", "lightconv", "convbert", "hf_t5", "hf_bert_relative_key_query"]
        report = run_benchmark(candidates, lengths or (64, 128), batch=2, rounds=5, device=device, dtype=dtype)
    else:
        candidates += (["sdpa_core"] + [f"{c}+compile" for c in COMPILED] + [f"{c}+plain" for c in PLAIN]
                       + list(HF))
        report = run_benchmark(candidates, lengths or (128, 512, 2048), device=device, dtype=dtype)
    validate_bench(report)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
    return report


def compile_check(variants=None, T: int = 24) -> dict:
    """``torch.compile`` every variant (forward and backward) and compare with eager mode.

    Returns ``{variant: max |difference|}`` over the output and all gradients; raises
    ``AssertionError`` naming the first variant whose compiled numbers differ.
    """
    from torch.testing import assert_close

    differences = {}
    for name in variants or compattn.variants():
        torch.manual_seed(0)
        mixer = compattn.build(name, 32, 4, max_len=64)
        x = torch.randn(2, T, 32, requires_grad=True)
        mask = torch.ones(2, T, dtype=torch.bool)
        mask[1, T - 5:] = False
        results = []
        for forward in (mixer, torch.compile(mixer, dynamic=False)):
            mixer.zero_grad()
            x.grad = None
            y = forward(x, mask)
            y.square().sum().backward()
            results.append([y.detach()] + [x.grad.clone()] + [p.grad.clone() for p in mixer.parameters()])
        for a, b in zip(*results):
            assert_close(b, a, rtol=1e-4, atol=1e-5, msg=lambda m: f"{name} compiled differs: {m}")
        differences[name] = max((a - b).abs().max().item() for a, b in zip(*results))
        torch._dynamo.reset()
    return differences

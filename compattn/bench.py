"""``python -m compattn bench``: time and memory of every variant, as ratios measured side by side.

Method (see the chapter "Making it fast"):

* every candidate is a full attention layer (projections included) run forward *and*
  backward on the same input, with gradients for its inputs and parameters;
* all candidates run in one process; after warm-up (two steps each, which also compiles, then
  one unrecorded interleaved round), each *round* runs every candidate once in a freshly
  shuffled order, and a candidate's time in a round is divided by the baseline's time in the
  same round -- drift and noisy neighbours cancel; at least ``MIN_ROUNDS`` rounds at every
  length (or as many as a time budget allows, recorded);
* reported: the median of those per-round ratios with a distribution-free 95 % interval
  (order statistics of the binomial, :func:`median_interval`), the bytes
  each candidate saves for backward (exact, from ``saved_tensors_hooks``), its peak extra
  memory (resident set on a CPU, allocator peak on a GPU), and the slope of log time and log
  memory against log T over at least three lengths -- the scaling exponents;
* a control: ``absolute`` is the same mixer as the baseline (its positions are added to the
  embeddings, outside the layer), so its ratio must be 1 within its interval; the report
  says whether it is (``control``);
* ``composite`` and ``composite+compile`` are separate rows, never merged after the fact;
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

MIN_ROUNDS = 15
CONTROL = "absolute"   # the same mixer as the baseline: its ratio must be 1 within the interval

BASELINE = "none"      # compattn's plain attention: projections + fused SDPA
HF = ("hf_bert_relative_key_query", "hf_t5", "hf_convbert")
COMPILED = ("composite", "composite_fixed", "t5")
PLAIN = ("composite", "composite_fixed")      # the (T, T) path, beside the automatic choice
CPU_LENGTHS = (128, 512, 1024, 2048)
GPU_LENGTHS = (2048, 512, 1024, 4096)     # run in this order: the targets' length first


def git_commit() -> str:
    from .train import git_commit as commit

    return commit()


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
        forward = lambda x: _hf_output(module(x))  # noqa: E731
    else:
        variant = name.removesuffix("+compile").removesuffix("+plain")
        opts = {"max_rel": k} if "max_rel" in compattn.options(variant) else {}
        if name.endswith("+plain"):     # the (T, T) bias handed to fused SDPA: no blocks, no FlexAttention
            opts["path"] = "sdpa"
        module = compattn.build(variant, d_model, n_heads, max_len=max(T, 16), **opts)
        forward = torch.compile(module, dynamic=False) if name.endswith("+compile") else module
    module.to(device=device, dtype=dtype).train()
    for p in module.parameters():
        p.requires_grad_(True)
    return module, forward


def _hf_output(out):
    """A Hugging Face attention layer returns a tuple (output, ...) in transformers 4 and 5."""
    return out[0] if isinstance(out, (tuple, list)) else out


def _hugging_face(name, d_model, n_heads, T, k):
    if name == "hf_bert_relative_key_query":
        from transformers import BertConfig
        from transformers.models.bert.modeling_bert import BertSelfAttention

        config = BertConfig(hidden_size=d_model, num_attention_heads=n_heads, max_position_embeddings=T,
                            attention_probs_dropout_prob=0.0, position_embedding_type="relative_key_query")
        config._attn_implementation = "eager"
        try:
            module = BertSelfAttention(config, position_embedding_type="relative_key_query")
        except TypeError:     # transformers 5 removed BERT's relative position embeddings
            module = None
        if module is None or not hasattr(module, "distance_embedding"):
            module = _HFRelativeKeyQuery(d_model, n_heads, T)
        return module
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


class _HFRelativeKeyQuery(torch.nn.Module):
    """transformers 4.x's ``BertSelfAttention`` with ``relative_key_query`` (Huang et al.), the
    same computation line by line, for transformers 5, which removed it: a (T, T, d_head) tensor of
    distance embeddings contracted with the queries and with the keys."""

    reimplemented = True

    def __init__(self, d_model, n_heads, max_len):
        super().__init__()
        self.h, self.d = n_heads, d_model // n_heads
        self.query, self.key, self.value = (torch.nn.Linear(d_model, d_model) for _ in range(3))
        self.max_len = max_len
        self.distance_embedding = torch.nn.Embedding(2 * max_len - 1, self.d)

    def forward(self, x):
        B, T, _ = x.shape
        q, k, v = (f(x).view(B, T, self.h, self.d).transpose(1, 2) for f in (self.query, self.key, self.value))
        scores = q @ k.transpose(-1, -2)
        pos = torch.arange(T, device=x.device)
        emb = self.distance_embedding(pos[:, None] - pos[None, :] + self.max_len - 1).to(q.dtype)
        scores = scores + torch.einsum("bhld,lrd->bhlr", q, emb) + torch.einsum("bhrd,lrd->bhlr", k, emb)
        probs = torch.softmax(scores / self.d ** 0.5, dim=-1)
        return ((probs @ v).transpose(1, 2).reshape(B, T, -1),)


class _WithCachePosition(torch.nn.Module):
    """T5Attention needs the query positions passed in when it computes its own bias."""

    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, x):
        try:
            return self.module(x, cache_position=torch.arange(x.shape[1], device=x.device))
        except TypeError:      # a transformers version without cache_position
            return self.module(x)


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


def median_interval(values, level=0.95):
    """Median of ``values`` and a distribution-free interval for the true median: the order
    statistics ``x_(j) <= m <= x_(n+1-j)`` with the largest ``j`` whose binomial coverage
    ``1 - 2 P(Bin(n, 1/2) < j)`` is at least ``level`` (no bootstrap, no normality; needs n >= 6
    for 95 %; fewer values give the whole range)."""
    xs = sorted(values)
    n = len(xs)
    j = 0
    tail = 0.0          # P(Bin(n, 1/2) <= j - 1), then <= j
    for candidate in range(1, n // 2 + 1):
        tail += math.comb(n, candidate - 1) / 2 ** n
        if 1 - 2 * tail >= level:
            j = candidate
        else:
            break
    if j == 0:
        return statistics.median(xs), xs[0], xs[-1]
    return statistics.median(xs), xs[j - 1], xs[n - j]


def scaling_exponent(sizes, values, min_points: int = 2):
    """Least-squares slope of log(value) against log(size); ``None`` with fewer than
    ``min_points`` usable points."""
    pts = [(math.log(s), math.log(v)) for s, v in zip(sizes, values) if v and v > 0]
    if len(pts) < max(2, min_points):
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    return sum((a - mx) * (b - my) for a, b in pts) / sum((a - mx) ** 2 for a, _ in pts)


def exponent_lengths(lengths) -> list:
    """The lengths the exponents are fitted on: T >= 512 when that leaves three, else all (at
    least three are needed; with fewer the exponents are ``None``)."""
    big = [T for T in lengths if T >= 512]
    return big if len(big) >= 3 else list(lengths)


def run_benchmark(candidates, lengths, *, batch=8, n_heads=4, d_head=64, k=16, rounds=None, device="cpu",
                  dtype=torch.float32, seed=0, progress=print, min_rounds: int = MIN_ROUNDS,
                  budget_s: float | None = None, max_rounds: int = 200) -> dict:
    """Time every candidate against ``BASELINE`` at each length (see the module docstring).

    ``rounds`` fixes the number of rounds; otherwise at least ``min_rounds``, and with
    ``budget_s`` (seconds for the whole run, split evenly over the lengths, which run in the
    order given: the most important first) as many rounds as fit
    (up to ``max_rounds``).  Under a budget a candidate whose warm-up does not fit is left out at
    that length, and a length that does not get ``min_rounds`` says so (``rounds`` in each
    entry); a candidate that fails to build or run (a Hugging Face API change, say) is recorded
    under ``skipped`` and the others go on."""
    device = torch.device(device)
    d_model = n_heads * d_head
    candidates = [BASELINE] + [c for c in candidates if c != BASELINE]
    rng = random.Random(seed)
    results, skipped, warmups = {}, {}, {}
    start_all = time.monotonic()
    torch._dynamo.config.recompile_limit = 64   # every compiled candidate x length is its own graph
    for t_index, T in enumerate(lengths):
        torch._dynamo.reset()
        if budget_s is not None:
            left = budget_s - (time.monotonic() - start_all)
            t_deadline = time.monotonic() + left / (len(lengths) - t_index)
        else:
            t_deadline = None
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(batch, T, d_model, generator=g).to(device=device, dtype=dtype).requires_grad_(True)
        grad = torch.randn(batch, T, d_model, generator=g).to(device=device, dtype=dtype)
        built = {}
        for name in candidates:
            # under a budget: build a candidate only if its warm-up (as long as at the previous
            # length, for a compiled one) and min_rounds rounds still fit before this length's end
            expected = warmups.get(name, 0.0) + _round_estimate(built) * min_rounds
            if t_deadline is not None and name != BASELINE and time.monotonic() + expected > t_deadline:
                skipped.setdefault(name, {})[str(T)] = "not reached within the time budget"
                continue
            try:
                module, forward = make_candidate(name, d_model, n_heads, T, k, device, dtype)
                start = time.perf_counter()
                for _ in range(2):                                    # warm-up (and compilation)
                    _step(forward, module, x, grad)
                _sync(device)
                single = time.perf_counter()
                _step(forward, module, x, grad)
                _sync(device)
                built[name] = (module, forward, single - start, time.perf_counter() - single)
                warmups[name] = single - start
            except Exception as err:                                  # noqa: BLE001
                if name == BASELINE:
                    raise
                skipped.setdefault(name, {})[str(T)] = f"{type(err).__name__}: {str(err)[:300]}"
                _free(device)
        names = list(built)
        times = {name: [] for name in names}
        gc.collect()
        gc.freeze()              # the objects alive now are never collected: gc.collect() stays cheap
        _round(names, built, x, grad, device, rng, {n: [] for n in names})     # one unrecorded round
        while True:
            done = len(times[BASELINE])
            if rounds is not None:
                if done >= rounds:
                    break
            elif done >= min_rounds and (t_deadline is None or done >= max_rounds
                                         or time.monotonic() + _round_estimate(built) > t_deadline):
                break
            elif t_deadline is not None and done >= 3 and time.monotonic() > t_deadline:
                break
            _round(names, built, x, grad, device, rng, times)
        gc.unfreeze()
        for name in names:
            module, forward, warmup, _ = built[name]
            ratios = [t / b for t, b in zip(times[name], times[BASELINE])]
            median, lo, hi = median_interval(ratios)
            try:
                peak = peak_bytes(forward, module, x, grad, device)
                kept = saved_bytes(forward, module, x, grad)
            except Exception:                                         # noqa: BLE001
                peak = kept = None
            results.setdefault(name, {})[str(T)] = {
                "median_ms": 1e3 * statistics.median(times[name]), "ratio": median, "ratio_ci95": [lo, hi],
                "rounds": len(ratios), "warmup_s": warmup, "saved_bytes": kept, "peak_bytes": peak,
                "times_ms": [round(1e3 * t, 4) for t in times[name]],
                # transformers 5 removed BERT's relative_key_query: 4.x's algorithm, re-typed
                **({"reimplemented": True} if getattr(module, "reimplemented", False) else {})}
        progress(f"T={T} ({len(times[BASELINE])} rounds): "
                 + ", ".join(f"{n} {results[n][str(T)]['ratio']:.2f}x" for n in names))
        del built
        _free(device)
    fit = exponent_lengths(sorted(lengths))
    for name, by_T in results.items():
        have = [T for T in fit if str(T) in by_T]

        def slope(key):
            return scaling_exponent(have, [by_T[str(T)][key] for T in have], min_points=3)

        by_T["exponents"] = {"time": slope("median_ms"), "saved_bytes": slope("saved_bytes"),
                             "peak_bytes": slope("peak_bytes"), "lengths": have}
    report = {"provenance": provenance(device), "config": {
        "batch": batch, "n_heads": n_heads, "d_head": d_head, "k": k, "lengths": sorted(lengths),
        "dtype": str(dtype).removeprefix("torch."), "baseline": BASELINE, "seed": seed,
        "min_rounds": min_rounds if rounds is None else rounds, "budget_s": budget_s,
        "interval": "order statistics (binomial), 95 %", "exponent_lengths": fit},
        "results": results, "skipped": skipped}
    report["control"] = control(report)
    return report


def _round_estimate(built) -> float:
    return sum(b[3] for b in built.values())


def _round(names, built, x, grad, device, rng, times):
    order = list(names)
    rng.shuffle(order)
    for name in order:
        module, forward = built[name][:2]
        gc.collect()
        _sync(device)
        start = time.perf_counter()
        _step(forward, module, x, grad)
        _sync(device)
        times[name].append(time.perf_counter() - start)


def _free(device):
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def control(report) -> dict:
    """The identical-mixer control at each length: ``absolute``'s ratio to ``none`` and whether
    its interval contains 1 (if not, the method -- not the mixer -- is at fault)."""
    by_T = report["results"].get(CONTROL, {})
    out = {}
    for T in report["config"]["lengths"]:
        entry = by_T.get(str(T))
        if entry:
            lo, hi = entry["ratio_ci95"]
            out[str(T)] = {"ratio": entry["ratio"], "ratio_ci95": [lo, hi], "contains_1": lo <= 1.0 <= hi}
    return out


def provenance(device) -> dict:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_model()
    try:
        import transformers
        hf = transformers.__version__
    except Exception:                                                 # noqa: BLE001
        hf = None
    return {"device": name, "device_type": device.type, "torch": torch.__version__, "threads": torch.get_num_threads(),
            "commit": git_commit(), "python": platform.python_version(), "transformers": hf,
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
    """Raise ``ValueError`` if the report is malformed: every candidate has every length, or the
    length is listed under ``skipped`` with the reason."""
    from .records import validate_schema

    try:
        validate_schema(report, BENCH_SCHEMA)
    except ValueError as err:
        raise ValueError(f"invalid benchmark report: {err}") from None
    skipped = report.get("skipped", {})
    for name, by_T in report["results"].items():
        for T in report["config"]["lengths"]:
            entry = by_T.get(str(T))
            if entry is None and str(T) in skipped.get(name, {}):
                continue
            if entry is None or any(key not in entry for key in ENTRY_KEYS):
                raise ValueError(f"benchmark report: {name} at T={T} lacks one of {ENTRY_KEYS}")
            lo, hi = entry["ratio_ci95"]
            if not lo <= entry["ratio"] <= hi:
                raise ValueError(f"benchmark report: {name} at T={T} has its median outside its interval")


def default_candidates(device: str) -> list:
    """Every variant, the attention core alone, the compiled and plain-path rows and Hugging
    Face's implementations: the full benchmark's candidates on a CPU or a GPU."""
    first = [CONTROL, "composite", "composite+compile", "hf_bert_relative_key_query", "sdpa_core"]
    compiled = COMPILED if device == "cpu" else ("composite",)   # compiling per length costs minutes on a GPU
    rest = [v for v in compattn.variants() if v != BASELINE] + [f"{c}+compile" for c in compiled] \
        + [f"{c}+plain" for c in PLAIN] + list(HF)
    return first + [c for c in rest if c not in first]


def main(quick: bool = False, out: Path | None = None, device: str = "auto", lengths=None,
         budget_s: float | None = None, min_rounds: int = MIN_ROUNDS, progress=print) -> dict:
    from .config import resolve_device

    device = resolve_device(device)
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    if quick:
        candidates = ["absolute", "t5", "composite", "lightconv", "convbert", "hf_t5", "hf_bert_relative_key_query"]
        report = run_benchmark(candidates, lengths or (32, 64, 128), batch=2, rounds=5, device=device,
                               dtype=dtype, progress=progress)
    else:
        default = CPU_LENGTHS if device == "cpu" else GPU_LENGTHS
        report = run_benchmark(default_candidates("cpu" if device == "cpu" else "cuda"), lengths or default,
                               device=device, dtype=dtype, budget_s=budget_s, min_rounds=min_rounds,
                               progress=progress)
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

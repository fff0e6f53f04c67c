"""``python -m compattn gpu-run``: everything the book needs from one GPU, in one prepared command.

    python -m compattn gpu-pack-data                     # here: ship the built data (< 40 MiB)
    python -m compattn gpu-run --out DIR --budget-s 540  # there: checks, benchmark, throughput,
                                                         #        the evidence protocol, packing
    python -m compattn gpu-unpack DIR/*                  # here: put the results where chapters look
    python -m compattn gpu-run --out DIR --dry-run       # the same code path on a CPU, tiny sizes

Phases, each with its share of the budget and each watching the clock (a phase that runs out
writes what it has; ``RESERVE_S`` seconds are always left for packing):

a. ``check``: every fast execution path (SDPA, blocks, FlexAttention) against the plain path,
   forward and gradients, float32 and bf16 autocast, ``torch.compile`` against eager, and the
   memory bound of T5 on FlexAttention; a failed check stops the run (after packing the report);
b. ``bench``: the chapter-8 benchmark in bf16 with the same statistics as on a CPU
   (:mod:`compattn.bench`), the Hugging Face implementations included;
c. ``throughput``: model-level training throughput (tokens/s and MFU against the bf16 dense peak
   ``PEAK_FLOPS``) of ``absolute``, ``composite`` and ``convbert`` at the GPU profile, and whether
   several trainings at once raise the total;
d. ``evidence``: the evidence protocol (:func:`compattn.evidence.run_evidence`) with steps planned
   from the measured throughput so the sweep fits the rest of the budget -- the same steps for
   every variant, written to ``plan.json`` so that a later invocation continues with that plan;
e. ``pack``: at most ``MAX_FILES`` files in ``DIR``, each at most 16 MiB.

The library features this module relies on are reached through the small functions in the
section "what this module needs from the rest of the library", so each dependency has one place.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import traceback
from pathlib import Path

import torch

#: NVIDIA's dense BF16 Tensor Core peak of the H100 SXM and of the H200 SXM (the same GH100
#: compute; the datasheets give 1,979 TFLOP/s "with sparsity", twice the dense figure).
PEAK_FLOPS = {"H200": 989.4e12, "H100": 989.4e12}
PEAK_SOURCE = "NVIDIA H100/H200 SXM datasheets: 1,979 TFLOP/s BF16 with 2:4 sparsity, 989.4 dense"
RESERVE_S = 30.0
MAX_FILES = 8
MAX_FILE_BYTES = 16 * 2**20
SHARES = {"check": 0.13, "bench": 0.2, "throughput": 0.12}      # evidence gets the rest
DRY_SHARES = {"check": 0.22, "bench": 0.2, "throughput": 0.25}   # a CPU starts processes slowly
THROUGHPUT_VARIANTS = ("absolute", "composite", "convbert")
DATA_ARCHIVE = "compattn-data.tar.gz"
DATA_FILES = ("manifest.json", "corpus.txt", "tokenizer.json", "tokenizer.trained-on")
OUT_FILES = {"summary": "gpu-summary.json", "bench": "bench-gpu.json", "evidence": "evidence-gpu.tar.gz",
             "log": "gpu-run.log"}
PATHS = ("plain", "sdpa", "block", "flex")


# --- what this module needs from the rest of the library ---------------------------------------
def build_on_path(variant: str, path: str, d_model: int, n_heads: int, max_len: int, **opts):
    """``variant`` made to run on execution ``path`` (``build(..., path=path)``, see
    ``compattn.mixers.paths``), or ``None`` when the variant has no such path (a convolution has
    no attention paths: ``build`` refuses the option with a ``ValueError``)."""
    import compattn

    try:
        return compattn.build(variant, d_model, n_heads, max_len=max_len, path=path, **opts)
    except ValueError:
        return None


def _kept(entry: dict, results: list, log) -> bool:
    """Add one check's entry to ``results``, log it when it failed; return whether it passed."""
    results.append(entry)
    if not entry["ok"]:
        log("CHECK FAILED:", json.dumps(entry))
    return entry["ok"]


def evidence_module():
    """``compattn.evidence``: ``run_evidence(out, profile, *, device, steps, parallel, deadline,
    progress)`` and ``plan(profile)``."""
    try:
        from compattn import evidence
    except ImportError as err:
        raise RuntimeError("compattn.evidence (the evidence protocol) is not in this library; "
                           f"the evidence phase cannot run ({err})") from None
    return evidence


def gpu_profile(dry_run: bool) -> str:
    """The profile of the GPU evidence run: ``gpu`` (``tiny`` in a dry run)."""
    from .config import PROFILES

    if dry_run:
        return "tiny"
    if "gpu" not in PROFILES:
        raise RuntimeError("no 'gpu' profile in compattn.config.PROFILES")
    return "gpu"


def count_runs(plan) -> dict:
    """``{"pretrain": n, "finetune": m}`` from ``evidence.plan(profile)``: a dict of lists or
    counts, or a list of runs (dicts with ``kind``, tuples starting with the kind, or names)."""
    if isinstance(plan, dict):
        runs = plan.get("runs", plan)
        if isinstance(runs, dict):
            count = {k: (len(v) if isinstance(v, (list, tuple)) else int(v))
                     for k, v in runs.items() if k in ("pretrain", "finetune")}
            if count:
                return {"pretrain": count.get("pretrain", 0), "finetune": count.get("finetune", 0)}
        plan = runs
    counts = {"pretrain": 0, "finetune": 0}
    for run in plan:
        kind = run.get("kind") if isinstance(run, dict) else run[0] if isinstance(run, (tuple, list)) else run
        counts["finetune" if "finetune" in str(kind) else "pretrain"] += 1
    return counts


# --- the clock and the log ---------------------------------------------------------------------
class Clock:
    """The budget: ``left()`` seconds overall; ``phase_end(name)`` the monotonic time at which a
    phase must stop (its share of what is left after the reserve for packing)."""

    def __init__(self, budget_s: float, reserve_s: float = RESERVE_S, shares: dict = SHARES):
        self.start, self.budget, self.reserve = time.monotonic(), float(budget_s), reserve_s
        self.end, self.shares = self.start + self.budget, shares

    def left(self) -> float:
        return self.end - time.monotonic()

    def work_end(self) -> float:
        return self.end - self.reserve

    def phase_end(self, name: str) -> float:
        if name not in self.shares:
            return self.work_end()
        work = max(0.0, self.budget - self.reserve)
        return min(self.work_end(), time.monotonic() + self.shares[name] * work)


class Log:
    def __init__(self, path: Path):
        self.path = path
        self.t0 = time.monotonic()

    def __call__(self, *parts):
        line = f"[{time.monotonic() - self.t0:7.1f}s] " + " ".join(str(p) for p in parts)
        print(line, flush=True)
        with open(self.path, "a") as f:
            f.write(line + "\n")


# --- a. correctness on the device --------------------------------------------------------------
def _inputs(B, T, d_model, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, d_model, generator=g).to(device)
    mask = torch.ones(B, T, dtype=torch.bool)
    mask[1, T - T // 3:] = False                      # right padding longer than the window
    grad = torch.randn(B, T, d_model, generator=g).to(device)
    return x, mask.to(device), grad


def _nonzero_init(module, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            if p.numel() and float(p.abs().max()) == 0.0:     # zero-initialised tables: exercise them
                p.copy_(0.2 * torch.randn(p.shape, generator=g))


def _fwd_bwd(module, x, mask, grad, bf16: bool, compiled=None):
    x = x.detach().clone().requires_grad_(True)
    module.zero_grad(set_to_none=True)
    forward = module if compiled is None else compiled
    device_type = x.device.type
    with torch.autocast(device_type, dtype=torch.bfloat16, enabled=bf16):
        y = forward(x, mask)
    real = mask[..., None]
    (y.float() * grad * real).sum().backward()
    grads = [x.grad * real] + [p.grad if p.grad is not None else torch.zeros_like(p) for p in module.parameters()]
    return (y.float() * real).detach(), [g.detach().float() for g in grads]


def _relative_error(a, b, floor: float = 0.0) -> float:
    """|a - b| / max(|b|, floor): a gradient that is zero in exact arithmetic (a key bias under
    softmax) is compared with the scale ``floor`` of all the gradients, not with its own noise."""
    scale = max(float(b.norm()), floor)
    return float((a - b).norm()) / scale if scale > 0 else float(a.norm())


def _errors(out, grads, ref) -> list:
    floor = 1e-3 * float(torch.sqrt(sum(g.float().square().sum() for g in ref[1]))) if ref[1] else 0.0
    return [_relative_error(out, ref[0])] + [_relative_error(a, b, floor) for a, b in zip(grads, ref[1])]


def check_paths(device: str, end: float, log, *, T: int, d_model: int = 64, n_heads: int = 4,
                variants=None, compile_variants=None, backend: str = "inductor") -> dict:
    """Every path of every variant against the plain path, forward and gradients, float32 and
    bf16 autocast; then ``torch.compile`` (``backend``; the dry run uses ``aot_eager``: the same
    graph capture and autograd, without a CPU's minutes of code generation) against eager.  Returns ``{"results": [...], "passed":
    bool, "complete": bool}``; stops at ``end`` (monotonic), marking the rest not reached."""
    import compattn

    dev = torch.device(device)
    tol = {"float32": 2e-3, "bf16": 2e-2}      # bf16: plus twice the plain path's own bf16 error
    results, passed, complete = [], True, True
    x, mask, grad = _inputs(2, T, d_model, dev)
    variants = list(compattn.variants() if variants is None else variants)
    for variant in variants:
        opts = {"max_rel": 4} if "max_rel" in compattn.options(variant) else {}
        torch.manual_seed(0)
        reference = build_on_path(variant, "plain", d_model, n_heads, T, **opts)
        if reference is None:
            continue
        reference.to(dev).train(False)
        _nonzero_init(reference)
        try:
            ref = _fwd_bwd(reference, x, mask, grad, False)            # always float32
            # bf16 is judged against what the plain path itself loses in bf16
            plain_bf16 = max(_errors(*_fwd_bwd(reference, x, mask, grad, True), ref))
        except NotImplementedError as err:           # a variant without a (T, T) mixing matrix
            results.append({"variant": variant, "path": "plain", "ok": True, "skipped": str(err)[:200]})
            continue
        weights = reference.state_dict()
        for path in PATHS[1:]:
            if time.monotonic() > end:
                complete = False
                break
            mixer = build_on_path(variant, path, d_model, n_heads, T, **opts)
            if mixer is None:
                continue
            mixer.to(dev).train(False)
            mixer.load_state_dict(weights)
            for precision in ("float32", "bf16"):
                entry = {"variant": variant, "path": path, "precision": precision}
                if path == "block" and precision == "bf16":
                    # the blocks run in the input's precision; choose_path never takes them in
                    # low precision or under autocast, so there is nothing to check there
                    results.append({**entry, "ok": True, "skipped": "block path: float32/64 only"})
                    continue
                backward = not (path == "flex" and dev.type == "cpu")   # no flex backward on a CPU
                try:
                    if backward:
                        out, grads = _fwd_bwd(mixer, x, mask, grad, precision == "bf16")
                    else:
                        with torch.no_grad(), torch.autocast(dev.type, torch.bfloat16,
                                                             enabled=precision == "bf16"):
                            out, grads = (mixer(x, mask).float() * mask[..., None]), []
                    errors = _errors(out, grads, ref)
                    bound = tol[precision] + (2 * plain_bf16 if precision == "bf16" else 0.0)
                    entry.update(max_rel_error=max(errors), bound=bound, backward=backward,
                                 ok=max(errors) <= bound and all(map(math.isfinite, errors)))
                except Exception as err:                                   # noqa: BLE001
                    entry.update(ok=False, error=f"{type(err).__name__}: {str(err)[:300]}")
                passed = _kept(entry, results, log) and passed
        if not complete:
            break
    for variant in compile_variants if compile_variants is not None else variants:
        for precision in ("float32", "bf16"):
            if time.monotonic() > end:
                complete = False
                break
            entry = {"variant": variant, "path": "auto", "precision": precision, "compiled": backend}
            bf16 = precision == "bf16"
            try:
                opts = {"max_rel": 4} if "max_rel" in compattn.options(variant) else {}
                torch.manual_seed(0)
                mixer = compattn.build(variant, d_model, n_heads, max_len=T, **opts).to(dev).train(False)
                _nonzero_init(mixer)
                eager32 = _fwd_bwd(mixer, x, mask, grad, False)
                eager = _fwd_bwd(mixer, x, mask, grad, bf16)
                torch._dynamo.reset()
                compiled = _fwd_bwd(mixer, x, mask, grad, bf16,
                                    compiled=torch.compile(mixer, dynamic=False, backend=backend))
                # compiled vs eager in the same precision; in bf16 judged against eager's own bf16 error
                errors = _errors(compiled[0], compiled[1], eager32 if not bf16 else eager)
                bound = tol[precision] + (2 * max(_errors(eager[0], eager[1], eager32)) if bf16 else 0.0)
                entry.update(max_rel_error=max(errors), bound=bound, ok=max(errors) <= bound)
            except Exception as err:                                       # noqa: BLE001
                entry.update(ok=False, error=f"{type(err).__name__}: {str(err)[:300]}")
            passed = _kept(entry, results, log) and passed
        if not complete:
            break
    compared = [r for r in results if r.get("path") in PATHS[1:]]
    if variants and not compared:
        passed = False
        results.append({"variant": None, "path": None, "ok": False,
                        "error": "no fast path could be built for any variant: the library's path "
                                 "interface (build(..., path=...)) is not what this check expects"})
        log("CHECK FAILED: no fast path could be built")
    log(f"checks: {sum(r['ok'] for r in results)}/{len(results)} passed"
        + ("" if complete else " (the phase's time ran out; the rest not reached)"))
    return {"results": results, "passed": passed, "complete": complete, "T": T, "tolerance": tol}


def t5_flex_memory(device: str, *, B=8, T=4096, d_model=256, n_heads=4) -> dict:
    """Peak extra memory of one t5 layer on FlexAttention, forward and backward, in bf16, against
    the size of one (B, H, T, T) bf16 score matrix: the bound is a quarter of it (the bias is
    read from an (H, buckets) table inside the kernel, never expanded)."""
    dev = torch.device(device)
    scores = B * n_heads * T * T * 2
    if dev.type != "cuda":
        return {"skipped": "FlexAttention's backward needs CUDA", "score_matrix_bytes": scores}
    mixer = build_on_path("t5", "flex", d_model, n_heads, T)
    if mixer is None:
        return {"skipped": "t5 has no flex path in this library", "score_matrix_bytes": scores}
    mixer.to(dev)
    x = torch.randn(B, T, d_model, device=dev, requires_grad=True)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        mixer(x).float().sum().backward()                  # warm-up and compilation
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        mixer(x).float().sum().backward()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - before
    return {"B": B, "T": T, "peak_bytes": peak, "score_matrix_bytes": scores, "bound_bytes": scores // 4,
            "ok": peak <= scores // 4}


# --- c. model-level throughput -----------------------------------------------------------------
def flops_per_token(model, seq_len: int, mask_rate: float = 0.15) -> float:
    """Training FLOPs per token (forward + backward = 3 x forward): 6 per weight of the layers'
    matrices, 12 L T d for the attention products, and the tied vocabulary projection on the
    masked positions only (as the training step does)."""
    cfg = model.cfg
    dense = sum(p.numel() for p in model.blocks.parameters() if p.dim() >= 2)
    return 6 * dense + 12 * cfg.n_layers * seq_len * cfg.d_model + 6 * mask_rate * cfg.d_model * cfg.vocab_size


def measure_throughput(variant: str, profile: str, device: str, *, seconds: float, compile_: bool,
                       vocab_size: int | None = None, min_steps: int = 3, start_at: float | None = None,
                       batch: int | None = None) -> dict:
    """Steady-state training steps of one variant at a profile's model and batch (random tokens,
    no padding, 15 % masked targets; AdamW; bf16 autocast and ``torch.compile`` on CUDA)."""
    from .config import get_profile
    from .encoder import Encoder, EncoderConfig
    from .train import Objective, _optimizer

    prof = get_profile(profile)
    dev = torch.device(device)
    if vocab_size is None:
        from .data.tokenizer import load_tokenizer

        vocab_size = load_tokenizer(prof.tokenizer).get_vocab_size()
    torch.manual_seed(0)
    model = Encoder(EncoderConfig(variant=variant, vocab_size=vocab_size, **prof.model))
    objective = Objective(model, "mlm").to(dev)
    optimizer = _optimizer(model, prof.pretrain)
    step_fn = torch.compile(objective) if compile_ else objective
    B, T = batch or prof.pretrain.batch_size, prof.seq_len
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, vocab_size, (B, T), generator=g).to(dev)
    labels = torch.where(torch.rand(B, T, generator=g).to(dev) < 0.15, ids, torch.full_like(ids, -100))
    mask = torch.ones(B, T, dtype=torch.bool, device=dev)
    cuda = dev.type == "cuda"

    def step():
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cuda):
            loss = step_fn(ids, mask, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    start = time.perf_counter()
    for _ in range(3):
        step()
    if cuda:
        torch.cuda.synchronize()
    warmup = time.perf_counter() - start
    if start_at is not None:                # several processes: time the same wall-clock window
        time.sleep(max(0.0, start_at - time.time()))
    steps, start = 0, time.perf_counter()
    while steps < min_steps or time.perf_counter() - start < seconds:
        step()
        steps += 1
        if cuda and steps % 10 == 0:
            torch.cuda.synchronize()
    if cuda:
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    tokens_per_s = steps * B * T / elapsed
    fpt = flops_per_token(model, T)
    peak = peak_flops(device)
    return {"variant": variant, "profile": profile, "batch": B, "seq_len": T, "compiled": compile_,
            "warmup_s": warmup, "steps": steps, "step_s": elapsed / steps, "tokens_per_s": tokens_per_s,
            "flops_per_token": fpt, "achieved_flops": fpt * tokens_per_s,
            "mfu": fpt * tokens_per_s / peak if peak else None}


def peak_flops(device: str):
    if not device.startswith("cuda"):
        return None
    name = torch.cuda.get_device_name(torch.device(device))
    return next((v for k, v in PEAK_FLOPS.items() if k in name), None)


def _worker_main(argv):
    """``python -m compattn.gpu worker VARIANT PROFILE DEVICE SECONDS START OUT``: one process of
    the parallel-throughput measurement (eager; starts timing at the shared wall-clock START)."""
    variant, profile, device, seconds, start_at, batch, out = argv
    _stand_in_for_tqdm()
    if device == "cpu":
        torch.set_num_threads(1)
    result = measure_throughput(variant, profile, device, seconds=float(seconds), compile_=False,
                                start_at=float(start_at), batch=int(batch) or None, min_steps=1)
    Path(out).write_text(json.dumps(result))


def parallel_gain(variant, profile, device, *, counts=(1, 2, 4), seconds=4.0, end: float, log,
                  batch: int = 0, startup_s: float = 25.0) -> dict:
    """Total tokens/s of ``n`` training processes at once on the one device, for each ``n`` in
    ``counts`` (eager steps, each process timed over the same wall-clock window)."""
    out = {}
    for n in counts:
        if time.monotonic() + seconds + startup_s > end:
            log(f"parallel: no time left for {n} processes at once")
            break
        with tempfile.TemporaryDirectory() as tmp:
            start_at = time.time() + startup_s * 0.6 + 2 * n
            procs = [subprocess.Popen([sys.executable, "-m", "compattn.gpu", "worker", variant, profile, device,
                                       str(seconds), str(start_at), str(batch), f"{tmp}/{i}.json"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                     for i in range(n)]
            errors = []
            for p in procs:
                try:
                    _, err = p.communicate(timeout=max(5.0, end - time.monotonic()))
                except subprocess.TimeoutExpired:
                    p.kill()
                    err = "timed out"
                if p.returncode:
                    errors.append((err or "")[-300:])
            rows = [json.loads(Path(f"{tmp}/{i}.json").read_text()) for i in range(n)
                    if Path(f"{tmp}/{i}.json").exists()]
        if errors or len(rows) < n:
            out[str(n)] = {"error": errors[:1] or ["a process wrote nothing"]}
            log(f"parallel {n}: failed", out[str(n)])
            break
        out[str(n)] = {"tokens_per_s": sum(r["tokens_per_s"] for r in rows), "processes": n}
        log(f"parallel {n}: {out[str(n)]['tokens_per_s']:,.0f} tokens/s in total")
    base = out.get("1", {}).get("tokens_per_s")
    measured = [int(n) for n, r in out.items() if "tokens_per_s" in r]
    if not base or len(measured) < 2:
        return {"by_processes": out, "best": 1, "gain": 1.0, "chosen": 1, "mode": "eager",
                "verdict": "not measured (a process failed or the phase ran out of time); "
                           "one training at a time"}
    best = max(measured, key=lambda n: out[str(n)]["tokens_per_s"])
    gain = out[str(best)]["tokens_per_s"] / base
    chosen = best if gain >= 1.1 else 1
    return {"by_processes": out, "best": best, "gain": gain if chosen > 1 else 1.0, "chosen": chosen,
            "mode": "eager", "measured_gain": gain,
            "verdict": (f"{best} trainings at once give {gain:.2f}x the total throughput of one"
                        if chosen > 1 else
                        f"several trainings at once do not raise the total throughput "
                        f"(best {best} at once: {gain:.2f}x of one)")}


# --- d. the evidence protocol, planned -----------------------------------------------------------
def plan_steps(*, runs: dict, step_s: float, ft_step_s: float, overhead_s: dict, seconds: float, gain: float,
               ratio: float, max_steps: dict, min_steps: int = 5) -> dict:
    """Pre-training steps n and fine-tuning steps m = ratio * n (the profile's proportion, the same
    for every variant) such that all ``runs`` fit in ``seconds``:

        (P (o_p + n t_p) + F (o_f + m t_f)) / gain <= seconds

    with P, F the numbers of pre-training and fine-tuning runs, t the step times, o the fixed cost
    of a run and ``gain`` the speed-up of several trainings at once.  Clamped to the profile's
    steps above and ``min_steps`` below (then the sweep needs more than one invocation)."""
    P, F = runs["pretrain"], runs["finetune"]
    fixed = P * overhead_s["pretrain"] + F * overhead_s["finetune"]
    per_step = P * step_s + F * ft_step_s * ratio
    n = (seconds * gain - fixed) / per_step if per_step > 0 else max_steps["pretrain"]
    n = int(max(min_steps, min(max_steps["pretrain"], n)))
    m = int(max(min_steps, min(max_steps["finetune"], round(ratio * n))))
    estimate = (fixed + P * n * step_s + F * m * ft_step_s) / gain
    return {"pretrain": n, "finetune": m, "estimated_s": estimate, "fits": estimate <= seconds * 1.05}


def run_evidence_phase(work: Path, profile: str, device: str, *, end: float, throughput: dict, log,
                       dry_run: bool, sessions: int = 1) -> dict:
    """Plan (or reload) the steps, then run the protocol until ``end``.  ``sessions``: the number of
    invocations of this size the whole sweep may take (the plan then fits that many)."""
    from .config import get_profile

    evidence = evidence_module()
    out = work / "evidence-gpu"
    out.mkdir(parents=True, exist_ok=True)
    plan_path = out / "plan.json"
    parallel = throughput.get("parallel", {}).get("chosen", 1)
    if plan_path.exists():
        plan = json.loads(plan_path.read_text())
        log(f"evidence: continuing with the plan of {plan['created']}: {plan['steps']}")
    else:
        prof = get_profile(profile)
        runs = count_runs(evidence.plan(profile))
        measured = [r for r in throughput.get("variants", {}).values() if "step_s" in r]
        step_s = 1.25 * max(r["step_s"] for r in measured) if measured else 0.05
        ft_step_s = step_s * (prof.finetune.batch_size / prof.pretrain.batch_size)
        # the fixed cost of one run (compilation, evaluation, records), measured on a scratch
        # directory for up to ~30 s with a few steps per run, then thrown away
        probe_end = min(end - 10, time.monotonic() + (8 if dry_run else 30))
        t0 = time.monotonic()
        with tempfile.TemporaryDirectory() as scratch:
            probe = evidence.run_evidence(Path(scratch), profile, device=device, steps={"pretrain": 2, "finetune": 2},
                                          parallel=1, deadline=probe_end, progress=False)
        elapsed = time.monotonic() - t0
        done = max(1, len(probe["done"]))
        overhead = max(0.2, elapsed / done)
        total = len(probe["done"]) + probe["remaining"]
        if sum(runs.values()) != total:
            log(f"evidence: plan() counts {runs}, run_evidence {total} runs; scaling the counts")
            scale = total / max(1, sum(runs.values()))
            runs = {k: round(v * scale) for k, v in runs.items()}
        steps = plan_steps(runs=runs, step_s=step_s, ft_step_s=ft_step_s,
                           overhead_s={"pretrain": 2 * overhead, "finetune": overhead},
                           seconds=max(1.0, end - time.monotonic() - 5) * sessions,
                           gain=throughput.get("parallel", {}).get("gain", 1.0),
                           ratio=prof.finetune.steps / prof.pretrain.steps,
                           max_steps={"pretrain": prof.pretrain.steps, "finetune": prof.finetune.steps})
        plan = {"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "profile": profile,
                "steps": {"pretrain": steps["pretrain"], "finetune": steps["finetune"]}, "parallel": parallel,
                "inputs": {"runs": runs, "step_s": step_s, "finetune_step_s": ft_step_s,
                           "run_overhead_s": overhead, "probe_runs": len(probe["done"]),
                           "probe_s": elapsed, "parallel_gain": throughput.get("parallel", {}).get("gain", 1.0)},
                "estimated_s": steps["estimated_s"], "sessions": sessions, "fits": steps["fits"]}
        plan_path.write_text(json.dumps(plan, indent=1) + "\n")
        log(f"evidence: planned {plan['steps']} steps per run, {parallel} at once; estimated "
            f"{steps['estimated_s']:.0f} s for {sum(runs.values())} runs")
    # no run may start that would not end before ``end``: stop starting them one run early
    inputs = plan["inputs"]
    one_run = 2 * inputs["run_overhead_s"] + plan["steps"]["pretrain"] * inputs["step_s"]
    deadline = end - max(5.0 if dry_run else 20.0, one_run)
    result = evidence.run_evidence(out, plan["profile"], device=device, steps=plan["steps"],
                                   parallel=plan.get("parallel", parallel), deadline=deadline, progress=False)
    log(f"evidence: {len(result['done'])} runs done now, {result['remaining']} remaining, "
        f"complete={result['complete']}")
    return {"plan": plan, "done_now": len(result["done"]), "remaining": result["remaining"],
            "complete": result["complete"]}


# --- e. packing and unpacking ---------------------------------------------------------------------
def pack(work: Path, out: Path, log) -> list:
    """The evidence records (JSON, no checkpoints) and plan as ``evidence-gpu.tar.gz`` and the
    search records as ``search-gpu.tar.gz`` (split into parts if one file would pass 16 MiB);
    the summary, benchmark and log are already in ``out``."""
    files = []
    for folder in ("evidence-gpu", "search-gpu"):
        records = sorted(p for p in (work / folder).rglob("*.json")) if (work / folder).exists() else []
        if not records:
            continue
        parts, current, size = [], [], 0
        for p in records:
            n = p.stat().st_size
            if current and size + n > 4 * MAX_FILE_BYTES:           # JSON compresses > 4x
                parts.append(current)
                current, size = [], 0
            current.append(p)
            size += n
        parts.append(current)
        for i, part in enumerate(parts):
            name = f"{folder}.tar.gz" if len(parts) == 1 else f"{folder}.part{i}.tar.gz"
            with tarfile.open(out / name, "w:gz") as tar:
                for p in part:
                    tar.add(p, arcname=str(p.relative_to(work)))
            files.append(out / name)
    for key in ("summary", "bench", "log"):
        if (out / OUT_FILES[key]).exists():
            files.append(out / OUT_FILES[key])
    too_big = [f.name for f in files if f.stat().st_size > MAX_FILE_BYTES]
    if too_big or len(files) > MAX_FILES:
        log(f"pack: WARNING {len(files)} files, over 16 MiB: {too_big}")
    return files


def unpack(files, results: Path | None = None) -> list:
    """Put the files of a GPU run where the chapters look: ``compattn/results/bench-gpu.json``,
    ``gpu-summary.json``, ``gpu-run.log`` and the records under ``evidence-gpu/``."""
    from .records import results_dir

    results = Path(results or results_dir())
    placed = []
    for f in map(Path, files):
        folder = next((name for name in ("evidence-gpu", "search-gpu") if f.name.startswith(name)), None)
        if f.name.endswith(".tar.gz") and folder:
            with tarfile.open(f) as tar:
                for member in tar.getmembers():
                    target = (results / member.name).resolve()
                    if not member.isfile() or not member.name.startswith(folder + "/") \
                            or results.resolve() not in target.parents:
                        raise ValueError(f"{f}: unexpected member {member.name!r}")
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(tar.extractfile(member).read())
                    placed.append(target)
        elif f.name in (OUT_FILES["summary"], OUT_FILES["bench"], OUT_FILES["log"]):
            if f.suffix == ".json":
                json.loads(f.read_text())                     # refuse a truncated file
            shutil.copyfile(f, results / f.name)
            placed.append(results / f.name)
        else:
            raise ValueError(f"{f}: not a file gpu-run makes ({', '.join(OUT_FILES.values())})")
    return placed


def pack_data(source: Path, out: Path) -> Path:
    """The built data (corpus, tasks, tokenizer, manifest) as one ``.tar.gz`` for the GPU machine."""
    source, out = Path(source), Path(out)
    if not (source / "manifest.json").exists():
        raise ValueError(f"no built data under {source}; run `python -m compattn data` first")
    out.mkdir(parents=True, exist_ok=True)
    archive = out / DATA_ARCHIVE
    with tarfile.open(archive, "w:gz", compresslevel=9) as tar:
        for name in DATA_FILES:
            if (source / name).exists():
                tar.add(source / name, arcname=name)
        tar.add(source / "tasks", arcname="tasks")
    if archive.stat().st_size > 40 * 2**20:
        raise ValueError(f"{archive} is {archive.stat().st_size / 2**20:.1f} MiB, over the 40 MiB limit")
    return archive


def _unpack_data(archive: Path, target: Path) -> Path:
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            if member.name.startswith("/") or ".." in Path(member.name).parts:
                raise ValueError(f"{archive}: unsafe member {member.name!r}")
        _extract(tar, target)
    return target


def find_data_archive(explicit: Path | None) -> Path | None:
    if explicit:
        return Path(explicit)
    for root in (Path.cwd(), Path(__file__).resolve().parent.parent):
        if (root / "gpu-data" / DATA_ARCHIVE).exists():
            return root / "gpu-data" / DATA_ARCHIVE
    return None


# --- the command ----------------------------------------------------------------------------------
def _stand_in_for_tqdm():
    """The data and training modules show progress with tqdm; a bare GPU image may lack it.  Then
    a stand-in that only iterates (gpu-run shows no progress bars anyway)."""
    try:
        import tqdm  # noqa: F401
        return
    except ImportError:
        pass
    import types

    class _Bar:
        def __init__(self, iterable=None, *args, **kwargs):
            self.iterable = iterable if iterable is not None else []

        def __iter__(self):
            return iter(self.iterable)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def update(self, *args, **kwargs):
            pass

        set_postfix = set_description = close = write = update

    module = types.ModuleType("tqdm")
    module.tqdm = module.trange = _Bar
    module.__compattn_stand_in__ = True
    auto = types.ModuleType("tqdm.auto")
    auto.tqdm = auto.trange = _Bar
    module.auto = auto
    sys.modules.setdefault("tqdm", module)
    sys.modules.setdefault("tqdm.auto", auto)


PHASES = ("check", "bench", "throughput", "evidence", "search")
DEFAULT_PHASES = ("check", "bench", "throughput", "evidence")


def gpu_run(out: Path, budget_s: float = 540.0, *, dry_run: bool = False, data: Path | None = None,
            work: Path | None = None, device: str | None = None, sessions: int = 1,
            phases=DEFAULT_PHASES) -> dict:
    """Run the phases (module docstring) within ``budget_s`` seconds; returns the summary.
    ``phases`` picks some of ``PHASES``, in their fixed order."""
    unknown = set(phases) - set(PHASES)
    if unknown or not phases:
        raise ValueError(f"phases must be some of {', '.join(PHASES)}; got {', '.join(phases) or 'none'}")
    clock = Clock(budget_s, 10.0 if dry_run else RESERVE_S, DRY_SHARES if dry_run else SHARES)
    _stand_in_for_tqdm()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(work) if work else Path(tempfile.gettempdir()) / f"compattn-gpu-work-{os.getpid()}"
    work.mkdir(parents=True, exist_ok=True)
    log = Log(out / OUT_FILES["log"])
    device = device or ("cpu" if dry_run else "cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("gpu-run: no CUDA device here (use --dry-run to run the same code on a CPU)")
    if device == "cpu":
        # one thread: on a shared CPU, two spinning threads per process can make a step 30x slower
        torch.set_num_threads(1)
    summary_path = out / OUT_FILES["summary"]
    summary = {"dry_run": dry_run, "budget_s": budget_s, "device": device, "phases_asked": list(phases),
               "device_name": torch.cuda.get_device_name() if device.startswith("cuda") else "cpu",
               "torch": torch.__version__, "python": sys.version.split()[0], "phases": {},
               "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "peak_flops": None}
    try:
        from .bench import git_commit

        summary["commit"] = git_commit()
    except Exception:                                                # noqa: BLE001
        summary["commit"] = "unknown"
    committed = None if dry_run else _committed("gpu-summary.json")
    if summary_path.exists():                                        # a later invocation, same DIR
        summary["previous"] = json.loads(summary_path.read_text()).get("phases", {})
    elif committed is not None:                                      # a fresh machine: the committed run
        summary["previous"] = json.loads(committed.read_text()).get("phases", {})
        summary["previous_from"] = "committed results"
    _restore_evidence(out, work, log, committed=not dry_run)
    torch._dynamo.config.recompile_limit = 64        # every variant x path x length is its own graph
    if hasattr(torch._dynamo.config, "accumulated_recompile_limit"):
        torch._dynamo.config.accumulated_recompile_limit = max(
            torch._dynamo.config.accumulated_recompile_limit, 1024)
    log(f"gpu-run: {summary['device_name']}, torch {torch.__version__}, budget {budget_s:.0f} s"
        + (" (dry run)" if dry_run else ""))

    def save():
        summary["elapsed_s"] = time.monotonic() - clock.start
        summary_path.write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")

    def phase(name, fn):
        t0 = time.monotonic()
        try:
            result = fn()
        except Exception as err:                                      # noqa: BLE001
            log(f"{name}: ERROR {type(err).__name__}: {err}\n{traceback.format_exc(limit=6)}")
            result = {"error": f"{type(err).__name__}: {str(err)[:500]}"}
        result["seconds"] = time.monotonic() - t0
        summary["phases"][name] = result
        save()
        return result

    try:
        archive = find_data_archive(data)
        if archive:
            os.environ["COMPATTN_DATA"] = str(_unpack_data(archive, work / "data"))
            log(f"data: {archive} unpacked into {os.environ['COMPATTN_DATA']}")
        elif not dry_run:
            log("data: no gpu-data archive found; the profile's data source decides (sample if none)")
        summary["data"] = os.environ.get("COMPATTN_DATA", "embedded sample")
        peak = peak_flops(device)
        summary["peak_flops"] = {"value": peak, "source": PEAK_SOURCE} if peak else None
        previous = summary.get("previous", {})
        if "check" not in phases:
            pass
        elif previous.get("check", {}).get("passed") and previous["check"].get("complete"):
            summary["phases"]["check"] = {**previous["check"], "reused": True}
            log("check: passed in the previous invocation; not repeated")
        else:
            check = phase("check", lambda: _check_phase(device, clock.phase_end("check"), log, dry_run))
            if not check.get("passed", False):
                log("gpu-run STOPPED: a correctness check failed (see the summary's phases.check)")
                summary["stopped"] = "a correctness check failed"
                return summary
        have_bench = (out / OUT_FILES["bench"]).exists() or _committed(OUT_FILES["bench"]) is not None
        if "bench" not in phases:
            pass
        elif not dry_run and have_bench and previous.get("bench", {}).get("complete"):
            summary["phases"]["bench"] = {**previous["bench"], "reused": True}
        else:
            phase("bench", lambda: _bench_phase(device, clock.phase_end("bench"), out, log, dry_run))
        if "throughput" not in phases:
            pass
        elif "throughput" in previous and "variants" in previous["throughput"]:
            summary["phases"]["throughput"] = {**previous["throughput"], "reused": True}
        else:
            phase("throughput", lambda: _throughput_phase(device, clock.phase_end("throughput"), log, dry_run))
        if "evidence" in phases:
            phase("evidence", lambda: run_evidence_phase(work, gpu_profile(dry_run), device,
                                                         end=clock.work_end(),
                                                         throughput=summary["phases"].get("throughput", {}),
                                                         log=log, dry_run=dry_run, sessions=sessions))
        if "search" in phases:
            phase("search", lambda: _search_phase(work, device, clock, log, dry_run))
        bench_path = out / OUT_FILES["bench"]
        if not bench_path.exists() and not dry_run:
            bench_path = _committed(OUT_FILES["bench"]) or bench_path
        summary["targets"] = targets(summary, bench_path)
        return summary
    finally:
        summary["files"] = sorted({OUT_FILES["summary"], OUT_FILES["log"]}
                                  | {f.name for f in out.glob("evidence-gpu*.tar.gz")}
                                  | {f.name for f in out.glob("search-gpu*.tar.gz")}
                                  | ({OUT_FILES["bench"]} if (out / OUT_FILES["bench"]).exists() else set()))
        save()
        files = pack(work, out, log)
        log(f"packed {len(files)} files: " + ", ".join(f"{f.name} ({f.stat().st_size / 2**20:.2f} MiB)"
                                                        for f in files)
            + f"; {clock.left():.0f} s of the budget left")
        summary["files"] = sorted(f.name for f in files)
        save()


SEARCH_WORKERS = 12      # runs at once on one GPU: each small run is bound by its CPU process


def _search_phase(work: Path, device: str, clock: Clock, log, dry_run: bool) -> dict:
    """The recipe search's GPU arm (``compattn.search``): the budget curve of ``absolute`` and
    ``none`` under each candidate recipe, until the work time ends."""
    from .search import run_search

    workers = 2 if dry_run else min(SEARCH_WORKERS, max(1, (os.cpu_count() or 2) - 2))
    result = run_search(work / "search-gpu", "gpu", device=device, parallel=workers,
                        deadline=clock.work_end() - (5 if dry_run else 20), log=log, dry_run=dry_run,
                        grace_s=5 if dry_run else 15)
    result["workers"] = workers
    result["failed"] = [f"{r}: {why}" for r, why in result["failed"]]
    return result


def _committed(name: str) -> Path | None:
    from .records import results_dir

    path = results_dir() / name
    return path if path.exists() else None


def _extract(tar, target):
    try:
        tar.extractall(target, filter="data")
    except TypeError:                        # a Python without extraction filters
        tar.extractall(target)


def _restore_evidence(out: Path, work: Path, log, committed: bool = True):
    """A later invocation continues: the evidence records and plan from ``out`` (this machine's last
    run) or else from the committed ``compattn/results/evidence-gpu``."""
    target = work / "evidence-gpu"
    if target.exists() and any(target.iterdir()):
        return
    parts = sorted(out.glob("evidence-gpu*.tar.gz"))
    if parts:
        for p in parts:
            with tarfile.open(p) as tar:
                _extract(tar, work)
        log(f"resume: evidence records from {', '.join(p.name for p in parts)}")
        return
    folder = _committed("evidence-gpu") if committed else None
    if folder is not None and (folder / "plan.json").exists():
        shutil.copytree(folder, target, dirs_exist_ok=True)
        log(f"resume: evidence records and plan from {folder}")


def _check_phase(device, end, log, dry_run):
    T = 24 if dry_run else 256
    import compattn

    # the paths most likely to go wrong first (FlexAttention's tables), then the rest
    first = ["composite", "t5", "composite_fixed", "shaw", "composite_query", "composite_key"]
    variants = ["composite", "t5"] if dry_run else \
        [v for v in first if v in compattn.variants()] + [v for v in compattn.variants() if v not in first]
    compiled = ["composite"] if dry_run else ["composite", "t5", "none"]
    compiled = [v for v in compiled if v in compattn.variants()]
    result = check_paths(device, end, log, T=T, variants=variants, compile_variants=compiled,
                         backend="aot_eager" if dry_run else "inductor")
    if time.monotonic() < end:
        result["t5_flex_memory"] = t5_flex_memory(device)
        if result["t5_flex_memory"].get("ok") is False:
            result["passed"] = False
            log("CHECK FAILED: t5 on FlexAttention", result["t5_flex_memory"])
    return result


def _bench_phase(device, end, out, log, dry_run):
    from .bench import main as bench_main, run_benchmark, validate_bench

    seconds = max(5.0, end - time.monotonic())
    if dry_run:
        report = run_benchmark(["absolute", "composite", "hf_bert_relative_key_query", "hf_t5"],
                               (16, 32, 64), batch=2, n_heads=2, d_head=8, device=device, budget_s=seconds,
                               progress=log)
        validate_bench(report)
        (out / OUT_FILES["bench"]).write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
    else:
        report = bench_main(out=out / OUT_FILES["bench"], device=device, budget_s=seconds, progress=log)
    short = {T: len(report["results"]["none"].get(str(T), {}).get("times_ms", []))
             for T in report["config"]["lengths"]}
    return {"complete": all(r >= report["config"]["min_rounds"] for r in short.values()), "rounds": short,
            "skipped": report.get("skipped", {}), "control": report.get("control", {})}


def _throughput_phase(device, end, log, dry_run):
    profile = gpu_profile(dry_run)
    result = {"profile": profile, "variants": {}}
    cuda = device.startswith("cuda")
    per = max(1.0, (end - time.monotonic()) * 0.4 / len(THROUGHPUT_VARIANTS))
    for variant in THROUGHPUT_VARIANTS:
        if time.monotonic() > end - 5:
            result["variants"][variant] = {"skipped": "out of time"}
            continue
        try:
            r = measure_throughput(variant, profile, device, seconds=min(per, 1.0 if dry_run else 10.0),
                                   compile_=cuda, batch=2 if dry_run else None)
            result["variants"][variant] = r
            log(f"throughput {variant}: {r['tokens_per_s']:,.0f} tokens/s, step {1e3 * r['step_s']:.1f} ms"
                + (f", MFU {r['mfu']:.1%}" if r["mfu"] is not None else "")
                + f" (warm-up {r['warmup_s']:.0f} s)")
        except Exception as err:                                      # noqa: BLE001
            result["variants"][variant] = {"error": f"{type(err).__name__}: {str(err)[:300]}"}
            log(f"throughput {variant}: ERROR {err}")
    result["parallel"] = parallel_gain("absolute", profile, device, counts=(1, 2) if dry_run else (1, 2, 4),
                                       seconds=1.0 if dry_run else 4.0, end=end, log=log,
                                       batch=2 if dry_run else 0, startup_s=12.0 if dry_run else 25.0)
    log("parallel:", result["parallel"]["verdict"])
    return result


def targets(summary: dict, bench_path: Path) -> list:
    """The H200 targets, each ``{"target", "value", "bound", "met"}`` (``value`` ``None`` when not
    measured, with the reason)."""
    rows = []
    bench = json.loads(bench_path.read_text()) if bench_path.exists() else None

    def ratio(name, T):
        entry = (bench or {}).get("results", {}).get(name, {}).get(str(T))
        return entry["ratio"] if entry else None

    def row(text, value, op, bound, why=None):
        met = None if value is None else (value <= bound if op == "<=" else value >= bound)
        rows.append({"target": text, "value": value, "op": op, "bound": bound, "met": met,
                     **({"why_not_measured": why} if value is None else {})})

    r = ratio("composite", 2048)
    row("composite fwd+bwd in bf16 within 1.5x of plain SDPA (none) at T=2048", r, "<=", 1.5,
        None if r else "no benchmark entry at T=2048")
    hf = ratio("hf_bert_relative_key_query", 2048)
    row("composite >= 5x faster than Hugging Face relative_key_query at T=2048",
        hf / r if hf and r else None, ">=", 5.0, None if hf and r else "a candidate is missing at T=2048")
    tp = summary.get("phases", {}).get("throughput", {}).get("variants", {})
    mfu = tp.get("absolute", {}).get("mfu")
    row("absolute at the GPU profile >= 20 % MFU", mfu, ">=", 0.2, None if mfu is not None else "no MFU measured")
    a, c = tp.get("absolute", {}).get("step_s"), tp.get("composite", {}).get("step_s")
    row("composite's training step within 1.3x of absolute's", c / a if a and c else None, "<=", 1.3,
        None if a and c else "a step time is missing")
    return rows


def add_commands(sub) -> None:
    """Register ``gpu-run``, ``gpu-unpack`` and ``gpu-pack-data`` on an argparse sub-parser set."""
    run = sub.add_parser("gpu-run", help="checks, benchmark, throughput and the evidence protocol on one GPU, "
                                         "within a time budget, packed into at most 8 files")
    run.add_argument("--out", type=Path, required=True, help="where the packed files go (and the log)")
    run.add_argument("--budget-s", type=float, default=None, help="seconds in all (default 540; 150 dry run)")
    run.add_argument("--dry-run", action="store_true", help="the same code path on the CPU at tiny sizes")
    run.add_argument("--data", type=Path, default=None, help=f"the data archive (default gpu-data/{DATA_ARCHIVE})")
    run.add_argument("--work", type=Path, default=None, help="scratch directory (default: a temporary one)")
    run.add_argument("--sessions", type=int, default=1,
                     help="plan the evidence sweep to fit this many invocations (default 1)")
    run.add_argument("--phases", default=",".join(DEFAULT_PHASES),
                     help=f"comma-separated, some of {','.join(PHASES)} (default {','.join(DEFAULT_PHASES)}); "
                          "search: the recipe search's budget curve (compattn.search)")
    unpack_ = sub.add_parser("gpu-unpack", help="put the files of a GPU run where the chapters look")
    unpack_.add_argument("files", type=Path, nargs="+")
    unpack_.add_argument("--results", type=Path, default=None, help="default: compattn/results")
    data = sub.add_parser("gpu-pack-data", help=f"pack the built data into gpu-data/{DATA_ARCHIVE} for a GPU run")
    data.add_argument("--from", dest="source", type=Path, default=None, help="default: $COMPATTN_DATA")
    data.add_argument("--out", type=Path, default=Path("gpu-data"))


def dispatch(args) -> int | None:
    """Run a gpu-* command; ``None`` if ``args.command`` is not one of them."""
    if args.command == "gpu-run":
        budget = args.budget_s or (150.0 if args.dry_run else 540.0)
        summary = gpu_run(args.out, budget, dry_run=args.dry_run, data=args.data, work=args.work,
                          sessions=args.sessions, phases=tuple(p for p in args.phases.split(",") if p))
        bad = summary.get("stopped")
        errors = [name for name, phase in summary.get("phases", {}).items() if "error" in phase]
        print(f"gpu-run: {'STOPPED: ' + bad if bad else 'done'}"
              + (f" (errors in: {', '.join(errors)}; see {OUT_FILES['log']})" if errors else "")
              + f"; files in {args.out}: " + ", ".join(summary.get("files", [])))
        return 1 if bad else (4 if errors else 0)
    if args.command == "gpu-unpack":
        placed = unpack(args.files, args.results)
        print(f"gpu-unpack: {len(placed)} files placed under {args.results or 'compattn/results'}")
        return 0
    if args.command == "gpu-pack-data":
        from .data import data_dir

        archive = pack_data(args.source or data_dir(), args.out)
        print(f"gpu-pack-data: {archive} ({archive.stat().st_size / 2**20:.1f} MiB)")
        return 0
    return None


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        _worker_main(sys.argv[2:])
    else:
        parser = argparse.ArgumentParser(prog="python -m compattn.gpu")
        add_commands(parser.add_subparsers(dest="command", required=True))
        sys.exit(dispatch(parser.parse_args()))

"""The recipe search before protocol v3 (``compattn.protocol.SEARCH``), and its verdict.

    python -m compattn search --arm cpu --out DIR --parallel 2     # every candidate once
    python -m compattn search --arm gpu --out DIR --budget-s 420   # the budget curve, one GPU
    python -m compattn search --arm curve --out DIR --parallel 2   # protocol v3's budget curve, CPU

A run is one variant (``absolute`` or ``none``, seed 0) pre-trained with one candidate recipe
for ``multiple`` times the candidate's steps; its record lands in ``DIR/<candidate>-x<multiple>/``.
The runner resumes (a run whose record holds the planned settings is done), and stops starting
runs at a deadline or when the CPU arm has spent its hours.  :func:`verdict` applies the search's
pass rule and choice, which were committed before any search run.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from .protocol import PROTOCOL_V3, SEARCH

PROFILE = "cpu"                 # the base recipe is protocol v2's 'cpu' profile (a dry run: 'tiny')
DEV_BLOCKS = 512                # dev blocks per evaluation, whatever the batch size
EVALUATIONS = 20


def overrides(candidate: str, multiple: int = 1, profile: str = PROFILE, steps_cap: int | None = None
              ) -> tuple[dict, dict]:
    """``(train_overrides, model_overrides)`` of ``candidate`` run for ``multiple`` times its steps
    (at most ``steps_cap``: a dry run's short stand-in)."""
    from .config import get_profile

    if candidate not in SEARCH["candidates"]:
        raise ValueError(f"unknown candidate {candidate!r}; the search's are {', '.join(SEARCH['candidates'])}")
    if isinstance(multiple, bool) or not isinstance(multiple, int) or multiple < 1:
        raise ValueError(f"multiple must be a positive int, got {multiple!r}")
    train, model, _, _ = SEARCH["candidates"][candidate]
    base = get_profile(profile).pretrain
    steps = train.get("steps", base.steps) * multiple
    if steps_cap:
        steps = min(steps, steps_cap)
    batch = train.get("batch_size", base.batch_size)
    return ({**train, "steps": steps, "eval_every": max(1, steps // EVALUATIONS),
             "eval_batches": max(1, DEV_BLOCKS // batch), "checkpoint_every": max(50, steps // 10)}, dict(model))


def run_dir(candidate: str, multiple: int) -> str:
    return f"{candidate}-x{multiple}"


def plan(arm: str) -> list[tuple[str, int, str]]:
    """The runs ``(candidate, multiple, variant)`` of an arm, in the order they start: the GPU
    arm's shortest first, so that whatever the machine's speed the short end of every curve is
    there, and each longer run starts only when it can still finish (:func:`run_search`)."""
    if arm == "cpu":
        return [(c, 1, v) for c in SEARCH["candidates"] for v in SEARCH["variants"]]
    if arm == "gpu":
        multiples = SEARCH["gpu_multiples"]
        runs = [(c, m, v) for c in SEARCH["candidates"]
                for m in multiples.get(c, multiples["others"]) for v in SEARCH["variants"]]
        return sorted(runs, key=lambda r: (r[1] * SEARCH["candidates"][r[0]][2], r[0] != "base"))
    if arm == "curve":
        return [("base", m, v) for m in curve_multiples() for v in PROTOCOL_V3["curve"]["variants"]]
    raise ValueError(f"arm must be 'cpu', 'gpu' or 'curve', got {arm!r}")


def curve_multiples() -> list[int]:
    """The multiples of the base recipe's steps that protocol v3's budget curve runs itself (the
    smaller budgets are the search's own records)."""
    base = SEARCH["candidates"]["base"][0].get("steps", 2000)
    return [steps // base for steps in PROTOCOL_V3["curve"]["steps"] if steps // base >= 4]


def settings_of(run, profile: str = PROFILE, steps_cap: int | None = None) -> dict:
    from .train import pretrain_settings

    candidate, multiple, variant = run
    train, model = overrides(candidate, multiple, profile, steps_cap)
    return pretrain_settings(variant, profile, SEARCH["seed"], train_overrides=train, **model)


def is_done(out: Path, run, profile: str = PROFILE, steps_cap: int | None = None) -> bool:
    from .sweep import finished, run_name

    return finished(Path(out) / run_dir(*run[:2]), run_name("pretrain", run[2], SEARCH["seed"]),
                    settings_of(run, profile, steps_cap))


def execute(run, out: str, device: str, threads: int | None = None, profile: str = PROFILE,
            steps_cap: int | None = None, token: str | None = None) -> str:
    """Pre-train one planned run (in this process); returns where its record is.  ``token``: the
    lock of the run's folder, held by the runner that started this process (absolute and none
    of one recipe write into one folder at the same time)."""
    import torch

    from .files import joined
    from .train import pretrain

    if threads:
        torch.set_num_threads(threads)
    candidate, multiple, variant = run
    train, model = overrides(candidate, multiple, profile, steps_cap)
    folder = Path(out) / run_dir(candidate, multiple)
    folder.mkdir(parents=True, exist_ok=True)
    with joined(folder, token):
        pretrain(variant, profile, seed=SEARCH["seed"], out=folder, device=device, progress=False,
                 train_overrides=train, fast_cuda=False, **model)
    (folder / f"pretrain-{variant}-s{SEARCH['seed']}.pt").unlink(missing_ok=True)   # records travel, not weights
    return str(folder / f"pretrain-{variant}-s{SEARCH['seed']}.json")


def spent_hours(out: Path) -> float:
    """Single-process hours the recorded runs took (their wall time summed)."""
    return sum(r["wall_time_s"] for r in load(out)) / 3600


def run_search(out, arm: str, *, device: str = "auto", parallel: int = 1, deadline: float | None = None,
               log=print, dry_run: bool = False, grace_s: float = 0.0) -> dict:
    """Run (or resume) an arm into ``out``: up to ``parallel`` runs at once (spawned processes,
    the CPU's threads shared out), none started after ``deadline`` (``time.monotonic()``) or,
    on the CPU arm, once the recorded runs have spent ``SEARCH["max_cpu_hours"]``.  A dry run
    takes the same path with the tiny profile, the embedded sample and 20 steps a run.  Runs
    still going ``grace_s`` after the deadline are stopped (their records are never written);
    a run that would not finish in time at the step times seen so far is not started."""
    import concurrent.futures as cf
    import contextlib
    import multiprocessing as mp

    from .config import resolve_device
    from .files import folder_lock, lock_token

    if isinstance(parallel, bool) or not isinstance(parallel, int) or parallel < 1:
        raise ValueError(f"parallel must be a positive int, got {parallel!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    device = resolve_device(device)
    profile, cap = ("tiny", 20) if dry_run else (PROFILE, None)
    todo = [r for r in plan(arm) if not is_done(out, r, profile, cap)]

    def may_start() -> bool:
        if deadline is not None and time.monotonic() > deadline:
            return False
        return arm != "cpu" or spent_hours(out) < SEARCH["max_cpu_hours"]

    threads = max(1, (os.cpu_count() or 1) // parallel) if device == "cpu" else 1
    done, failed, skipped = [], [], []
    # seconds per step each candidate took under this load; a resumed arm starts from its records
    # (without an estimate every run would start, and the long ones be stopped unfinished)
    step_s = {r["candidate"]: r["wall_time_s"] / r["train"]["steps"] for r in load(out)}

    def fits(run) -> bool:
        """Can ``run`` finish before the deadline, at the slowest step time seen so far?"""
        if deadline is None or not step_s:
            return True
        steps = overrides(run[0], run[1], profile, cap)[0]["steps"]
        return time.monotonic() + steps * step_s.get(run[0], max(step_s.values())) < deadline

    # the runner holds the lock of every folder it will write into, and its workers join it
    locks = contextlib.ExitStack()
    tokens = {}
    for folder in dict.fromkeys(run_dir(*r[:2]) for r in todo):
        (out / folder).mkdir(parents=True, exist_ok=True)
        locks.enter_context(folder_lock(out / folder, f"search ({arm})"))
        tokens[folder] = lock_token(out / folder)
    pool = cf.ProcessPoolExecutor(parallel, mp_context=mp.get_context("spawn"))
    running = {}
    try:
        while todo or running:
            while todo and len(running) < parallel and may_start():
                run = todo.pop(0)
                if not fits(run):
                    skipped.append(run)
                    log(f"search: skipped {run_dir(*run[:2])} {run[2]} (cannot finish before the deadline)")
                    continue
                running[pool.submit(execute, run, str(out), device, threads, profile, cap,
                                    tokens[run_dir(*run[:2])])] = run
                log(f"search: started {run_dir(*run[:2])} {run[2]}")
            if not running:
                break
            wait = None if deadline is None else max(1.0, deadline + grace_s - time.monotonic())
            finished_, _ = cf.wait(running, timeout=wait, return_when=cf.FIRST_COMPLETED)
            if not finished_:
                log(f"search: the deadline has passed; stopping {len(running)} unfinished runs")
                break
            for future in finished_:
                run = running.pop(future)
                try:
                    record = json.loads(Path(future.result()).read_text())
                    done.append(run)
                    step_s[run[0]] = record["wall_time_s"] / record["train"]["steps"]
                    log(f"search: finished {run_dir(*run[:2])} {run[2]} ({record['wall_time_s']:.0f} s)")
                except Exception as err:                                     # noqa: BLE001
                    failed.append((run, f"{type(err).__name__}: {err}"))
                    log(f"search: FAILED {run_dir(*run[:2])} {run[2]}: {type(err).__name__}: {err}")
    finally:
        for process in list(getattr(pool, "_processes", {}).values()):     # unfinished runs end here
            if process.is_alive() and running:
                process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
        locks.close()
    remaining = [r for r in plan(arm) if not is_done(out, r, profile, cap)]
    return {"done": len(done), "failed": failed, "skipped": len(skipped), "remaining": len(remaining),
            "planned": len(plan(arm)), "hours": spent_hours(out)}


# --- reading the records ----------------------------------------------------------------------------
def load(directory) -> list[dict]:
    """Every search record under ``directory`` (each with ``candidate`` and ``multiple`` added)."""
    from .records import validate_record

    records = []
    for path in sorted(Path(directory).glob("*-x*/pretrain-*.json")):
        record = json.loads(path.read_text())
        validate_record(record)
        candidate, _, multiple = path.parent.name.rpartition("-x")
        records.append({**record, "candidate": candidate, "multiple": int(multiple)})
    return records


def rows(records) -> list[dict]:
    """One row per (candidate, multiple) with both variants: final dev losses, the order gaps,
    absolute minus none, and whether the pass rule holds."""
    by_key: dict = {}
    for r in records:
        by_key.setdefault((r["candidate"], r["multiple"]), {})[r["variant"]] = r
    out = []
    for (candidate, multiple), pair in by_key.items():
        if set(pair) != set(SEARCH["variants"]):
            continue
        a, n = pair["absolute"]["final"], pair["none"]["final"]
        passes = a["order_gap"] >= SEARCH["pass"]["min_order_gap_nats"] and a["loss"] < n["loss"]
        out.append({"candidate": candidate, "multiple": multiple, "steps": pair["absolute"]["train"]["steps"],
                    "tokens": SEARCH["candidates"][candidate][2] * multiple,
                    "absolute_loss": a["loss"], "none_loss": n["loss"], "difference": a["loss"] - n["loss"],
                    "absolute_gap": a["order_gap"], "none_gap": n["order_gap"], "passes": passes,
                    "device": pair["absolute"]["device"],
                    "hours": (pair["absolute"]["wall_time_s"] + pair["none"]["wall_time_s"]) / 3600})
    order = list(SEARCH["candidates"])
    return sorted(out, key=lambda r: (order.index(r["candidate"]), r["multiple"]))


def verdict(cpu_records) -> dict:
    """The CPU arm judged by ``SEARCH``: ``{"complete", "passing", "chosen", "why"}``.  ``chosen``
    is ``None`` when no candidate passes (v3 then keeps the base recipe) or the arm is unfinished."""
    table = [r for r in rows(cpu_records) if r["multiple"] == 1]
    complete = {r["candidate"] for r in table} == set(SEARCH["candidates"])
    passing = [r for r in table if r["passes"]]
    chosen = min(passing, key=lambda r: (r["tokens"], r["absolute_loss"]))["candidate"] if passing else None
    if not complete:
        why = f"the CPU arm has judged {len(table)} of {len(SEARCH['candidates'])} candidates"
        chosen = None
    elif chosen is None:
        why = "no candidate passes: v3 keeps the base recipe and reports the budget curve"
    else:
        why = f"{chosen} passes and trains the fewest tokens of those that pass"
    return {"complete": complete, "passing": [r["candidate"] for r in passing], "chosen": chosen, "why": why}


def curve_points(search_records, curve_records) -> list[dict]:
    """Protocol v3's budget curve: the base recipe at each budget of ``PROTOCOL_V3["curve"]``,
    from the search's CPU records (base-x1, steps4k-x1) and the curve's own (base-x4, base-x8)."""
    by_steps = {}
    for r in rows(list(search_records) + list(curve_records)):
        if r["candidate"] in ("base", "steps4k"):
            by_steps.setdefault(r["steps"], r)
    return [by_steps[s] for s in PROTOCOL_V3["curve"]["steps"] if s in by_steps]


def curve_answer(points: list[dict]) -> dict:
    """The curve's answer by ``PROTOCOL_V3["curve"]["answer"]``: ``{"reads_order_at"}`` (the
    smallest measured budget that passes), or ``{"estimate"}``: lines in log2(steps) through the
    three largest budgets, extrapolated to where the order gap reaches the gate's 0.10 and the
    loss difference reaches 0, and ``"gpu_plan"``, the next power of two at or above the later."""
    import math

    passing = [p["steps"] for p in points if p["passes"]]
    if passing:
        return {"reads_order_at": min(passing), "estimate": None, "gpu_plan": min(passing)}
    if len(points) < 3:
        return {"reads_order_at": None, "estimate": None, "gpu_plan": None,
                "why": f"{len(points)} budgets measured; the estimate needs three"}
    last = sorted(points, key=lambda p: p["steps"])[-3:]
    x = [math.log2(p["steps"]) for p in last]

    def reach(ys, target, rising: bool):
        """Steps at which the least-squares line of ``ys`` on log2(steps) meets ``target``
        (``None`` when the line moves away from it)."""
        mx, my = sum(x) / 3, sum(ys) / 3
        slope = sum((a - mx) * (b - my) for a, b in zip(x, ys)) / sum((a - mx) ** 2 for a in x)
        if (slope > 0) != rising:
            return None
        return 2 ** (mx + (target - my) / slope)

    gap_at = reach([p["absolute_gap"] for p in last], PROTOCOL_V3["gate"]["min_order_gap_nats"], True)
    loss_at = reach([p["difference"] for p in last], 0.0, False)
    usable = [v for v in (gap_at, loss_at) if v is not None]
    estimate = max(usable) if len(usable) == 2 else None
    plan = 2 ** math.ceil(math.log2(estimate)) if estimate else None
    return {"reads_order_at": None, "estimate": estimate, "gap_reaches_at": gap_at, "loss_crosses_at": loss_at,
            "gpu_plan": plan}


def budget_sentence(points: list[dict]) -> str:
    """The scorecard's one sentence: the smallest budget at which this code's ``absolute``
    reads word order, from the budget curve ``points`` (:func:`curve_points`)."""
    if not points:
        return "The budget curve has no records yet, so no budget is known at which absolute reads word order."
    answer = curve_answer(points)
    largest = max(p["steps"] for p in points)
    if answer["reads_order_at"]:
        return (f"With the base recipe on the CPU, this code's absolute reads word order from "
                f"{answer['reads_order_at']:,} pre-training steps on (order gap at least "
                f"{PROTOCOL_V3['gate']['min_order_gap_nats']:.2f} nats, dev loss below none's).")
    if answer["estimate"]:
        return (f"Up to {largest:,} pre-training steps of the base recipe this code's absolute does not "
                f"read word order; extrapolated in log-steps it would from about {answer['estimate']:,.0f} "
                f"steps, so the GPU run is planned at {answer['gpu_plan']:,} steps.")
    return (f"Up to {largest:,} pre-training steps of the base recipe this code's absolute does not read "
            f"word order, and its order gap does not yet grow with the budget, so the measured budgets "
            f"give no estimate of when it would.")


def table(rows_: list[dict]) -> str:
    """The rows as a Markdown table (losses and gaps in nats)."""
    lines = ["| recipe | × steps | absolute − none (dev loss) | order gap: absolute | passes |",
             "|---|---|---|---|---|"]
    for r in rows_:
        lines.append(f"| `{r['candidate']}` | {r['multiple']} ({r['steps']:,}) | {r['difference']:+.3f} | "
                     f"{r['absolute_gap']:.3f} | {'yes' if r['passes'] else 'no'} |")
    return "\n".join(lines)


__all__ = ["overrides", "plan", "curve_multiples", "curve_points", "curve_answer", "budget_sentence", "run_search", "load", "rows", "verdict", "table", "run_dir"]

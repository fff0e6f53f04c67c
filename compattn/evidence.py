"""The evidence protocol of Part III, stated once, and the resumable runner that carries it out.

``PROTOCOL`` fixes, before any result is seen, the recipe, the budget, the seeds, the rule that
says whether a pre-training run left the masked-LM plateau, the chance levels, which tasks
count, and the verdict rule with every threshold.  Chapter 10 prints it; the analysis
(:func:`analyse`) reads its thresholds from here and nowhere else.

``run_evidence(out, profile)`` trains what :func:`plan` lists: every variant pre-trained with
every pre-training seed, each checkpoint fine-tuned on every task with every fine-tuning seed.
``protocol=3`` runs protocol v3 instead (``compattn.protocol.PROTOCOL_V3``: its nine variants,
five pre-training seeds, its tasks, fine-tuning by epochs over a capped subset), into a folder
of its own (:func:`evidence_dir`); ``protocol=4`` is v3 at the 16,000 pre-training steps of its
budget curve (``PROTOCOL_V4``, decided after that curve).  The library's default stays
``PROTOCOL`` (v2), whose records the book shows as the earlier protocol, and the command line's
default is 3.
It resumes where it stopped (a run counts as done when its record is there and matches the
plan), may run several trainings at once, stops starting new runs at a deadline, and writes
``complete.json`` only when every planned run is recorded.
"""
from __future__ import annotations

import json
import math
import os
import signal
import time
from pathlib import Path

from .files import ContentChanged, folder_lock, joined, lock_token, write_atomic
from .protocol import FINETUNE_V3, PROTOCOL, PROTOCOL_V3, PROTOCOL_V4, PROTOCOLS, plateau_exit, unigram_baseline

EVIDENCE_DIRS = {"cpu": "evidence-cpu", "gpu": "evidence-gpu"}      # protocol v2's folders
DEFAULT_PROTOCOL = PROTOCOL["version"]


def _rules(protocol: int) -> dict:
    """The protocol of version ``protocol`` (``compattn.protocol.PROTOCOLS``), or a ValueError."""
    if isinstance(protocol, bool) or protocol not in PROTOCOLS:
        raise ValueError(f"protocol is one of {', '.join(map(str, PROTOCOLS))}; got {protocol!r}")
    return PROTOCOLS[protocol]


def protocol_steps(protocol: int) -> dict:
    """The step counts a protocol fixes whatever its profile says: v4's pre-training
    (``{"pretrain": 16000}``); none for v2 and v3, whose budgets are the profile's."""
    rules = _rules(protocol)
    return {"pretrain": rules["pretrain_steps"]} if "pretrain_steps" in rules else {}


def run_options(kind: str, protocol: int) -> dict:
    """What a run of ``kind`` passes to :func:`compattn.train.pretrain` / ``finetune`` (and their
    ``*_settings``) under ``protocol``: nothing for v2, whose runs stay as they were; for v3 and
    v4 their version and, for a fine-tuning, the recipe of ``compattn.protocol.FINETUNE_V3``."""
    _rules(protocol)
    if protocol == 2:
        return {}
    if kind == "pretrain":
        return {"protocol": protocol}
    recipe = FINETUNE_V3
    return {"protocol": protocol, "epochs": recipe["epochs"], "max_examples": recipe["max_examples"],
            "train_overrides": {"batch_size": recipe["batch_size"], "lr": recipe["lr"],
                                "warmup": recipe["warmup"]}}


def protocol_text(width: int = 88) -> str:
    """``PROTOCOL`` as indented, wrapped text, with the budgets of the ``cpu`` and ``gpu``
    profiles spelled out (what chapter 10 prints)."""
    import textwrap

    from .config import get_profile

    lines = []

    def emit(key, value, depth):
        pad = "  " * depth
        if isinstance(value, dict):
            lines.append(f"{pad}{key}:")
            for k, v in value.items():
                emit(k, v, depth + 1)
            return
        text = ", ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
        lines.extend(textwrap.wrap(f"{key}: {text}", width, initial_indent=pad,
                                   subsequent_indent=pad + "    "))

    for key, value in PROTOCOL.items():
        emit(key, value, 0)
    lines.append("profiles:")
    for name in EVIDENCE_DIRS:
        prof = get_profile(name)
        m, pt, ft = prof.model, prof.pretrain, prof.finetune
        lines.extend(textwrap.wrap(
            f"{name}: {m['n_layers']} layers, d={m['d_model']}, {m['n_heads']} heads, "
            f"feed-forward {m['d_ff']}, sequence {m['max_len']}; pre-training {pt.steps} steps "
            f"of {pt.batch_size} blocks at learning rate {pt.lr:g}; fine-tuning {ft.steps} "
            f"steps of {ft.batch_size} at {ft.lr:g}; records go to {EVIDENCE_DIRS[name]}, each "
            "naming the profile and device that made it",
            width, initial_indent="  ", subsequent_indent="      "))
    runs = plan("cpu")
    lines.append(f"runs: {sum(r[0] == 'pretrain' for r in runs)} pre-trainings and "
                 f"{sum(r[0] == 'finetune' for r in runs)} fine-tunings")
    return "\n".join(lines)


# --- the plan -----------------------------------------------------------------------------------
def finetune_seed(pretrain_seed: int, f: int) -> int:
    return 100 * pretrain_seed + f


def pretrain_seed_of(finetune_seed_: int) -> int:
    return finetune_seed_ // 100


def plan(profile: str, variants=None, tasks=None, protocol: int = DEFAULT_PROTOCOL) -> list[tuple]:
    """The runs of the protocol in order: ``("pretrain", variant, seed, None)`` and
    ``("finetune", variant, seed, task)`` (fine-tuning seeds as in the protocol's ``seeds``).
    Pre-trainings come first, seed-major, so a partial run has every variant at seed 0 early.
    Variants: v2's are every registered one, v3's its list; tasks and seeds are the protocol's."""
    from .registry import variants as all_variants

    rules = _rules(protocol)
    variants = list(variants or (all_variants() if protocol == 2 else rules["variants"]))
    tasks = list(tasks or rules["tasks"])
    seeds = rules["seeds"]
    runs = []
    for p in seeds["pretrain"]:
        for v in variants:
            runs.append(("pretrain", v, p, None))
            runs += [("finetune", v, finetune_seed(p, f), t) for t in tasks
                     for f in seeds["finetune_per_pretrain"]]
    return runs


def run_name(kind, variant, seed, task=None) -> str:
    from .sweep import run_name as name

    return name(kind, variant, seed, task)


def pretrain_checkpoint(out: Path, variant: str, finetune_seed_: int) -> Path:
    return Path(out) / f"{run_name('pretrain', variant, pretrain_seed_of(finetune_seed_))}.pt"


# --- is a run done? (the one place that knows the runs helper's settings contract) --------------
def expected_settings(run: tuple, out: Path, profile: str, steps: dict, protocol: int = DEFAULT_PROTOCOL):
    """What a record of ``run`` must say it was made with, or ``None`` when ``train`` has no
    ``*_settings`` functions (then the planned step count is checked instead)."""
    from . import train

    kind, variant, seed, task = run
    options = run_options(kind, protocol)
    try:
        if kind == "pretrain" and hasattr(train, "pretrain_settings"):
            return train.pretrain_settings(variant, profile, seed, steps=steps.get("pretrain"), **options)
        if kind == "finetune" and hasattr(train, "finetune_settings"):
            return train.finetune_settings(variant, task, pretrain_checkpoint(out, variant, seed), profile,
                                           seed, steps=steps.get("finetune"), **options)
    except ContentChanged:                      # a changed checkpoint is refused, never passed over
        raise
    except (TypeError, ValueError, OSError):   # another signature, or a checkpoint that is
        return None                             # not here (records travel, checkpoints do not)
    return None


def run_status(out: Path, run: tuple, profile: str, steps: dict,
               protocol: int = DEFAULT_PROTOCOL) -> tuple[str, str]:
    """``(status, detail)`` of a planned run's record, as :func:`compattn.sweep.record_status` says
    it (``"done"``, ``"missing"``, ``"corrupt"``, ``"changed"`` or ``"other"``), against the
    settings the plan asks for (or, where those cannot be computed, its profile and step count).
    A fine-tuning whose pre-training is to be run again counts as ``"missing"``: it is only as
    current as the checkpoint it started from."""
    from .config import get_profile
    from .records import read_record
    from .sweep import record_status

    name = run_name(*run)
    want = expected_settings(run, out, profile, steps, protocol)
    status, why = record_status(out, name, want)
    if status != "done":
        return status, why
    kind = run[0]
    if want is None:
        record = read_record(Path(out) / f"{name}.json")
        planned = steps.get(kind) or _planned_steps(run, profile, protocol)
        version = None if protocol == 2 else protocol            # v2's records carry no version
        made = (record.get("profile"), record["train"]["steps"], record.get("protocol_version"))
        if made != (profile, planned, version):
            return "other", (f"profile, steps, protocol_version: {made[0]!r}, {made[1]}, {made[2]} -> "
                             f"{profile!r}, {planned}, {version}")
    if kind == "finetune":
        base, _ = run_status(out, ("pretrain", run[1], pretrain_seed_of(run[2]), None), profile, steps,
                             protocol)
        if base != "done":
            return "missing", f"its pre-training is {base}"
    return "done", ""


def _planned_steps(run: tuple, profile: str, protocol: int) -> int:
    """The steps the protocol (v4's pre-training), or else the profile (or, for a v3 or v4
    fine-tuning, its epochs over the subset), gives a run."""
    from .config import get_profile

    kind, _, _, task = run
    fixed = protocol_steps(protocol)
    if kind in fixed:
        return fixed[kind]
    if kind == "finetune" and protocol >= 3:
        from .data import task_info
        from .train import epoch_plan

        prof = get_profile(profile)
        return epoch_plan(task, task_info(task, prof.data)["counts"]["train"], FINETUNE_V3["epochs"],
                          FINETUNE_V3["max_examples"], FINETUNE_V3["batch_size"])["steps"]
    return getattr(get_profile(profile), kind).steps


def run_done(out: Path, run: tuple, profile: str, steps: dict, protocol: int = DEFAULT_PROTOCOL) -> bool:
    """The run's record exists, matches its content hash and was made as planned."""
    return run_status(out, run, profile, steps, protocol)[0] == "done"


# --- running -----------------------------------------------------------------------------------
def execute(run: tuple, out: str, profile: str, device: str, steps: dict, progress: bool,
            threads: int | None = None, protocol: int = DEFAULT_PROTOCOL) -> str:
    """Train one planned run (in this process); returns its name."""
    import torch

    from .train import finetune, pretrain

    if threads:
        torch.set_num_threads(threads)
    out = Path(out)
    kind, variant, seed, task = run
    options = run_options(kind, protocol)
    if kind == "pretrain":
        pretrain(variant, profile, seed=seed, out=out, device=device, progress=progress,
                 steps=steps.get("pretrain"), **options)
    else:
        checkpoint = pretrain_checkpoint(out, variant, seed)
        if not checkpoint.exists():
            raise ValueError(f"{checkpoint.with_suffix('.json').name} is recorded but its checkpoint is "
                             f"gone; delete that record (and its fine-tunings) to pre-train again")
        finetune(variant, task, checkpoint, profile, seed=seed, out=out, device=device,
                 progress=progress, steps=steps.get("finetune"), **options)
        (out / f"{run_name(*run)}.pt").unlink(missing_ok=True)
    return run_name(*run)


def _check_runner_arguments(parallel, deadline, steps):
    if isinstance(parallel, bool) or not isinstance(parallel, int) or parallel < 1:
        raise ValueError(f"parallel is the number of trainings at once, a positive int; got {parallel!r}")
    if deadline is not None and (isinstance(deadline, bool) or not isinstance(deadline, (int, float))
                                 or not math.isfinite(deadline)):
        raise ValueError(f"deadline is a time.monotonic() value or None; got {deadline!r}")
    for kind, n in steps.items():
        if kind not in ("pretrain", "finetune") or isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"steps maps 'pretrain' and 'finetune' to positive ints; got {kind!r}: {n!r}")


def run_evidence(out, profile: str, *, device: str = "auto", steps: dict | None = None,
                 parallel: int = 1, deadline: float | None = None, progress: bool = True,
                 variants=None, tasks=None, protocol: int = DEFAULT_PROTOCOL) -> dict:
    """Run (or resume) the protocol's runs into ``out``.

    ``steps={"pretrain": n, "finetune": m}`` overrides the protocol's and the profile's budgets
    for every variant alike; ``deadline`` (a ``time.monotonic()`` value) stops new runs from
    starting after it; ``parallel=N`` trains N runs at once in separate processes on the same
    device.  Returns
    ``{"done": [names run now], "remaining": int, "complete": bool, "planned": int}``.

    As in a sweep, ``out`` is locked while this runs; a record made with other settings than the
    plan asks for (another profile, budget, tokenizer or data) is refused before anything is
    trained, naming the differences; a changed record or checkpoint is refused, naming the file;
    a record that is not valid JSON is set aside and its run done again.  ``protocol`` picks the
    plan and the recipe (2, 3 or 4); a record made for another protocol is refused the same way.
    """
    from .sweep import check_tokenizer, made_otherwise, set_aside

    steps = {k: v for k, v in (steps or {}).items() if v is not None}
    _check_runner_arguments(parallel, deadline, steps)
    steps = {**protocol_steps(protocol), **steps}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    runs = plan(profile, variants, tasks, protocol)
    with folder_lock(out, f"evidence ({profile})" if protocol == 2 else f"evidence v{protocol} ({profile})"):
        check_tokenizer(out, profile)
        todo = []
        for run in runs:
            status, why = run_status(out, run, profile, steps, protocol)
            if status == "other":
                raise made_otherwise(out, run_name(*run), why)
            if status == "changed":
                raise ValueError(why)
            if status == "corrupt":
                set_aside(out / f"{run_name(*run)}.json", why)
            if status != "done":
                todo.append(run)
        expired = (lambda: deadline is not None and time.monotonic() > deadline)
        done: list[str] = []
        if parallel <= 1:
            for run in todo:
                if expired():
                    break
                done.append(execute(run, str(out), profile, device, steps, progress, protocol=protocol))
        else:
            done = _run_parallel(todo, out, profile, device, steps, parallel, expired, protocol)
        remaining = sum(not run_done(out, r, profile, steps, protocol) for r in runs)
        complete = remaining == 0
        if complete:
            from .config import resolve_device

            write_atomic(out / COMPLETE, json.dumps({
                "runs": sorted(run_name(*r) for r in runs), "profile": profile,
                "protocol_version": protocol, "steps": steps,
                "device": resolve_device(device)}, indent=1) + "\n")
    return {"done": done, "remaining": remaining, "complete": complete, "planned": len(runs)}


COMPLETE = "complete.json"


def _worker(connection, out, profile, device, steps, threads, parent, token, protocol=DEFAULT_PROTOCOL):
    """A process of :func:`_run_parallel`: it trains the runs its parent sends, one at a time
    (``None`` or a closed connection: no more), and answers each with ``("done", name)`` or
    ``("error", message)``.  It writes into ``out`` under its parent's lock, stops (a training
    after its current step, with a checkpoint) on SIGTERM or SIGINT, and does so by itself when
    its parent is gone."""
    import threading

    from .train import Stopped

    def stop(signum, frame):         # outside a training loop, which stops more gently
        raise Stopped(128 + signum)

    os.setpgid(0, 0)                 # a terminal's Ctrl-C reaches the parent only, which forwards it once
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)

    def watch_parent():              # the parent was killed: stop as if it had forwarded SIGTERM
        while os.getppid() == parent:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch_parent, daemon=True).start()
    with joined(out, token):
        while True:
            try:
                run = connection.recv()
            except EOFError:
                return
            if run is None:
                return
            try:
                connection.send(("done", execute(run, out, profile, device, steps, False, threads, protocol)))
            except Exception as err:  # noqa: BLE001  (the parent raises it, in one line)
                plain = isinstance(err, (ValueError, OSError))      # the errors whose message says it all
                connection.send(("error", str(err) if plain else f"{type(err).__name__}: {err}"))


def _run_parallel(todo, out, profile, device, steps, parallel, expired, protocol=DEFAULT_PROTOCOL) -> list[str]:
    """Up to ``parallel`` runs at once, in as many spawned worker processes (each keeps its
    tokenised data from run to run); a fine-tuning starts once its pre-training is recorded.
    The threads of a CPU are shared out between the workers.

    SIGTERM or SIGINT is forwarded to the workers, which stop after their current step with a
    checkpoint; no new run starts and, once they have ended, :class:`compattn.train.Stopped` is
    raised.  A failed run stops the others the same way, then its error is raised here.  Workers
    whose parent is killed stop by themselves.
    """
    import multiprocessing as mp
    from multiprocessing.connection import wait

    from .train import Stopped, _StopOnSignal

    context = mp.get_context("spawn")
    threads = max(1, (os.cpu_count() or 1) // parallel)
    token = lock_token(out)
    pending = list(todo)
    waiting_for = {(r[1], r[2]) for r in todo if r[0] == "pretrain"}     # (variant, seed) not yet done
    workers: dict = {}               # process -> [connection, the run it trains or None]
    signalled: set = set()
    done, failure = [], None

    def forward(signum=None):        # SIGTERM to every worker, once (they stop alike on either signal)
        for process in workers:
            if process.pid not in signalled and process.is_alive():
                signalled.add(process.pid)
                os.kill(process.pid, signal.SIGTERM)

    def ready_run():
        return next((r for r in pending if r[0] == "pretrain"
                     or (r[1], pretrain_seed_of(r[2])) not in waiting_for), None)

    with _StopOnSignal(True, forward=forward) as stop:
        try:
            while True:
                stopping = bool(stop.signum or failure)
                if stopping:
                    forward()
                idle = [p for p, (_, run) in workers.items() if run is None and p.pid not in signalled]
                while not stopping and not expired() and (run := ready_run()) is not None:
                    if not idle and len(workers) < parallel:
                        mine, theirs = context.Pipe()
                        process = context.Process(target=_worker, args=(theirs, str(out), profile, device, steps,
                                                                        threads, os.getpid(), token, protocol))
                        process.start()
                        theirs.close()
                        workers[process] = [mine, None]
                        idle.append(process)
                    if not idle:
                        break
                    process = idle.pop()
                    pending.remove(run)
                    workers[process][1] = run
                    try:
                        workers[process][0].send(run)
                    except OSError:
                        pass                             # it ended: its sentinel says how
                busy = {conn: p for p, (conn, run) in workers.items() if run is not None}
                if not busy:
                    break
                for ready in wait(list(busy) + [p.sentinel for p in workers], timeout=1.0):
                    if ready in busy:
                        process = busy[ready]
                        try:
                            outcome = ready.recv()
                        except (EOFError, OSError):
                            continue                     # it ended: its sentinel says how
                        run, workers[process][1] = workers[process][1], None
                        if outcome[0] == "done":
                            done.append(outcome[1])
                            if run[0] == "pretrain":
                                waiting_for.discard((run[1], run[2]))
                        elif failure is None and not stop.signum:
                            failure = outcome[1]
                for process in [p for p in workers if not p.is_alive()]:
                    connection, run = workers.pop(process)
                    connection.close()
                    if run is not None and failure is None and not stop.signum:
                        failure = f"{run_name(*run)}: its worker process ended with exit code {process.exitcode}"
        except BaseException:            # an error here, or a second signal: the workers stop now
            for process in workers:
                if process.is_alive():
                    process.terminate()
            raise
        finally:
            for process, (connection, _) in workers.items():
                try:
                    connection.send(None)                # no more runs: an idle worker ends
                except OSError:
                    pass
                connection.close()
            for process in workers:
                process.join(timeout=60)
                if process.is_alive():                   # only after an error here
                    process.terminate()
                    process.join(timeout=30)
                    if process.is_alive():
                        process.kill()
    if stop.signum:
        name = signal.Signals(stop.signum).name
        print(f"evidence: {name} received; the running trainings stopped with their checkpoints, "
              f"{len(done)} runs done now; run the same command again to resume", flush=True)
        raise Stopped(128 + stop.signum)
    if failure:
        raise ValueError(failure)
    return done


# --- where the book finds it -------------------------------------------------------------------
def evidence_dir(profile: str, root: Path | None = None, protocol: int = DEFAULT_PROTOCOL) -> Path:
    """Where the evidence of ``profile`` ('cpu' or 'gpu') lives: ``evidence-<profile>`` for
    protocol v2, ``evidence-v<n>-<profile>`` for v3 and v4, under ``compattn/results`` (or
    ``root``)."""
    from .records import results_dir

    _rules(protocol)
    if profile not in EVIDENCE_DIRS:
        raise ValueError(f"only the profiles {', '.join(EVIDENCE_DIRS)} have an evidence folder; got {profile!r}")
    name = EVIDENCE_DIRS[profile] if protocol == 2 else f"evidence-v{protocol}-{profile}"
    return Path(results_dir() if root is None else root) / name


def best_evidence(root: Path | None = None, protocol: int = DEFAULT_PROTOCOL) -> Path | None:
    """The GPU evidence directory if it is complete, else the CPU one if complete, else None."""
    for profile in ("gpu", "cpu"):
        candidate = evidence_dir(profile, root, protocol)
        if (candidate / COMPLETE).exists():
            return candidate
    return None


def progress_of(directory: Path, profile: str, protocol: int = DEFAULT_PROTOCOL) -> dict:
    """``{"recorded": n, "planned": m, "protocol": version}`` for a (possibly partial) evidence
    directory: how many of the plan's runs have a record there (a missing folder: none).  Which
    device made them is :func:`banner`'s to say, from the records themselves."""
    runs = plan(profile, protocol=protocol)
    directory = Path(directory)
    recorded = sum((directory / f"{run_name(*r)}.json").exists() for r in runs) if directory.is_dir() else 0
    return {"recorded": recorded, "planned": len(runs), "protocol": protocol}


def progress_lines(root: Path | None = None) -> list[str]:
    """One line per evidence directory (either protocol) that holds at least one record: how
    many of its planned runs are recorded, on which profile and device.  A folder with no
    record is not mentioned at all: evidence that does not exist is not announced."""
    from .sweep import load_records

    lines = []
    for protocol in sorted(PROTOCOLS):
        for profile in EVIDENCE_DIRS:
            where = evidence_dir(profile, root, protocol)
            got = progress_of(where, profile, protocol)
            if not got["recorded"]:
                continue
            devices = sorted({r["device"] for r in load_records(where)})
            lines.append(f"{where.name}: {got['recorded']} of {got['planned']} runs recorded "
                         f"(protocol v{protocol}, profile {profile}, device {', '.join(devices)})")
    return lines


__all__ = ["PROTOCOL", "PROTOCOL_V3", "PROTOCOL_V4", "protocol_steps", "plan", "run_evidence", "best_evidence", "evidence_dir",
           "progress_of", "progress_lines", "run_options", "unigram_baseline", "plateau_exit",
           "run_done", "analyse", "CLAIMS", "claims_v3"]


# --- analysis: everything the chapters show, by the protocol's rules ----------------------------
CLAIMS = [
    # (the paper's claim in words, X, Y): "X beats Y"
    ("Composite attention improves on BERT's absolute positions", "composite", "absolute"),
    ("... its fixed form alone (T5-like)", "composite_fixed", "absolute"),
    ("... its query-based form alone (Shaw-like)", "composite_query", "absolute"),
    ("... its key-based form alone", "composite_key", "absolute"),
    ("Convolutions can replace absolute positions (lightweight)", "lightconv", "absolute"),
    ("Convolutions can replace absolute positions (dynamic)", "dynconv", "absolute"),
    ("Convolutions can replace absolute positions (on the values)", "conv_values", "absolute"),
    ("Composite attention beats its convolution alone", "composite", "lightconv"),
    ("Composite attention beats attention without positions", "composite", "none"),
]


def claims_v3() -> list[tuple]:
    """The claims of ``CLAIMS`` that protocol v3 judges: those between two of its variants (as
    many as ``PROTOCOL_V3["verdict"]["claims"]``, which sets the family level)."""
    chosen = [c for c in CLAIMS if c[1] in PROTOCOL_V3["variants"] and c[2] in PROTOCOL_V3["variants"]]
    assert len(chosen) == PROTOCOL_V3["verdict"]["claims"], (len(chosen), PROTOCOL_V3["verdict"]["claims"])
    return chosen


def _finetune_arrays(records, variant, task, seeds=None):
    """(P, F, N) correctness and the gold labels; None unless every
    planned (pre-training seed, fine-tuning seed) run of ``variant`` on ``task`` is recorded,
    so that an unfinished grid is never compared with a finished one."""
    import numpy as np

    from .train import decode_items

    rows = {}
    for r in records:
        if r["kind"] == "finetune" and r["variant"] == variant and r["task"] == task:
            items = r["final"]["test"].get("items")
            if items is None:
                return None
            rows[(pretrain_seed_of(r["seed"]), r["seed"] % 100)] = items
    if not rows:
        return None
    seeds = seeds or PROTOCOL["seeds"]
    pre = sorted(seeds["pretrain"])
    fine = sorted(seeds["finetune_per_pretrain"])
    if set(rows) != {(p, f) for p in pre for f in fine}:
        return None
    gold = np.array(decode_items(next(iter(rows.values()))["gold"]))
    correct = np.zeros((len(pre), len(fine), len(gold)), dtype=np.int8)
    for (p, f), items in rows.items():
        correct[pre.index(p), fine.index(f)] = np.array(decode_items(items["pred"])) == gold
    return correct, gold


def _task_scores(records, variants, tasks, seeds=None):
    """Per task, by the same rule in every protocol: each variant's fine-tuning arrays
    ``data[(v, t)] = (correct, gold)``, the chance level, whether the task is scored by balanced
    accuracy (its majority share above ``PROTOCOL["chance"]``'s bound, chance then 1/C), and
    each variant's point score.  A task no variant finished is left out."""
    import numpy as np

    from . import stats

    data, chance, balanced, scores = {}, {}, {}, {}
    for t in tasks:
        for v in variants:
            arrays = _finetune_arrays(records, v, t, seeds)
            if arrays is not None:
                data[(v, t)] = arrays
        if not any(k[1] == t for k in data):
            continue
        gold = next(a[1] for k, a in data.items() if k[1] == t)
        shares = np.bincount(gold) / len(gold)
        balanced[t] = bool(shares.max() > PROTOCOL["chance"]["balanced_when_majority_above"])
        chance[t] = float(1 / np.count_nonzero(np.bincount(gold)) if balanced[t] else shares.max())
        for v in variants:
            if (v, t) in data:
                correct, gold_ = data[(v, t)]
                scores[(v, t)] = stats.point_score(correct, gold_ if balanced[t] else None)
    return data, chance, balanced, scores


def record_protocol(records) -> int:
    """The protocol version the records were made for (``protocol_version``; records made before
    v3 carry none and are v2's); records of two protocols together are refused."""
    versions = {r.get("protocol_version", 2) for r in records if r.get("kind") in ("pretrain", "finetune")}
    if len(versions) > 1:
        raise ValueError(f"these records were made for several protocols ({sorted(versions)}); analyse one "
                         "protocol's folder at a time")
    return versions.pop() if versions else DEFAULT_PROTOCOL


def analyse(records, n_boot: int | None = None, seed: int = 0, protocol: int | None = None,
            cues: dict | None = None) -> dict:
    """Apply the protocol to a list of records: plateau exits, the gate, chance, informative
    tasks, per-variant scores and the paired comparisons of ``CLAIMS``.

    ``protocol`` defaults to the records' own ``protocol_version`` (none: v2).  Protocol v3 is
    :func:`analyse_v3` (``cues``: a task's ``surface_cues`` where its records carry none);
    ``n_boot`` and ``seed`` are v2's bootstrap."""
    protocol = record_protocol(records) if protocol is None else protocol
    _rules(protocol)
    if protocol >= 3:
        return analyse_v3(records, cues, protocol)
    return _analyse_v2(records, n_boot, seed)


def _analyse_v2(records, n_boot: int | None = None, seed: int = 0) -> dict:
    """Protocol v2 (``PROTOCOL``): the hierarchical bootstrap at its level."""
    import numpy as np

    from . import stats

    rules = PROTOCOL
    n_boot = n_boot or rules["verdict"]["replicates"]
    level = rules["verdict"]["level"]
    pre = [r for r in records if r["kind"] == "pretrain"]
    variants = sorted({r["variant"] for r in pre})
    plateau = {}
    for v in variants:
        runs = sorted((r for r in pre if r["variant"] == v), key=lambda r: r["seed"])
        plateau[v] = [{"seed": r["seed"], "left_at": r.get("plateau", {}).get("left_at"),
                       "left_in_time": bool(r.get("plateau", {}).get("left_in_time")),
                       "loss": r["final"]["loss"], "steps": r["train"]["steps"]} for r in runs]
    usable = {v: sum(p["left_in_time"] for p in runs) >= rules["verdict"]["min_seeds"]
              for v, runs in plateau.items()}
    mean_loss = {v: float(np.mean([p["loss"] for p in runs])) for v, runs in plateau.items()}
    gate = {"absolute": mean_loss.get("absolute"), "none": mean_loss.get("none")}
    gate["passed"] = None not in gate.values() and gate["absolute"] <= gate["none"]

    tasks = sorted({r["task"] for r in records if r["kind"] == "finetune"},
                   key=lambda t: rules["tasks"].index(t) if t in rules["tasks"] else 99)
    data, chance, balanced, scores = _task_scores(records, variants, tasks)

    informative = []
    for t in chance:
        runs = [data[(v, t)] for v in variants if (v, t) in data and usable[v]]
        if not runs:
            continue
        gold = runs[0][1]
        each = stats.bootstrap_each([correct for correct, _ in runs], gold if balanced[t] else None,
                                    n_boot, seed)
        best_low = max(stats.interval(reps, level)[0] - chance[t] for reps in each)
        if best_low > rules["informative"]["min_margin"]:
            informative.append(t)

    claims = []
    for claim, x, y in CLAIMS:
        row = {"claim": claim, "x": x, "y": y, "diff": None, "low": None, "high": None}
        if x not in usable or y not in usable:
            row["verdict"], row["why"] = "not established", "not run"
        elif not (usable[x] and usable[y]):
            row["verdict"], row["why"] = "not established", "a run did not leave the plateau"
        elif y == "absolute" and not gate["passed"]:
            row["verdict"], row["why"] = "not established", "gate failed: absolute under-trained"
        elif not informative:
            row["verdict"], row["why"] = "not established", "no informative task"
        elif any((v, t) not in data for v in (x, y) for t in informative):
            # the average runs over every informative task, or it is not drawn
            row["verdict"], row["why"] = "not established", "fine-tunings incomplete"
        else:
            pairs = [(data[(x, t)][0], data[(y, t)][0], data[(x, t)][1] if balanced[t] else None)
                     for t in informative]
            c = stats.compare(pairs, level, n_boot, seed)
            row.update(diff=c["diff"], low=c["low"], high=c["high"])
            effect = rules["verdict"]["min_effect"]
            row["verdict"] = ("supports" if c["low"] > effect else
                              "contradicts" if c["high"] < effect else "not established")
            row["why"] = ""
        claims.append(row)
    return {"variants": variants, "plateau": plateau, "usable": usable, "mean_loss": mean_loss,
            "gate": gate, "tasks": list(chance), "chance": chance, "balanced": balanced,
            "scores": scores, "informative": informative, "claims": claims, "level": level}


NOT_ESTABLISHED = "not established at this budget"
V3_MIN_MARGIN = 0.01      # PROTOCOL_V3["informative"]: "... minus chance lies above 0.01"


def _t_interval(values, level: float) -> tuple[float, float, float]:
    """``(mean, low, high)``: the Student t-interval of the mean of ``values`` at ``level``."""
    import numpy as np

    from .stats import t_quantile

    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    half = t_quantile(level, len(values) - 1) * float(values.std(ddof=1)) / np.sqrt(len(values))
    return mean, mean - half, mean + half


def _cue_exclusion(records, cues) -> str | None:
    """Why ``word_order`` is left out of v3's verdicts (``PROTOCOL_V3["task_requirement"]``), or
    None when the data build measured its surface cues and the best beats chance by no more than
    ``max_cue_advantage``."""
    measured = (cues or {}).get("word_order")
    if measured is None:
        measured = next((r["surface_cues"] for r in records if r.get("kind") == "finetune"
                         and r.get("task") == "word_order" and r.get("surface_cues")), None)
    if measured is None:
        return "surface cues not measured by this data build"
    bound = PROTOCOL_V3["max_cue_advantage"]
    advantage = measured.get("advantage")
    if advantage is None:
        advantage = measured["best_accuracy"] - measured["chance"]
    if advantage > bound:
        return (f"its best surface cue ({measured.get('best', '?')}) beats chance by {100 * advantage:.1f} "
                f"points, more than {100 * bound:.0f}")
    return None


def analyse_v3(records, cues: dict | None = None, protocol: int = 3) -> dict:
    """Protocol v3's verdict (``PROTOCOL_V3``) on a list of records; ``protocol=4`` is the same
    rules on v4's records (``PROTOCOL_V4`` changes the pre-training budget only).

    Plateau exclusion as v2 (a pre-training seed that did not leave the plateau in time is left
    out); the gate (absolute's mean final order gap over its pre-training seeds at least
    ``min_order_gap_nats`` and its mean dev MLM loss below none's; if it fails, every claim
    involving absolute is not established, with the gate's numbers as the reason); ``word_order``
    left out when its data build's best surface cue beats chance by more than
    ``max_cue_advantage`` or was not measured; informative tasks (some variant's t-interval of
    per-seed score minus chance above 0.01, at the family level); the claims of
    :func:`claims_v3` by :func:`compattn.stats.seed_compare` at ``family_level(9)`` on the seeds
    off the plateau for both variants (at least ``min_seeds`` of them).

    Returns what the chapters print: ``claims`` (claim, x, y, diff, low, high, n_seeds, seeds,
    verdict, why), ``gate`` (its numbers, ``passed`` and ``why``), ``informative`` and
    ``informative_low`` (each task's best lower interval end minus chance), ``excluded`` (task ->
    reason), ``plateau``, ``off_plateau``, ``mean_loss``, ``mean_order_gap``, ``tasks``,
    ``chance``, ``balanced``, ``scores``, ``level``, ``protocol``.
    """
    import numpy as np

    from . import stats

    if protocol not in (3, 4):
        raise ValueError(f"analyse_v3 judges protocol 3 or 4 (v3's rules); got {protocol!r}")
    rules = _rules(protocol)
    verdict = rules["verdict"]
    claims_list = claims_v3()
    level = stats.family_level(verdict["claims"], verdict["family_alpha"])
    min_seeds, effect = verdict["min_seeds"], verdict["min_effect"]
    pre_seeds = sorted(rules["seeds"]["pretrain"])
    pre = [r for r in records if r["kind"] == "pretrain" and r["variant"] in rules["variants"]]
    variants = [v for v in rules["variants"] if any(r["variant"] == v for r in pre)]
    plateau = {}
    for v in variants:
        runs = sorted((r for r in pre if r["variant"] == v), key=lambda r: r["seed"])
        plateau[v] = [{"seed": r["seed"], "left_at": r.get("plateau", {}).get("left_at"),
                       "left_in_time": bool(r.get("plateau", {}).get("left_in_time")),
                       "loss": r["final"]["loss"], "order_gap": r["final"].get("order_gap"),
                       "steps": r["train"]["steps"]} for r in runs]
    off = {v: [p["seed"] for p in runs if p["left_in_time"] and p["seed"] in pre_seeds]
           for v, runs in plateau.items()}
    mean_loss = {v: float(np.mean([p["loss"] for p in runs])) for v, runs in plateau.items()}
    mean_gap = {v: (float(np.mean([p["order_gap"] for p in runs]))
                    if all(p["order_gap"] is not None for p in runs) else None) for v, runs in plateau.items()}

    # --- the gate: does absolute read word order?
    min_gap = rules["gate"]["min_order_gap_nats"]
    gate = {"absolute_order_gap": mean_gap.get("absolute"), "min_order_gap": min_gap,
            "absolute_loss": mean_loss.get("absolute"), "none_loss": mean_loss.get("none")}
    if "absolute" not in plateau or "none" not in plateau:
        gate.update(order_ok=None, loss_ok=None, passed=False, why="gate not judged: absolute or none not run")
    elif gate["absolute_order_gap"] is None:
        gate.update(order_ok=None, loss_ok=gate["absolute_loss"] < gate["none_loss"], passed=False,
                    why="gate not judged: absolute's records carry no order gap")
    else:
        gate["order_ok"] = gate["absolute_order_gap"] >= min_gap
        gate["loss_ok"] = gate["absolute_loss"] < gate["none_loss"]
        gate["passed"] = gate["order_ok"] and gate["loss_ok"]
        failures = []
        if not gate["order_ok"]:
            failures.append(f"absolute's mean final order gap {gate['absolute_order_gap']:.3f} nats is below "
                            f"{min_gap:.2f}")
        if not gate["loss_ok"]:
            failures.append(f"its mean dev MLM loss {gate['absolute_loss']:.3f} is not below none's "
                            f"{gate['none_loss']:.3f}")
        gate["why"] = "gate failed: " + "; ".join(failures) if failures else ""

    # --- tasks: complete grids, chance, the surface-cue requirement, informative
    tasks = [t for t in rules["tasks"] if any(r["kind"] == "finetune" and r.get("task") == t for r in records)]
    excluded = {}
    if "word_order" in tasks:
        why = _cue_exclusion(records, cues)
        if why:
            excluded["word_order"] = why
    data, chance, balanced, scores = _task_scores(records, variants, tasks, rules["seeds"])

    def rows_of(seeds):
        return [pre_seeds.index(s) for s in seeds]

    informative, informative_low = [], {}
    for t in chance:
        if t in excluded:
            continue
        lows = []
        for v in variants:
            if (v, t) in data and len(off[v]) >= min_seeds:
                correct, gold = data[(v, t)]
                per_seed = stats.seed_scores(correct[rows_of(off[v])], gold if balanced[t] else None)
                lows.append(_t_interval(per_seed - chance[t], level)[1])
        if not lows:
            excluded[t] = f"no variant has {min_seeds} pre-training seeds off the plateau"
            continue
        informative_low[t] = max(lows)
        if informative_low[t] > V3_MIN_MARGIN:
            informative.append(t)
        else:
            excluded[t] = (f"uninformative: no variant's interval of score minus chance lies above "
                           f"{V3_MIN_MARGIN} (best lower end {informative_low[t]:+.3f})")

    # --- the claims
    claims = []
    for claim, x, y in claims_list:
        row = {"claim": claim, "x": x, "y": y, "diff": None, "low": None, "high": None, "n_seeds": 0,
               "seeds": [], "level": level, "verdict": NOT_ESTABLISHED}
        both = sorted(set(off.get(x, [])) & set(off.get(y, [])))
        row["n_seeds"], row["seeds"] = len(both), both
        if x not in plateau or y not in plateau:
            row["why"] = "not run"
        elif "absolute" in (x, y) and not gate["passed"]:
            row["why"] = gate["why"]
        elif len(both) < min_seeds:
            row["why"] = f"{len(both)} pre-training seeds off the plateau for both variants (needs {min_seeds})"
        elif not informative:
            row["why"] = "no informative task"
        elif any((v, t) not in data for v in (x, y) for t in informative):
            row["why"] = "fine-tunings incomplete"
        else:
            idx = rows_of(both)
            pairs = [(data[(x, t)][0][idx], data[(y, t)][0][idx], data[(x, t)][1] if balanced[t] else None)
                     for t in informative]
            c = stats.seed_compare(pairs, level)
            row.update(diff=c["diff"], low=c["low"], high=c["high"], per_seed=c["per_seed"])
            row["verdict"] = ("supports" if c["low"] > effect else
                              "contradicts" if c["high"] < effect else NOT_ESTABLISHED)
            row["why"] = ""
        claims.append(row)
    return {"protocol": protocol, "variants": variants, "plateau": plateau, "off_plateau": off, "mean_loss": mean_loss,
            "mean_order_gap": mean_gap, "gate": gate, "tasks": list(chance), "chance": chance,
            "balanced": balanced, "scores": scores, "informative": informative,
            "informative_low": informative_low, "excluded": excluded, "claims": claims, "level": level}


def mean_curves(records) -> tuple[dict, float]:
    """The dev masked-LM loss of every variant's pre-training, averaged over its seeds:
    ``({variant: (steps, mean loss)}, unigram loss)``.  Seeds of one variant are evaluated at the
    same steps (the protocol fixes them); curves that are not are refused, not interpolated."""
    import numpy as np

    by_variant, unigram = {}, []
    for r in records:
        if r["kind"] == "pretrain":
            by_variant.setdefault(r["variant"], []).append(r)
            unigram.append(r["plateau"]["unigram_loss"])
    curves = {}
    for v, runs in sorted(by_variant.items()):
        steps = runs[0]["curves"]["step"]
        if any(r["curves"]["step"] != steps for r in runs):
            raise ValueError(f"the pre-training seeds of {v!r} were evaluated at different steps")
        losses = np.array([[d["loss"] for d in r["curves"]["dev"]] for r in runs])
        curves[v] = (steps, losses.mean(axis=0).tolist())
    return curves, float(np.mean(unigram)) if unigram else float("nan")


# --- rendering (Markdown tables that fit a page column) -----------------------------------------
def plateau_table(a: dict) -> str:
    """Per variant: seeds off the plateau in time, the steps at which they left, dev MLM loss."""
    lines = ["| variant | off the plateau | left at step | dev MLM loss |", "|---|---|---|---|"]
    for v in sorted(a["variants"], key=a["mean_loss"].get):
        runs = a["plateau"][v]
        steps = ", ".join("never" if p["left_at"] is None else str(p["left_at"]) for p in runs)
        losses = [p["loss"] for p in runs]
        spread = (max(losses) - min(losses)) / 2
        lines.append(f"| `{v}` | {sum(p['left_in_time'] for p in runs)} of {len(runs)} | {steps} | "
                     f"{a['mean_loss'][v]:.3f} ± {spread:.3f} |")
    return "\n".join(lines)


def score_tables(a: dict, per_table: int = 3) -> list[str]:
    """Test scores (%) per variant, split into tables of ``per_table`` tasks; the last row is
    chance.  Balanced accuracy where the protocol says so (marked *)."""
    tasks = a["tasks"]
    tables = []
    for start in range(0, len(tasks), per_table):
        part = tasks[start:start + per_table]
        head = ["`" + t + "`" + (" *" if a["balanced"][t] else "") for t in part]
        lines = ["| variant | " + " | ".join(head) + " |", "|---|" + "---|" * len(part)]
        for v in a["variants"]:
            cells = [f"{100 * a['scores'][(v, t)]:.1f}" if (v, t) in a["scores"] else "–" for t in part]
            lines.append(f"| `{v}` | " + " | ".join(cells) + " |")
        lines.append("| *chance* | " + " | ".join(f"{100 * a['chance'][t]:.1f}" for t in part) + " |")
        tables.append("\n".join(lines))
    return tables


def claims_table(a: dict) -> str:
    lines = ["| claim (in words) | X − Y | difference (points) | verdict |", "|---|---|---|---|"]
    for c in a["claims"]:
        if c["diff"] is None:
            diff = "–"
        else:
            diff = f"{100 * c['diff']:+.1f} [{100 * c['low']:+.1f}, {100 * c['high']:+.1f}]"
        verdict = c["verdict"] + (f" ({c['why']})" if c["why"] else "")
        lines.append(f"| {c['claim']} | `{c['x']}` − `{c['y']}` | {diff} | {verdict} |")
    return "\n".join(lines)


def banner(directory: Path) -> str:
    """Which protocol, profile and device made the evidence in ``directory`` (a folder without
    records says so, and names no profile or device)."""
    from .sweep import load_records

    records = load_records(directory) if Path(directory).is_dir() else []
    if not records:
        return f"Evidence shown: `{Path(directory).name}`, no runs recorded yet."
    profiles = sorted({r["profile"] for r in records})
    devices = sorted({r["device"] for r in records})
    versions = sorted({r.get("protocol_version", 2) for r in records if r.get("kind") in ("pretrain", "finetune")})
    version = f"protocol v{', v'.join(map(str, versions))}, " if versions != [2] else ""
    return (f"Evidence shown: `{Path(directory).name}`, {version}profile {', '.join(profiles)}, "
            f"device {', '.join(devices)}, {len(records)} runs.")

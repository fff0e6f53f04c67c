"""``python -m compattn sweep``: pre-train every variant, fine-tune each on every task with several seeds.

Every run writes one JSON record (``pretrain-<variant>-s<seed>.json``,
``finetune-<variant>-<task>-s<seed>.json``) next to its checkpoint, so a sweep that is
stopped -- or runs out of its GPU lease -- resumes where it stopped: finished records are
skipped, a half-finished run continues from its checkpoint.  While it runs, the output folder
is locked (``compattn.files.folder_lock``): a second sweep, evidence run or training on it is
refused, naming the holder.  ``aggregate`` and ``results_table`` turn a directory of records
into the tables the book shows.
"""
from __future__ import annotations

import json
import statistics
import sys
from contextlib import nullcontext
from pathlib import Path

from .data import TASKS
from .files import ContentChanged, folder_lock, write_atomic
from .progress import tqdm
from .records import read_record, validate_record


def run_name(kind: str, variant: str, seed: int, task: str | None = None) -> str:
    if kind == "pretrain":
        return f"pretrain-{variant}-s{seed}"
    if kind == "finetune" and task:
        return f"finetune-{variant}-{task}-s{seed}"
    raise ValueError(f"run_name needs kind 'pretrain', or 'finetune' with a task; got {kind!r}, {task!r}")


def record_status(out: Path, name: str, settings: dict | None = None) -> tuple[str, str]:
    """``(status, detail)`` of the record ``out/<name>.json``: ``"missing"``; ``"changed"`` (its
    content does not match the hash written with it: ``detail`` is the refusal);
    ``"corrupt"`` (not JSON, or not a valid record: ``detail`` says why); ``"other"`` (made with
    other settings than ``settings``: ``detail`` names the differences); ``"done"``."""
    from .train import settings_differences

    path = Path(out) / f"{name}.json"
    if not path.exists():
        return "missing", ""
    try:
        record = read_record(path)
    except ContentChanged as err:
        return "changed", str(err)
    except (ValueError, UnicodeDecodeError) as err:   # JSONDecodeError is a ValueError
        return "corrupt", str(err)
    if settings is not None:
        if "settings" not in record:
            return "other", "it holds no settings (made by an older version)"
        diffs = settings_differences(record["settings"], settings)
        if diffs:
            return "other", "; ".join(diffs[:4]) + ("; ..." if len(diffs) > 4 else "")
    return "done", ""


def made_otherwise(out: Path, name: str, why: str) -> ValueError:
    """The refusal of a record made with other settings than the plan asks for (sweep and
    evidence alike): what differs, and how to proceed."""
    return ValueError(f"{Path(out) / (name + '.json')} was made with other settings than this run would use "
                      f"({why}); delete it (and its checkpoint) to run it again with these settings, or use "
                      "another --out")


def finished(out: Path, name: str, settings: dict | None = None) -> bool:
    """A run is finished when its record exists, validates and (given ``settings``) was made with
    exactly these settings."""
    return record_status(out, name, settings)[0] == "done"


def set_aside(path: Path, why: str) -> Path:
    """Move a corrupt record out of the way (``<name>.json.corrupt-<UTC time>``), saying so."""
    import time

    target = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}")
    path.replace(target)
    print(f"sweep: {path} is not a valid record ({why[:200]}); moved to {target.name}, the run is done again",
          file=sys.stderr, flush=True)
    return target


def plan(variants, tasks=TASKS, seeds=(0, 1, 2), pretrain_seed: int = 0):
    """The runs of a sweep in order: each variant's pre-training, then its fine-tunings."""
    runs = []
    for variant in variants:
        runs.append(("pretrain", variant, pretrain_seed, None))
        runs += [("finetune", variant, seed, task) for task in tasks for seed in seeds]
    return runs


def sweep(variants, profile: str, out: Path, tasks=TASKS, seeds=(0, 1, 2), device: str = "auto",
          progress: bool = True, keep_checkpoints: bool = False, steps: dict | None = None) -> list[str]:
    """Run (or resume) a sweep; returns the names of the runs done in this call.

    ``steps`` (``{"pretrain": n, "finetune": m}``) overrides the profile's budgets, for tests.
    A record made with other settings (another profile, other steps, another tokenizer or data)
    is refused, naming the differences; a corrupt one is set aside and its run done again.
    """
    steps = steps or {}
    from .train import finetune, finetune_settings, is_writer, pretrain, pretrain_settings

    out = Path(out)

    def pretrained(variant):
        return out / f"{run_name('pretrain', variant, 0)}.pt"

    def settings_of(kind, variant, seed, task):
        if kind == "pretrain":
            return pretrain_settings(variant, profile, seed, steps=steps.get("pretrain"))
        return finetune_settings(variant, task, pretrained(variant), profile, seed=seed, steps=steps.get("finetune"))

    def execute(kind, variant, seed, task):
        if kind == "pretrain":
            pretrain(variant, profile, seed=seed, out=out, device=device, progress=progress,
                     steps=steps.get("pretrain"))
            return
        checkpoint = pretrained(variant)
        if not checkpoint.exists():    # records are committed, checkpoints are not
            raise ValueError(f"{checkpoint.with_suffix('.json').name} is finished but its checkpoint {checkpoint} "
                             f"is gone, and the fine-tunings of {variant!r} start from it; delete that record "
                             f"to pre-train {variant!r} again, or bring the checkpoint back")
        finetune(variant, task, checkpoint, profile, seed=seed, out=out, device=device, progress=progress,
                 steps=steps.get("finetune"))
        if not keep_checkpoints and is_writer():
            (out / f"{run_name(kind, variant, seed, task)}.pt").unlink(missing_ok=True)

    return run_resumable(out, plan(variants, tasks, seeds), run_name, execute, settings_of=settings_of,
                         profile=profile, desc=f"sweep ({profile})", progress=progress)


def run_resumable(out: Path, runs, name_of, execute, *, settings_of=None, profile: str, desc: str,
                  progress: bool = True) -> list[str]:
    """Run each planned run that is not done in ``out`` yet (``execute(*run)`` writes its record),
    then mark ``out`` complete; returns the names of the runs done in this call.  Shared by the
    sweep, the beyond-the-paper experiments and the evidence protocol.

    A run counts as done when its record validates and, with ``settings_of``, its settings equal
    ``settings_of(*run)`` (computed when the run comes up, so a fine-tuning can name the
    pre-training done just before it).  A corrupt or schema-invalid record is moved aside and
    its run done again; a record made with other settings is refused (``ValueError`` naming it
    and the differences).  ``complete.json`` is written only when every planned run is done.
    """
    from .train import is_writer

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    runs = list(runs)
    with folder_lock(out, desc) if is_writer() else nullcontext():
        for run in runs:                     # corrupt records never stop a sweep; changed ones do
            path = out / f"{name_of(*run)}.json"
            status, why = record_status(out, name_of(*run))
            if status == "changed":
                raise ValueError(why)
            if status == "corrupt" and is_writer():
                set_aside(path, why)
        check_tokenizer(out, profile)
        done = []
        for run in tqdm(runs, desc=desc, disable=not progress):
            name = name_of(*run)
            wanted = settings_of(*run) if settings_of else None
            status, why = record_status(out, name, wanted)
            if status == "other":
                raise made_otherwise(out, name, why)
            if status == "changed":
                raise ValueError(why)
            if status == "corrupt" and is_writer():
                set_aside(out / f"{name}.json", why)
            if status != "done":
                execute(*run)
                done.append(name)
                if settings_of and record_status(out, name, settings_of(*run))[0] != "done" and is_writer():
                    raise ValueError(f"{name} ran but its record does not hold the settings planned for it")
        if is_writer():
            mark_complete(out, [name_of(*run) for run in runs],
                          settings={name_of(*run): settings_of(*run) for run in runs} if settings_of else None)
    return done


KEPT_TOKENIZER = "tokenizer.json"


def check_tokenizer(out: Path, profile: str) -> None:
    """Refuse to resume a directory whose records were made with another tokenizer (a rebuilt
    full data set trains a new one, and WordPiece training is not deterministic).

    The full-data tokenizer a directory's runs use is kept beside them as ``tokenizer.json``, so
    a run that spans sessions (or GPU leases) can put it back, and readers can load the exact
    vocabulary behind the numbers.
    """
    from .config import get_profile
    from .data.tokenizer import load_tokenizer, tokenizer_id

    tokenizer = load_tokenizer(get_profile(profile).tokenizer)
    current = tokenizer_id(tokenizer)
    kept = Path(out) / KEPT_TOKENIZER
    used = set()
    for path in sorted(Path(out).glob("*.json")) if Path(out).is_dir() else []:
        try:
            record = json.loads(path.read_text())
        except (ValueError, UnicodeDecodeError):
            continue                         # set aside and re-run by run_resumable
        if isinstance(record, dict) and "kind" in record and isinstance(record.get("data"), dict):
            used.add(record["data"].get("tokenizer"))
    used -= {None}
    if used and used != {current}:
        fix = (f"copy {kept} over the data directory's tokenizer.json" if kept.exists()
               and tokenizer_id(load_tokenizer(str(kept))) in used else "restore that tokenizer.json")
        raise ValueError(f"{out} holds runs made with tokenizer {', '.join(sorted(used))}, but the {profile!r} "
                         f"profile now loads tokenizer {current}; {fix}, or use a new --out")
    if not kept.exists() and tokenizer_id(load_tokenizer("sample")) != current:
        write_atomic(kept, tokenizer.to_str(pretty=True))


# --- aggregation --------------------------------------------------------------------------------
METRIC = "accuracy"


def load_records(directory: Path) -> list[dict]:
    records = []
    for path in sorted(Path(directory).glob("*.json")):
        try:
            record = read_record(path, validate=False)
            if "kind" in record:
                validate_record(record)
        except ContentChanged:
            raise
        except (ValueError, UnicodeDecodeError) as err:
            raise ValueError(f"{path}: {err}") from None
        if "kind" in record:
            records.append(record)
    return records


def aggregate(records, split: str = "test", metric: str = METRIC) -> dict:
    """``{variant: {task: {"mean", "std", "n", "values"}}}`` over seeds of fine-tuning records."""
    values: dict = {}
    for r in records:
        if r["kind"] != "finetune":
            continue
        values.setdefault(r["variant"], {}).setdefault(r["task"], []).append(r["final"][split][metric])
    return {v: {t: {"mean": statistics.fmean(xs), "std": statistics.stdev(xs) if len(xs) > 1 else 0.0,
                    "n": len(xs), "values": xs} for t, xs in by_task.items()} for v, by_task in values.items()}


def best_per_column(summary: dict) -> dict:
    """``{task: variant}`` with the highest mean on each task."""
    tasks = {t for by_task in summary.values() for t in by_task}
    return {t: max((v for v in summary if t in summary[v]), key=lambda v: summary[v][t]["mean"])
            for t in sorted(tasks)}


def chance_levels(records, split: str = "test") -> dict:
    """``{task: accuracy of the most frequent training label}`` from the fine-tuning records that
    carry it; it is a property of the data, so records of one task must agree."""
    levels: dict = {}
    for r in records:
        if r["kind"] == "finetune" and "chance" in r:
            value = levels.setdefault(r["task"], r["chance"][split])
            if abs(value - r["chance"][split]) > 1e-9:
                raise ValueError(f"records of task {r['task']!r} disagree on its chance level "
                                 f"({value} vs {r['chance'][split]}): they were made on different data")
    return levels


def at_chance(summary: dict, chance: dict) -> list[str]:
    """Tasks on which no variant clearly beats the majority label: by more than a point and by
    more than twice its spread over seeds.  Such a task adds noise, not signal, to comparisons."""
    def beats(s, level):
        return s["mean"] - level > max(0.01, 2 * s["std"])

    return [t for t in sorted(chance) if not any(t in by_task and beats(by_task[t], chance[t])
                                                 for by_task in summary.values())]


def results_table(summary: dict, tasks=None, baseline: str = "absolute", chance: dict | None = None) -> str:
    """Markdown: variants x tasks, mean ± std over seeds (×100), best per column in bold, and the
    average's difference from ``baseline``; with ``chance`` (``chance_levels``) a last row gives
    each task's majority-label accuracy."""
    tasks = list(tasks or sorted({t for by_task in summary.values() for t in by_task}))
    best = best_per_column(summary)
    lines = ["| variant | " + " | ".join(f"`{t}`" for t in tasks) + " | average | vs. " + baseline + " |",
             "|---|" + "---|" * (len(tasks) + 2)]
    averages = {v: statistics.fmean(by_task[t]["mean"] for t in tasks if t in by_task)
                for v, by_task in summary.items()}
    for variant in sorted(summary, key=lambda v: -averages[v]):
        cells = []
        for t in tasks:
            s = summary[variant].get(t)
            if s is None:
                cells.append("–")
                continue
            cell = f"{100 * s['mean']:.1f} ± {100 * s['std']:.1f}"
            cells.append(f"**{cell}**" if best.get(t) == variant else cell)
        delta = averages[variant] - averages[baseline] if baseline in averages else float("nan")
        lines.append(f"| `{variant}` | " + " | ".join(cells) + f" | {100 * averages[variant]:.1f} | "
                     f"{100 * delta:+.1f} |")
    if chance:
        cells = [f"{100 * chance[t]:.1f}" if t in chance else "–" for t in tasks]
        average = statistics.fmean(chance[t] for t in tasks) if all(t in chance for t in tasks) else None
        lines.append("| *majority label* | " + " | ".join(cells) + " | "
                     + (f"{100 * average:.1f}" if average is not None else "–") + " | |")
    return "\n".join(lines)


def compare(summary: dict, a: str, b: str, tasks=None) -> dict:
    """Average over tasks of mean(a) - mean(b), with its standard error from the seed spread.

    ``verdict`` is ``"a better"`` / ``"b better"`` when the difference exceeds twice its
    standard error, ``"inconclusive"`` otherwise.
    """
    tasks = [t for t in (tasks or sorted(summary.get(a, {}))) if t in summary.get(a, {}) and t in summary.get(b, {})]
    if not tasks:
        raise ValueError(f"no task has results for both {a!r} and {b!r}")
    diff = statistics.fmean(summary[a][t]["mean"] - summary[b][t]["mean"] for t in tasks)
    var = sum(summary[a][t]["std"] ** 2 / summary[a][t]["n"] + summary[b][t]["std"] ** 2 / summary[b][t]["n"]
              for t in tasks) / len(tasks) ** 2
    se = var ** 0.5
    verdict = "a better" if diff > 2 * se else ("b better" if diff < -2 * se else "inconclusive")
    return {"diff": diff, "se": se, "verdict": verdict, "tasks": tasks}


def best_available(root: Path | None = None, experiment: str = "sweep") -> Path:
    """The ``<experiment>-<profile>`` directory under ``root`` (default: the committed results,
    :func:`compattn.records.results_dir`) of the largest profile present
    (paper > small > tiny) whose runs are complete (a ``complete.json`` marker next to them)."""
    from .config import PROFILES
    from .records import results_dir

    root = results_dir() if root is None else root
    for profile in reversed(list(PROFILES)):
        candidate = Path(root) / f"{experiment}-{profile}"
        if (candidate / COMPLETE).exists():
            return candidate
    raise ValueError(f"no complete {experiment} results under {root}; run `python -m compattn {experiment} "
                     f"--out {root}/{experiment}-<profile>` to the end")


#: written when every planned run of an experiment directory has its record, so a half-done
#: sweep (one that is resumed across sessions or GPU leases) never replaces a finished one in the book
COMPLETE = "complete.json"


def mark_complete(out: Path, names, settings: dict | None = None) -> None:
    """Write the ``complete.json`` marker once every run in ``names`` has a valid record (made with
    ``settings[name]``, when given)."""
    missing = [n for n in names if not finished(out, n, (settings or {}).get(n))]
    if missing:
        raise ValueError(f"{len(missing)} runs of {out} have no record yet, e.g. {missing[0]}")
    write_atomic(Path(out) / COMPLETE, json.dumps({"runs": sorted(names)}, indent=1) + "\n")


def score_tables(summary: dict, chance: dict | None = None, per_table: int = 3) -> list[str]:
    """``results_table`` without the baseline column, split into tables of ``per_table`` tasks
    so that each fits a page column: mean ± std over seeds (×100), best per column in bold."""
    tasks = sorted({t for by_task in summary.values() for t in by_task})
    best = best_per_column(summary)
    tables = []
    for start in range(0, len(tasks), per_table):
        part = tasks[start:start + per_table]
        lines = ["| variant | " + " | ".join(f"`{t}`" for t in part) + " |", "|---|" + "---|" * len(part)]
        for variant in sorted(summary):
            cells = []
            for t in part:
                s = summary[variant].get(t)
                cell = "–" if s is None else f"{100 * s['mean']:.1f} ± {100 * s['std']:.1f}"
                cells.append(f"**{cell}**" if s is not None and best.get(t) == variant else cell)
            lines.append(f"| `{variant}` | " + " | ".join(cells) + " |")
        if chance:
            lines.append("| *majority label* | " + " | ".join(
                f"{100 * chance[t]:.1f}" if t in chance else "–" for t in part) + " |")
        tables.append("\n".join(lines))
    return tables

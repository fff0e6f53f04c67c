"""Command line: ``python -m compattn data | pretrain | finetune | bench``.

    python -m compattn data                      # fetch the sources, build corpus + tasks
    python -m compattn pretrain --variant composite --profile tiny --out runs/
    python -m compattn finetune --variant composite --task wn_pos --pretrained runs/pretrain-composite-s0.pt
    python -m compattn sweep --profile small --out compattn/results/sweep-small
    python -m compattn beyond --profile small --out compattn/results/beyond-small
    python -m compattn evidence --parallel 2      # protocol v3, resumable (--protocol 2: the earlier one)
    python -m compattn evidence --protocol 4 --device cuda --parallel 8   # v3 at 16,000 pre-training steps
    python -m compattn bench --out compattn/results/bench-cpu.json
    python -m compattn gpu-run --out DIR --budget-s 540     # everything on one GPU (compattn/gpu.py)

Every user error is one line on stderr (``error: ...``) and exit code 2.  SIGTERM and SIGINT stop
a command cleanly (a training after its current step, with a checkpoint; exit 143 and 130): run
the same command again to continue.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import threading
import time
import warnings
from contextlib import nullcontext
from pathlib import Path


class _Parser(argparse.ArgumentParser):
    """argparse with its errors on one line (``error: ...``, exit 2), like every other error."""

    def error(self, message):
        print(f"error: {message} (see `{self.prog} --help`)", file=sys.stderr)
        raise SystemExit(2)


def _number(kind, minimum, strict: bool, what: str):
    """An argparse type: ``kind`` (int or float), finite, above ``minimum`` (``strict``) or at
    least it; ``1.5`` is not an int and ``True`` or ``nan`` are not numbers."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
        if not math.isfinite(value) or value < minimum or (strict and value == minimum):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        return value
    parse.__name__ = what
    return parse


POSITIVE_INT = _number(int, 0, True, "a positive integer")
SEED = _number(int, 0, False, "an integer >= 0")
HOURS = _number(float, 0.0, True, "a positive number of hours (leave --hours out for no deadline)")
SECONDS = _number(float, 0.0, True, "a positive number of seconds")


def _writable_folder(folder: Path, option: str = "--out") -> Path:
    """``folder``, created if needed, once a file can be written in it (else a one-line error)."""
    import tempfile

    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check-"):
            pass
    except OSError as err:
        raise ValueError(f"cannot write to {option} {folder}: {err.strerror or err}") from None
    return folder


def _paper_on_cpu_warning(profile: str, device: str):
    from .config import get_profile, resolve_device

    if profile != "paper" or resolve_device(device) != "cpu":
        return
    from . import Encoder, EncoderConfig
    import torch

    prof = get_profile("paper")
    model = Encoder(EncoderConfig(variant="absolute", vocab_size=8000, **prof.model))
    ids = torch.randint(8000, (prof.pretrain.batch_size, prof.seq_len))
    start = time.perf_counter()
    for _ in range(2):
        model.mlm_logits(model(ids)).sum().backward()
    per_step = (time.perf_counter() - start) / 2
    minutes = per_step * prof.pretrain.steps / 60
    warnings.warn(f"no GPU found: the 'paper' profile is sized for one GPU. Pre-training one variant would "
                  f"take about {minutes:.0f} minutes on this CPU ({per_step:.1f} s per step, measured). "
                  "Use --profile small for a CPU-sized run; continuing with 'paper' as asked.", stacklevel=1)


def _known(names, allowed, what: str) -> list:
    """``names``, or a ValueError naming the first one not in ``allowed``."""
    for name in names:
        if name not in allowed:
            raise ValueError(f"unknown {what} {name!r}; the {what}s are {', '.join(allowed)}")
    return list(names)


def _data_command(args) -> int:
    """``python -m compattn data``: every failure is one line on stderr, never a traceback."""
    from .data import data_dir
    from .data.build import DataUnavailable, build, rebuild_differences, verify
    from .data.cues import cue_problem
    from .protocol import PROTOCOL_V3
    from .data.sample import make_sample, sample_differences

    target = args.dir or data_dir()
    try:
        manifest = build(target)
        print(f"built {target}: corpus {sum(s['words'] for s in manifest['corpus']['sources'].values()):,} "
              "words; tasks " + ", ".join(f"{t} {sum(i['counts'].values()):,}" for t, i in manifest["tasks"].items()))
        dropped = {t: i["contradictory_inputs_dropped"] for t, i in manifest["tasks"].items()
                   if i["contradictory_inputs_dropped"]}
        if dropped:
            print("inputs dropped for contradictory labels: " + ", ".join(f"{t} {n}" for t, n in dropped.items()))
        if args.check:
            problem = cue_problem("word_order", manifest["tasks"]["word_order"],
                                  PROTOCOL_V3["max_cue_advantage"])
            if problem:                   # protocol v3's task requirement: one line, exit 2
                print(f"error: {problem}", file=sys.stderr)
                return 2
            problems = rebuild_differences(target) + verify(target) + sample_differences(target)
            if problems:
                print("data check FAILED:\n  " + "\n  ".join(problems), file=sys.stderr)
                return 1
            print("data check passed: word_order shows no surface cue above the protocol's bound; a second "
                  "build from scratch gave identical bytes (tokenizer included); "
                  "checksums, sizes, held-out hygiene and the masked-LM dev split's overlap bound hold; the "
                  "embedded sample made from this build equals the one that ships")
        if args.make_sample:
            print("sample:", make_sample(target, args.make_sample))
        return 0
    except DataUnavailable as err:
        print(f"error: {err}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("error: interrupted; the previous build (if any) is untouched, run the command again", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001  (one line, never a traceback)
        print(f"error: the data build failed: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}",
              file=sys.stderr)
        return 2 if isinstance(err, ValueError) else 1


def main(argv=None) -> int:
    parser = _Parser(prog="python -m compattn", description=__doc__,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    data = sub.add_parser("data", help="fetch the source packages and build the corpus and the tasks")
    data.add_argument("--dir", type=Path, default=None, help="data directory (default: $COMPATTN_DATA)")
    data.add_argument("--make-sample", type=Path, metavar="OUT", help="also write the embedded sample to OUT")
    data.add_argument("--check", action="store_true",
                      help="build twice, require identical bytes, then verify checksums, sizes and held-out hygiene")
    bench = sub.add_parser("bench", help="time and memory of every variant, as ratios measured side by side")
    bench.add_argument("--quick", action="store_true", help="a small CI-sized run (under a minute)")
    bench.add_argument("--out", type=Path, default=None, help="write the JSON report here")
    bench.add_argument("--device", default="auto")
    bench.add_argument("--lengths", type=POSITIVE_INT, nargs="+", default=None, help="sequence lengths T")
    bench.add_argument("--budget-s", type=SECONDS, default=None,
                       help="seconds for the whole benchmark (as many rounds as fit, at least 15 per length)")
    bench.add_argument("--compile-check", action="store_true",
                       help="only check that torch.compile gives the eager numbers for every variant")
    sw = sub.add_parser("sweep", help="pre-train every variant and fine-tune it on every task (resumable)")
    sw.add_argument("--profile", default=None)
    sw.add_argument("--out", type=Path, required=True)
    sw.add_argument("--variants", nargs="+", default=None, help="default: every registered variant")
    sw.add_argument("--tasks", nargs="+", default=None, help="default: all six tasks")
    sw.add_argument("--seeds", type=SEED, nargs="+", default=[0, 1, 2])
    sw.add_argument("--device", default="auto")
    by = sub.add_parser("beyond", help="length generalisation of masked-LM and the position probes (resumable)")
    by.add_argument("--profile", default=None)
    by.add_argument("--out", type=Path, required=True)
    by.add_argument("--variants", nargs="+", default=None, help="default: compattn.beyond.LENGTH_VARIANTS")
    by.add_argument("--probes", nargs="+", default=None, help="default: all four probes")
    by.add_argument("--seeds", type=SEED, nargs="+", default=[0])
    by.add_argument("--device", default="auto")
    ev = sub.add_parser("evidence", help="the evidence protocol of Part III (resumable; compattn.evidence)")
    from .protocol import PROTOCOLS      # plain dicts: no torch to import

    ev.add_argument("--protocol", type=int, choices=sorted(PROTOCOLS), default=3,
                    help="3 (default): protocol v3, compattn.protocol.PROTOCOL_V3; 4: v3 at 16,000 "
                         "pre-training steps (PROTOCOL_V4, for a GPU); 2: the earlier protocol")
    ev.add_argument("--profile", default="cpu", help="cpu | gpu (default cpu); another profile needs --out")
    ev.add_argument("--out", type=Path, default=None,
                    help="default: compattn/results/evidence-v<N>-<profile> (v2: evidence-<profile>)")
    ev.add_argument("--device", default="auto")
    ev.add_argument("--parallel", type=POSITIVE_INT, default=1, help="trainings at once")
    ev.add_argument("--hours", type=HOURS, default=None,
                    help="start no new run after this many hours (default: no deadline)")
    se = sub.add_parser("search", help="the recipe search before protocol v3 (resumable; compattn.search)")
    se.add_argument("--arm", required=True, choices=("cpu", "gpu", "curve"),
                    help="cpu: every candidate once; gpu: the budget curve; curve: protocol v3's budget curve")
    se.add_argument("--out", type=Path, required=True)
    se.add_argument("--device", default="auto")
    se.add_argument("--parallel", type=POSITIVE_INT, default=1, help="trainings at once")
    se.add_argument("--budget-s", type=SECONDS, default=None, help="start no run after this many seconds")
    se.add_argument("--dry-run", action="store_true", help="the same path at the tiny profile, 20 steps a run")
    for name in ("pretrain", "finetune"):
        p = sub.add_parser(name, help=f"{name} one variant and write a JSON record")
        p.add_argument("--variant", required=True)
        p.add_argument("--profile", default=None, help="tiny | small | paper (default: $COMPATTN_PROFILE or tiny)")
        p.add_argument("--out", type=Path, default=Path("runs"))
        p.add_argument("--seed", type=SEED, default=0)
        p.add_argument("--device", default="auto")
        p.add_argument("--steps", type=POSITIVE_INT, default=None, help="override the profile's number of steps")
        if name == "finetune":
            p.add_argument("--task", required=True)
            p.add_argument("--pretrained", type=Path, default=None, help="a pre-training checkpoint")
            p.add_argument("--regression", action="store_true", help="vader_sent: predict the human score")
    from .gpu import add_commands as add_gpu_commands

    add_gpu_commands(sub)          # gpu-run, gpu-unpack, gpu-pack-data (compattn/gpu.py)
    try:
        args = parser.parse_args(argv)
        _check_gpu_arguments(parser, args)
    except SystemExit as exit_:      # --help, or an argument error already printed on one line
        return exit_.code
    # SIGTERM raises (as Ctrl-C does) wherever it lands, so that temporary files are removed and
    # locks released; inside a training loop both signals stop after the current step instead
    from .train import raise_stopped

    here = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, raise_stopped) if here else None
    try:
        return _command(args)
    finally:
        if here:
            signal.signal(signal.SIGTERM, previous)


def _check_gpu_arguments(parser, args):
    """gpu-run's numbers (its options are declared in compattn/gpu.py)."""
    if args.command != "gpu-run":
        return
    for option, value, check in (("--budget-s", args.budget_s, SECONDS), ("--sessions", args.sessions, POSITIVE_INT)):
        if value is not None:
            try:
                check(str(value))
            except argparse.ArgumentTypeError as err:
                parser.error(f"argument {option}: {err}")


def _command(args) -> int:
    from .files import folder_lock

    try:
        if args.command.startswith("gpu-"):
            from .gpu import dispatch as gpu_dispatch

            if args.command == "gpu-run":
                _writable_folder(args.out)
            return gpu_dispatch(args)
        if args.command == "data":
            return _data_command(args)
        if args.command == "bench":
            from .bench import compile_check, main as bench_main

            if args.compile_check:
                differences = compile_check()
                print("torch.compile matches eager (forward and gradients) for every variant; largest "
                      f"difference {max(differences.values()):.1e} ({max(differences, key=differences.get)})")
                return 0
            if args.out is not None:
                _writable_folder(args.out.parent)
            report = bench_main(quick=args.quick, out=args.out, device=args.device,
                                lengths=tuple(args.lengths) if args.lengths else None, budget_s=args.budget_s)
            print(f"benchmark report valid ({len(report['results'])} candidates)"
                  + (f", written to {args.out}" if args.out else ""))
            return 0
        if args.command == "sweep":
            import compattn
            from .config import current_profile
            from .data import TASKS
            from .registry import entry
            from .sweep import sweep

            variants = args.variants or compattn.variants()
            for v in variants:
                entry(v)
            tasks = _known(args.tasks or list(TASKS), TASKS, "task")
            profile = args.profile or current_profile()
            _paper_on_cpu_warning(profile, args.device)
            done = sweep(variants, profile, _writable_folder(args.out), tasks, tuple(args.seeds), device=args.device)
            print(f"sweep: {len(done)} runs done now; records in {args.out}")
            return 0
        if args.command == "evidence":
            from .evidence import EVIDENCE_DIRS, evidence_dir, run_evidence

            if args.out is None and args.profile not in EVIDENCE_DIRS:
                raise ValueError(f"evidence --profile {args.profile} needs --out DIR: only the profiles "
                                 f"{', '.join(EVIDENCE_DIRS)} have a folder of their own under compattn/results")
            out = _writable_folder(args.out or evidence_dir(args.profile, protocol=args.protocol))
            deadline = time.monotonic() + 3600 * args.hours if args.hours is not None else None
            result = run_evidence(out, args.profile, device=args.device, parallel=args.parallel,
                                  deadline=deadline, protocol=args.protocol)
            print(f"evidence (protocol v{args.protocol}): {len(result['done'])} runs done now, "
                  f"{result['remaining']} of "
                  f"{result['planned']} remaining; complete: {result['complete']}; records in {out}")
            return 0
        if args.command == "search":
            from .search import run_search

            if args.budget_s is not None and not args.budget_s > 0:
                raise ValueError(f"--budget-s must be a positive number of seconds, got {args.budget_s}")
            deadline = time.monotonic() + args.budget_s if args.budget_s else None
            result = run_search(args.out, args.arm, device=args.device, parallel=args.parallel, deadline=deadline,
                                dry_run=args.dry_run)
            print(f"search ({args.arm}): {result['done']} runs done now, {result['remaining']} of "
                  f"{result['planned']} remaining, {len(result['failed'])} failed; "
                  f"{result['hours']:.2f} single-process hours recorded; records in {args.out}")
            return 1 if result["failed"] else 0
        if args.command == "beyond":
            from .beyond import LENGTH_VARIANTS, PROBE_LENGTHS, run_beyond
            from .registry import entry

            variants = args.variants or list(LENGTH_VARIANTS)
            for v in variants:
                entry(v)
            probes = _known(args.probes or list(PROBE_LENGTHS), PROBE_LENGTHS, "probe")
            done = run_beyond(variants, probes, args.profile, out=_writable_folder(args.out), seeds=tuple(args.seeds),
                              device=args.device)
            print(f"beyond: {len(done)} runs done now; records in {args.out}")
            return 0
        import compattn  # noqa: F401  (validates the variant name below)
        from .registry import entry
        from .config import get_profile
        from .train import finetune, is_writer, pretrain

        entry(args.variant)
        get_profile(args.profile)
        _paper_on_cpu_warning(args.profile, args.device)
        # the folder is locked from the first step to the record (rank 0 writes for every process)
        writer = is_writer()
        with folder_lock(_writable_folder(args.out), f"{args.command} {args.variant}") if writer else nullcontext():
            if args.command == "pretrain":
                _, record = pretrain(args.variant, args.profile, seed=args.seed, out=args.out, device=args.device,
                                     steps=args.steps)
            else:
                _, record = finetune(args.variant, args.task, args.pretrained, args.profile, seed=args.seed,
                                     out=args.out, device=args.device, regression=args.regression,
                                     steps=args.steps)
        print(json.dumps({"variant": record["variant"], "final": record["final"],
                          "wall_time_s": round(record["wall_time_s"], 1)}, indent=1))
        return 0
    except ValueError as err:
        print(f"error: {_one_line(err)}", file=sys.stderr)
        return 2
    except OSError as err:           # a folder that cannot be written, a full disk, ...
        print(f"error: {_one_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted; what was written is complete, run the same command again to continue",
              file=sys.stderr)
        return 130
    except Exception as err:  # the data step's DataUnavailable and friends
        if type(err).__name__ == "DataUnavailable":
            print(f"error: {err}", file=sys.stderr)
            return 3
        raise


def _one_line(err: Exception) -> str:
    return " ".join(str(err).split("\n")).strip() or type(err).__name__


if __name__ == "__main__":
    sys.exit(main())

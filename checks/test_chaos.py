"""Chaos: a small evidence run (tiny profile, one variant, one task: nine trainings, two at a time)
through the command line, killed at random moments with SIGTERM or SIGKILL, with a second writer
started on its folder while it runs and one pre-training checkpoint corrupted between two runs.
Whoever meets the damage follows the one-line messages (delete what they name) and runs the
same command again.  At the end every record is correct -- equal to that of an uninterrupted
run -- and everything on the way was either right or refused, never silently wrong.

``CHAOS_SEED=n`` replays one sequence of events."""
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import torch

from compattn import evidence
from compattn.files import LOCK_NAME, holder
from compattn.records import read_record

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
STEPS = {"pretrain": 12, "finetune": 6}
SMALL = dict(variants=["none"], tasks=["word_order"])
CHAOS_S = 40             # rounds start for this long; then the run goes on, undisturbed, to its end

RUNNER = textwrap.dedent(f"""
    import functools, sys
    from compattn import __main__ as cli, evidence
    evidence.run_evidence = functools.partial(evidence.run_evidence, steps={STEPS!r}, progress=False,
                                              variants={SMALL['variants']!r}, tasks={SMALL['tasks']!r})
    sys.exit(cli.main(["evidence", "--protocol", "2", "--profile", "tiny", "--out", sys.argv[1],
                       "--parallel", "2", "--device", "cpu"]))
""")


def start(out):
    return subprocess.Popen([sys.executable, "-c", RUNNER, str(out)], env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for_lock(proc, out, timeout: float = 120) -> bool:
    """True once ``proc`` holds the folder's lock; False if it ended first."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if holder(out).get("pid") == proc.pid:
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.1)
    raise AssertionError("the runner never took its folder's lock")


def error_line(err: str) -> str:
    """The one-line error of a refused run (notes of taken-over locks may come before it)."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error: ") and "Traceback" not in err, err[-3000:]
    assert sum(line.startswith("error: ") for line in lines) == 1, err[-3000:]
    return lines[-1]


def corrupt(path):
    """Change bytes in the middle of the file, where the weights are."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 8] = bytes(b ^ 0x5A for b in data[middle:middle + 8])
    path.write_bytes(bytes(data))


def forget_pretraining(out, message: str):
    """Follow "<pretrain-v-sP>.json is recorded but its checkpoint is gone; delete that record
    (and its fine-tunings)"."""
    name = message.split("error: ", 1)[1].split(".json ", 1)[0]
    variant, p = name.split("-")[1], int(name.rsplit("-s", 1)[1])
    (out / f"{name}.json").unlink(missing_ok=True)
    for f in evidence.PROTOCOL["seeds"]["finetune_per_pretrain"]:
        for task in SMALL["tasks"]:
            (out / f"finetune-{variant}-{task}-s{evidence.finetune_seed(p, f)}.json").unlink(missing_ok=True)


def reference(out):
    """Every planned run made here, one after the other, uninterrupted (with the workers' threads)."""
    threads = torch.get_num_threads()
    try:
        for run in evidence.plan("tiny", **SMALL):
            evidence.execute(run, str(out), "tiny", "cpu", STEPS, False, max(1, (os.cpu_count() or 1) // 2))
    finally:
        torch.set_num_threads(threads)
    return {p.name: read_record(p) for p in out.glob("*-s*.json")}


def wait_for(path_pattern, proc, out, timeout: float = 120):
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None and not list(out.glob(path_pattern)):
        time.sleep(0.1)


def test_chaos_ends_with_every_record_correct_or_refused(tmp_path):
    seed = int(os.environ.get("CHAOS_SEED", random.randrange(10**6)))
    rng = random.Random(seed)
    out = tmp_path / "evidence"
    events, corrupted, refused_corruption = [], None, False

    def fail(why):
        raise AssertionError(f"{why}\nCHAOS_SEED={seed}; events: {events}")

    end = time.monotonic() + CHAOS_S
    for round_ in range(100):
        if round_ and time.monotonic() > end:
            break
        pretrained = sorted(out.glob("pretrain-*.pt"))
        if corrupted is None and pretrained:          # between two runs, as a disk or a person might
            corrupted = rng.choice(pretrained)
            corrupt(corrupted)
            events.append(f"corrupted {corrupted.name}")
        proc = start(out)
        if round_ == 0 and wait_for_lock(proc, out):  # a second writer while the first one runs
            second = start(out)
            _, err = second.communicate(timeout=300)
            events.append(f"second writer: exit {second.returncode}")
            if proc.poll() is None or second.returncode != 0:
                if second.returncode != 2 or f"is being written by another process (pid {proc.pid} on " \
                        not in error_line(err):
                    fail(f"a second writer was not refused: exit {second.returncode}, {err[-2000:]}")
        if corrupted is None or refused_corruption:   # (a corrupted checkpoint is refused at once)
            if corrupted is None:
                wait_for("pretrain-*.pt", proc, out)  # something to corrupt before the next round
            time.sleep(rng.uniform(0.0, 5.0))
            if proc.poll() is None:
                sig = rng.choice([signal.SIGTERM, signal.SIGKILL])
                proc.send_signal(sig)
                events.append(sig.name)
        stdout, err = proc.communicate(timeout=300)
        code = proc.returncode
        events.append(f"exit {code}")
        if code == 0:
            if "complete: True" in stdout:
                break
        elif code in (143, -signal.SIGKILL):
            continue
        elif code == -signal.SIGTERM and "error: " not in err:    # it came while Python was
            continue       # importing torch, before the command set its handler, or after it ended
        elif code in (2, -signal.SIGTERM):    # refused (a SIGTERM may also land after the refusal
            message = error_line(err)         # was printed, once the handler is put back on exit)
            if "was changed after it was written" in message or "is corrupted or not" in message:
                if corrupted is None or f"checkpoint {corrupted} " not in message:
                    fail(f"refused something that was not changed: {message}")
                refused_corruption = True
                corrupted.unlink(missing_ok=True)     # "delete it to start the run over"
            elif "is recorded but its checkpoint is gone" in message:
                forget_pretraining(out, message)
            else:
                fail(f"an unexpected refusal: {message}")
        else:
            fail(f"exit code {code}: {err[-3000:]}")
    if corrupted is None or not refused_corruption:
        fail("no checkpoint was corrupted and refused")
    for _ in range(3):       # undisturbed, to the end; a checkpoint deleted after its refusal in the
        proc = start(out)    # last round leaves its record behind, which this run refuses first
        stdout, err = proc.communicate(timeout=600)
        events.append(f"final exit {proc.returncode}")
        if proc.returncode != 2 or "is recorded but its checkpoint is gone" not in error_line(err):
            break
        forget_pretraining(out, error_line(err))
    if proc.returncode != 0 or "complete: True" not in stdout:
        fail(f"the run did not end: {err[-3000:]}")

    records = {p.name: read_record(p) for p in out.glob("*-s*.json")}       # every hash holds
    want = reference(tmp_path / "uninterrupted")
    if sorted(records) != sorted(want):
        fail(f"records {sorted(records)} instead of {sorted(want)}")
    for name, record in records.items():
        for key in ("settings", "curves", "final"):
            if record[key] != want[name][key]:
                fail(f"{name}: its {key} differ from those of an uninterrupted run")
    assert not (out / LOCK_NAME).exists()
    assert not [p.name for p in out.iterdir() if ".tmp" in p.name], "temporary files outlived their writers"
    assert json.loads((out / evidence.COMPLETE).read_text())["steps"] == STEPS
    print(f"CHAOS_SEED={seed}: {events}")

"""The evidence runner end to end at a tiny size: it stops at its deadline, resumes, runs two
trainings at once, gives the same numbers as one process, and refuses records made for another
plan.  With ``--parallel``, SIGTERM to the parent stops every worker cleanly (every time), and
killing the parent ends its workers."""
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from compattn import evidence
from compattn.files import LOCK_NAME, holder, pid_alive


def test_run_evidence_resumes_meets_deadline_and_runs_two_at_once(tmp_path):
    kw = dict(steps={"pretrain": 3, "finetune": 2}, variants=["none"],
              tasks=["word_order"], progress=False, device="cpu")
    first = evidence.run_evidence(tmp_path, "tiny", deadline=time.monotonic() - 1, **kw)
    assert first["done"] == [] and not first["complete"] and first["remaining"] == first["planned"]
    result = evidence.run_evidence(tmp_path, "tiny", parallel=2, **kw)
    assert result["complete"] and result["remaining"] == 0 and len(result["done"]) == result["planned"]
    assert (tmp_path / evidence.COMPLETE).exists()
    again = evidence.run_evidence(tmp_path, "tiny", parallel=2, **kw)
    assert again["done"] == [] and again["complete"]
    # a run made in two processes equals the same run made here, alone
    ft = json.loads((tmp_path / "finetune-none-word_order-s101.json").read_text())
    assert len(ft["final"]["test"]["items"]["pred"]) == len(ft["final"]["test"]["items"]["gold"])
    alone = tmp_path / "alone"
    evidence.execute(("pretrain", "none", 1, None), str(alone), "tiny", "cpu", kw["steps"], False, 1)
    evidence.execute(("finetune", "none", 101, "word_order"), str(alone), "tiny", "cpu", kw["steps"], False, 1)
    again_ft = json.loads((alone / "finetune-none-word_order-s101.json").read_text())
    assert again_ft["final"]["test"]["items"] == ft["final"]["test"]["items"]
    # a different budget is a different plan: its records are refused, never overwritten
    before = {p.name: p.read_bytes() for p in tmp_path.glob("*.json")}
    with pytest.raises(ValueError, match=r"pretrain-none-s0.json was made with other settings .*"
                                         r"train.steps: 3 -> 4.*delete it"):
        evidence.run_evidence(tmp_path, "tiny", **{**kw, "steps": {"pretrain": 4, "finetune": 2}})
    assert {p.name: p.read_bytes() for p in tmp_path.glob("*.json")} == before


# --- --parallel under signals ---------------------------------------------------------------------
# pre-trainings far longer than the test: a run in flight stops after its current step or not at all
PARENT = """
import sys
from compattn import evidence
evidence.run_evidence(sys.argv[1], "tiny", steps={"pretrain": 5000, "finetune": 10}, variants=["none"],
                      tasks=["word_order"], parallel=2, progress=False, device="cpu")
"""
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}


def start_parent(out):
    return subprocess.Popen([sys.executable, "-c", PARENT, str(out)], env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def workers_of(pid: int) -> list[int]:
    """The spawned worker processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                command = (entry / "cmdline").read_bytes()
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid and b"spawn_main" in command:
                found.append(int(entry.name))
    return found


def checkpoints(out) -> dict:
    return {p.name: p.stat().st_mtime_ns for p in out.glob("pretrain-*.pt")}


def wait_until_training(proc, out, timeout: float = 180) -> list[int]:
    """The two workers, once one of them has written a checkpoint (every 50 steps) since ``proc``
    started: it trains, and the other one trains or is about to."""
    before, end = checkpoints(out), time.monotonic() + timeout
    while time.monotonic() < end:
        now = checkpoints(out)
        if any(now.get(name) != before.get(name) for name in now):
            workers = workers_of(proc.pid)
            assert len(workers) == 2, workers
            return workers
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        time.sleep(0.2)
    raise AssertionError(f"the workers wrote no checkpoint in {timeout} s")


def assert_ended(pids, timeout: float):
    end = time.monotonic() + timeout
    while any(pid_alive(pid) for pid in pids) and time.monotonic() < end:
        time.sleep(0.2)
    assert not any(pid_alive(pid) for pid in pids), f"orphaned workers: {[p for p in pids if pid_alive(p)]}"


def assert_clean(out, lock_released: bool = True):
    """No lock, no temporary file; every checkpoint is whole.  Returns their steps."""
    from compattn.train import load_checkpoint

    assert (out / LOCK_NAME).exists() != lock_released
    assert not [p.name for p in out.iterdir() if ".tmp" in p.name]
    return {path.name: load_checkpoint(path)["step"] for path in out.glob("*.pt")}


def communicate(proc, timeout: float):
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()                                          # (its workers then stop by themselves)
        raise AssertionError(f"still running {timeout} s after the signal") from None


REPEATS = 3
# a stop takes the step under way, a checkpoint and the exit: seconds; a broken stop runs on to the
# end of its runs, which this bound catches without waiting for them (the mutation check)
STOP_S = 30


def test_sigterm_to_the_parent_of_parallel_workers_stops_them_cleanly_every_time(tmp_path):
    rng, steps = random.Random(), {}
    for attempt in range(REPEATS):
        proc = start_parent(tmp_path)
        workers = wait_until_training(proc, tmp_path)
        time.sleep(rng.uniform(0, 2))
        proc.send_signal(signal.SIGTERM)
        out, err = communicate(proc, STOP_S)                 # the step under way, not the whole run
        assert proc.returncode == 143, f"attempt {attempt}: {err[-3000:]}"
        assert "evidence: SIGTERM received; the running trainings stopped with their checkpoints" in out
        assert "SIGTERM received, stopped after step" in out, out            # a worker in a run, gently
        assert "Traceback" not in err, err[-3000:]
        assert_ended(workers, timeout=5)
        now = assert_clean(tmp_path)
        assert all(now[name] >= steps.get(name, 0) for name in now) and now != steps, (steps, now)
        steps = now                                          # each attempt continued the last one


def test_killing_the_parent_ends_its_workers(tmp_path):
    proc = start_parent(tmp_path)
    workers = wait_until_training(proc, tmp_path)
    before = checkpoints(tmp_path)
    time.sleep(random.uniform(0, 2))
    proc.kill()
    out, _ = communicate(proc, STOP_S)                      # the workers hold its stdout until they end
    assert_ended(workers, timeout=5)
    assert "SIGTERM received, stopped after step" in out, out                   # by themselves, gently
    assert any(checkpoints(tmp_path)[name] != before[name] for name in before)
    assert assert_clean(tmp_path, lock_released=False)      # the kernel freed it; the note stays
    assert holder(tmp_path)["pid"] == proc.pid

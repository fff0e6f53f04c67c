"""Runs interrupted on purpose: SIGTERM or SIGINT stops a pre-training after the step under
way with a checkpoint, and a run killed with SIGKILL at random steps, several times, and resumed
ends with exactly the weights of an uninterrupted run."""
import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from compattn.train import load_checkpoint

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}

CHILD = textwrap.dedent("""
    import sys, torch
    torch.set_num_threads(1)
    from compattn import train
    import compattn.data as data
    docs = data.load_corpus("sample")[:3]
    data.load_corpus = lambda source="auto": docs                 # a small corpus: a fast start
    step = train._train_step
    def logged(s, *args):
        step(s, *args)
        print("step", s + 1, flush=True)
    train._train_step = logged
    out, steps, every = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    model, _ = train.pretrain("composite", "tiny", out=out, progress=False, steps=steps, n_layers=1,
                              train_overrides={"checkpoint_every": every, "eval_every": 4})
    torch.save(model.state_dict(), out + "/final.pt")
""")


def start_child(out: Path, steps: int, every: int):
    return subprocess.Popen([sys.executable, "-c", CHILD, str(out), str(steps), str(every)], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_step(proc, at_least: int) -> int:
    for line in proc.stdout:
        if line.startswith("step") and int(line.split()[1]) >= at_least:
            return int(line.split()[1])
    raise AssertionError("the run ended early: " + proc.stderr.read()[-2000:])


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_the_run_after_the_current_step_with_a_checkpoint(tmp_path, sig, code):
    proc = start_child(tmp_path, steps=400, every=1000)           # no checkpoint would be due
    seen = wait_for_step(proc, 2)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err[-2000:]
    saved = load_checkpoint(tmp_path / "pretrain-composite-s0.pt")
    last = max([seen] + [int(line.split()[1]) for line in out.splitlines() if line.startswith("step")])
    assert saved["step"] == last < 400, "at most the step under way is lost"
    assert f"{signal.Signals(sig).name} received, stopped after step {last}" in out


STEPS, EVERY, KILLS = 14, 2, 3


def test_killed_at_random_steps_and_resumed_gives_identical_weights(tmp_path):
    straight, chaos = tmp_path / "straight", tmp_path / "chaos"
    straight.mkdir()
    chaos.mkdir()
    reference = start_child(straight, STEPS, EVERY)              # runs beside the chaos below
    rng = random.Random()
    kills, saved = [], 0
    for _ in range(KILLS):
        target = rng.randint(saved + 1, STEPS - 1)
        proc = start_child(chaos, STEPS, EVERY)
        kills.append(wait_for_step(proc, target))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        assert proc.returncode == -signal.SIGKILL
        ckpt = chaos / "pretrain-composite-s0.pt"
        saved = load_checkpoint(ckpt)["step"] if ckpt.exists() else 0
        if saved >= STEPS - 1:
            break
    assert not (chaos / "final.pt").exists()
    proc = start_child(chaos, STEPS, EVERY)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    _, err = reference.communicate(timeout=300)
    assert reference.returncode == 0, err[-3000:]
    a = torch.load(straight / "final.pt", weights_only=True)
    b = torch.load(chaos / "final.pt", weights_only=True)
    for name in a:
        assert torch.equal(a[name], b[name]), f"{name} differs after kills at steps {kills}"
    record = (chaos / "pretrain-composite-s0.json").read_text()
    assert '"steps": 14' in record

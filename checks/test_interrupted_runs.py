"""Runs interrupted on purpose: SIGTERM or SIGINT stops a pre-training after the step under way
with a checkpoint, SIGKILL at random steps (several times) loses at most the steps since the
last checkpoint, and in every case the resumed run ends with exactly the weights *and the
recorded curves* of an uninterrupted run (the running training-loss average between two
evaluations is part of the checkpoint)."""
import json
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
STEPS, EVAL_EVERY = 14, 4

CHILD = textwrap.dedent("""
    import sys, time, torch
    torch.set_num_threads(1)
    from compattn import train
    import compattn.data as data
    split = data.mlm_split("sample")
    small = {"train": split["train"][:3], "dev": split["dev"][:1]}
    data.mlm_split = lambda source="auto", named=None: small      # a small corpus: a fast start
    step = train._train_step
    out, steps, every, pause = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    def logged(s, *args):
        step(s, *args)
        print("step", s + 1, flush=True)
        time.sleep(pause)                                         # time for a signal to land here
    train._train_step = logged
    model, _ = train.pretrain("composite", "tiny", out=out, progress=False, steps=steps, n_layers=1,
                              train_overrides={"checkpoint_every": every, "eval_every": %d})
    torch.save(model.state_dict(), out + "/final.pt")
""" % EVAL_EVERY)


def start_child(out: Path, every: int, pause: float = 0.0):
    return subprocess.Popen([sys.executable, "-c", CHILD, str(out), str(STEPS), str(every), str(pause)], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_step(proc, at_least: int) -> int:
    for line in proc.stdout:
        if line.startswith("step") and int(line.split()[1]) >= at_least:
            return int(line.split()[1])
    raise AssertionError("the run ended early: " + proc.stderr.read()[-2000:])


def finish(out: Path, every: int):
    """Run (or resume) to the end; the final weights and the curves of the record."""
    proc = start_child(out, every)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    weights = torch.load(out / "final.pt", weights_only=True)
    return weights, json.loads((out / "pretrain-composite-s0.json").read_text())["curves"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    return finish(tmp_path_factory.mktemp("straight"), every=2)


def assert_same_run(got, want, why: str):
    (weights, curves), (weights_0, curves_0) = got, want
    for name in weights_0:
        assert torch.equal(weights[name], weights_0[name]), f"{name} differs {why}"
    assert curves == curves_0, f"the recorded curves differ {why}"


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_after_the_current_step_and_the_resumed_run_is_the_uninterrupted_one(
        tmp_path, sig, code, uninterrupted):
    proc = start_child(tmp_path, every=1000, pause=1.0)         # no checkpoint due before the end
    seen = wait_for_step(proc, 5)                               # step 5: between two evaluations
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err[-2000:]
    saved = load_checkpoint(tmp_path / "pretrain-composite-s0.pt")
    last = max([seen] + [int(line.split()[1]) for line in out.splitlines() if line.startswith("step")])
    assert saved["step"] == last < STEPS, "at most the step under way is lost"
    assert f"{signal.Signals(sig).name} received, stopped after step {last}" in out
    assert last % EVAL_EVERY and len(saved["running"]) == last % EVAL_EVERY, "the losses since the last evaluation"
    assert not [p.name for p in tmp_path.iterdir() if ".tmp" in p.name or p.name.startswith(".compattn")]
    assert_same_run(finish(tmp_path, every=1000), uninterrupted, f"after {signal.Signals(sig).name} at step {last}")


KILLS = 3


def test_killed_at_random_steps_and_resumed_gives_identical_weights_and_curves(tmp_path, uninterrupted):
    rng = random.Random()
    kills, saved = [], 0
    for _ in range(KILLS):
        target = rng.randint(saved + 1, STEPS - 1)
        proc = start_child(tmp_path, every=2)
        kills.append(wait_for_step(proc, target))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        assert proc.returncode == -signal.SIGKILL
        ckpt = tmp_path / "pretrain-composite-s0.pt"
        saved = load_checkpoint(ckpt)["step"] if ckpt.exists() else 0
        if saved >= STEPS - 1:
            break
    assert not (tmp_path / "final.pt").exists()
    assert_same_run(finish(tmp_path, every=2), uninterrupted, f"after kills at steps {kills}")
    record = json.loads((tmp_path / "pretrain-composite-s0.json").read_text())
    assert record["train"]["steps"] == STEPS

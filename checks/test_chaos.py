"""Chaos: a tiny pre-training killed with SIGKILL at random steps, several times, and resumed ends
with exactly the weights of an uninterrupted run."""
import random
import signal
import sys
from pathlib import Path

import torch

from compattn.train import load_checkpoint

# the child process and its step counter are shared with the signal tests of tests/test_runs.py
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_runs import start_child, wait_for_step  # noqa: E402

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

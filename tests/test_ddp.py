"""DDP with two CPU processes (gloo) writing to --out: one record and one checkpoint, written by
rank 0 only, with the world size in them."""
import json
import os
import subprocess
import sys

from compattn.records import validate_record
from compattn.train import load_checkpoint

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}


def test_torchrun_with_two_processes_writes_once_from_rank_0(tmp_path):
    out = tmp_path / "runs"
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                             "--master_port=29533", "-m", "compattn", "pretrain", "--variant", "none",
                             "--profile", "tiny", "--steps", "3", "--out", str(out)],
                            env=ENV, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == ["pretrain-none-s0.json", "pretrain-none-s0.pt"]
    record = json.loads((out / "pretrain-none-s0.json").read_text())
    validate_record(record)
    assert record["world_size"] == 2 and record["settings"]["world_size"] == 2
    assert load_checkpoint(out / "pretrain-none-s0.pt")["settings"]["world_size"] == 2

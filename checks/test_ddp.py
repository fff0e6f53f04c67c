"""DDP with two CPU processes (gloo): the same weights as one process, and one record and one
checkpoint written to --out by rank 0 only, with the world size in them."""
import json
import os
import subprocess
import sys
import textwrap

import torch
from torch.testing import assert_close

from compattn.records import validate_record
from compattn.train import finetune, load_checkpoint

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


def test_ddp_with_two_processes_matches_one_process(tmp_path):
    # each process takes half of every batch; with equal halves the averaged gradients are
    # those of the whole batch (masked-LM losses average per-process means instead)
    script = tmp_path / "ddp.py"
    script.write_text(textwrap.dedent(f"""
        import torch, torch.distributed as dist
        from compattn.train import finetune
        model, _ = finetune("composite", "wn_pos", None, "tiny", steps=3, progress=False, n_layers=1, dropout=0.0)
        if dist.get_rank() == 0:
            torch.save(model.state_dict(), r"{tmp_path / 'ddp.pt'}")
        dist.destroy_process_group()
    """))
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                             "--master_port=29517", str(script)], env=ENV, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    torch.set_num_threads(1)
    single, _ = finetune("composite", "wn_pos", None, "tiny", steps=3, progress=False, n_layers=1, dropout=0.0)
    distributed = torch.load(tmp_path / "ddp.pt", weights_only=True)
    for name, p in single.state_dict().items():
        assert_close(distributed[name], p, rtol=1e-4, atol=1e-5, msg=name)

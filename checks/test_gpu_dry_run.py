"""The one prepared GPU command end to end on the CPU: ``gpu-run --dry-run`` with the optional
packages (jsonschema, tqdm, matplotlib) blocked, as on a bare GPU image."""
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import torch

from compattn import gpu

ROOT = Path(__file__).resolve().parent.parent

SITE = textwrap.dedent('''
    """Test shim: jsonschema, tqdm and matplotlib are not installed (a bare GPU image); a stand-in
    compattn.evidence where the library has none yet."""
    import importlib.abc
    import importlib.util
    import sys

    BLOCKED = {"jsonschema", "tqdm", "matplotlib"}


    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None


    _find_spec = importlib.util.find_spec


    def find_spec(name, package=None):      # torch lists what is installed with find_spec
        return None if name.split(".")[0] in BLOCKED else _find_spec(name, package)


    sys.meta_path.insert(0, Block())
    importlib.util.find_spec = find_spec


    class StandInEvidence(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        def find_spec(self, name, path=None, target=None):
            if name != "compattn.evidence":
                return None
            for finder in sys.meta_path:
                if finder is not self and finder.find_spec(name, path, target) is not None:
                    return None
            return importlib.util.spec_from_loader(name, self)

        def create_module(self, spec):
            return None

        def exec_module(self, module):
            exec(STAND_IN, module.__dict__)


    STAND_IN = """
    import time
    from pathlib import Path

    RUNS = [("pretrain", "absolute"), ("finetune", "absolute"), ("pretrain", "composite")]


    def plan(profile):
        return [{"kind": k, "variant": v} for k, v in RUNS]


    def run_evidence(out, profile, *, device="auto", steps=None, parallel=1, deadline=None, progress=True):
        from compattn.train import finetune, pretrain
        out, done, remaining = Path(out), [], 0
        for kind, v in RUNS:
            name = out / (f"pretrain-{v}-s0.json" if kind == "pretrain" else f"finetune-{v}-wn_pos-s0.json")
            if name.exists():
                continue
            if deadline is not None and time.monotonic() > deadline:
                remaining += 1
                continue
            if kind == "pretrain":
                pretrain(v, profile, out=out, device=device, steps=steps["pretrain"], progress=False)
            else:
                finetune(v, "wn_pos", out / f"pretrain-{v}-s0.pt", profile, out=out, device=device,
                         steps=steps["finetune"], progress=False)
            done.append(name.name)
        return {"done": done, "remaining": remaining, "complete": remaining == 0}
    """
    sys.meta_path.append(StandInEvidence())
''')


def test_dry_run_end_to_end_without_optional_packages(tmp_path):
    """``gpu-run --dry-run``: every phase runs, the files are made, within the budget plus the
    one run allowed to finish."""
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(SITE)
    env = {**os.environ, "PYTHONPATH": f"{tmp_path / 'site'}{os.pathsep}{ROOT}", "PYTHONWARNINGS": "ignore"}
    env.pop("COMPATTN_DATA", None)
    out = tmp_path / "out"
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "compattn", "gpu-run", "--out", str(out), "--dry-run",
                           "--work", str(tmp_path / "work")], env=env, capture_output=True, text=True,
                          timeout=600)
    elapsed = time.monotonic() - start
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((out / "gpu-summary.json").read_text())
    assert summary["dry_run"] and set(summary["phases"]) == {"check", "bench", "throughput", "evidence"}
    for name, phase in summary["phases"].items():
        assert "error" not in phase, (name, phase)
    assert summary["phases"]["check"]["passed"]
    assert set(summary["files"]) >= {"gpu-summary.json", "gpu-run.log", "bench-gpu.json"}
    assert len(list(out.iterdir())) <= gpu.MAX_FILES
    assert (out / "gpu-run.log").read_text().count("packed") == 1
    assert "plan" in summary["phases"]["evidence"]
    assert elapsed < 240, elapsed
    assert torch.cuda.is_available() or summary["device"] == "cpu"

"""The one prepared GPU command (compattn/gpu.py), tested on the CPU: planning, the clock, packing
and unpacking, the shipped data, the targets and the path checks (the whole dry run is
checks/test_gpu_dry_run.py)."""
import json
import tarfile
import time
from pathlib import Path

import pytest

from compattn import gpu

ROOT = Path(__file__).resolve().parent.parent


def test_plan_fits_the_budget_and_gives_every_variant_the_same_steps():
    runs = {"pretrain": 51, "finetune": 51 * 18}
    kw = dict(runs=runs, step_s=0.02, ft_step_s=0.01, overhead_s={"pretrain": 3.0, "finetune": 1.0},
              ratio=0.25, max_steps={"pretrain": 6000, "finetune": 1000})
    plan = gpu.plan_steps(seconds=3000, gain=1.0, **kw)
    assert plan["fits"] and plan["estimated_s"] <= 3000 * 1.05
    assert plan["finetune"] == round(0.25 * plan["pretrain"])
    faster = gpu.plan_steps(seconds=3000, gain=2.0, **kw)
    assert faster["pretrain"] > plan["pretrain"]              # several at once: more steps fit
    capped = gpu.plan_steps(seconds=10**7, gain=1.0, **kw)
    assert (capped["pretrain"], capped["finetune"]) == (6000, 1000)     # never beyond the profile
    hopeless = gpu.plan_steps(seconds=10, gain=1.0, **kw)
    assert hopeless["pretrain"] == 5 and not hopeless["fits"]


@pytest.mark.parametrize("plan", [
    {"pretrain": [1, 2], "finetune": [1, 2, 3]},
    {"pretrain": 2, "finetune": 3},
    [{"kind": "pretrain"}] * 2 + [{"kind": "finetune"}] * 3,
    [("pretrain", "a", 0)] * 2 + [("finetune", "a", "t", 0)] * 3,
])
def test_count_runs_reads_the_plan_in_any_of_its_shapes(plan):
    assert gpu.count_runs(plan) == {"pretrain": 2, "finetune": 3}


def test_clock_gives_each_phase_its_share_and_keeps_the_reserve():
    clock = gpu.Clock(540)
    now = time.monotonic()
    assert clock.work_end() == pytest.approx(clock.end - gpu.RESERVE_S)
    assert clock.phase_end("bench") - now == pytest.approx(gpu.SHARES["bench"] * (540 - gpu.RESERVE_S), abs=0.5)
    assert clock.phase_end("evidence") == clock.work_end()


def _fake_results(work: Path, out: Path):
    ev = work / "evidence-gpu"
    ev.mkdir(parents=True)
    (ev / "plan.json").write_text(json.dumps({"steps": {"pretrain": 9, "finetune": 3}}))
    (ev / "pretrain-absolute-s0.json").write_text(json.dumps({"kind": "pretrain"}))
    (ev / "pretrain-absolute-s0.pt").write_bytes(b"x" * 1000)        # checkpoints stay behind
    out.mkdir()
    for key in ("summary", "bench"):
        (out / gpu.OUT_FILES[key]).write_text(json.dumps({"key": key}))
    (out / gpu.OUT_FILES["log"]).write_text("log\n")


def test_pack_and_unpack_put_the_files_where_the_chapters_look(tmp_path):
    work, out, results = tmp_path / "work", tmp_path / "out", tmp_path / "results"
    _fake_results(work, out)
    files = gpu.pack(work, out, print)
    assert len(files) <= gpu.MAX_FILES and all(f.stat().st_size <= gpu.MAX_FILE_BYTES for f in files)
    assert all(len(f.relative_to(out).parts) <= 3 for f in files)
    with tarfile.open(out / gpu.OUT_FILES["evidence"]) as tar:
        assert sorted(tar.getnames()) == ["evidence-gpu/plan.json", "evidence-gpu/pretrain-absolute-s0.json"]
    results.mkdir()
    placed = gpu.unpack(files, results)
    assert (results / "evidence-gpu" / "plan.json").exists() and (results / "bench-gpu.json").exists()
    assert (results / "gpu-summary.json").exists() and len(placed) == 5


def test_a_later_invocation_continues_the_same_plan(tmp_path):
    work, out = tmp_path / "work", tmp_path / "out"
    _fake_results(work, out)
    gpu.pack(work, out, print)
    again = tmp_path / "work-again"
    gpu._restore_evidence(out, again, print, committed=False)
    plan = json.loads((again / "evidence-gpu" / "plan.json").read_text())
    assert plan["steps"] == {"pretrain": 9, "finetune": 3}
    assert (again / "evidence-gpu" / "pretrain-absolute-s0.json").exists()


def test_unpack_refuses_foreign_files_and_unsafe_members(tmp_path):
    bad = tmp_path / "evidence-gpu.tar.gz"
    (tmp_path / "x.json").write_text("{}")
    with tarfile.open(bad, "w:gz") as tar:
        tar.add(tmp_path / "x.json", arcname="../x.json")
    with pytest.raises(ValueError, match="unexpected member"):
        gpu.unpack([bad], tmp_path / "results")
    with pytest.raises(ValueError, match="not a file gpu-run makes"):
        gpu.unpack([tmp_path / "x.json"], tmp_path / "results")


def test_shipped_data_round_trip(tmp_path):
    data = tmp_path / "data"
    (data / "tasks" / "wn_pos").mkdir(parents=True)
    for name in ("manifest.json", "corpus.txt", "tokenizer.json", "tokenizer.trained-on"):
        (data / name).write_text(name)
    (data / "tasks" / "wn_pos" / "train.jsonl").write_text("{}\n")
    (data / "cache").mkdir()
    (data / "cache" / "big.deb").write_bytes(b"0" * 10000)            # sources are not shipped
    archive = gpu.pack_data(data, tmp_path / "gpu-data")
    back = gpu._unpack_data(archive, tmp_path / "back")
    assert (back / "corpus.txt").read_text() == "corpus.txt"
    assert (back / "tasks" / "wn_pos" / "train.jsonl").exists() and not (back / "cache").exists()
    with pytest.raises(ValueError, match="no built data"):
        gpu.pack_data(tmp_path / "empty", tmp_path / "x")


def test_targets_say_met_missed_or_why_not_measured(tmp_path):
    bench = {"results": {"composite": {"2048": {"ratio": 1.2}},
                         "hf_bert_relative_key_query": {"2048": {"ratio": 9.0}}}}
    (tmp_path / "b.json").write_text(json.dumps(bench))
    summary = {"phases": {"throughput": {"variants": {"absolute": {"mfu": 0.1, "step_s": 1.0},
                                                      "composite": {"mfu": 0.1, "step_s": 1.2}}}}}
    rows = {r["target"].split()[0] + str(i): r for i, r in enumerate(gpu.targets(summary, tmp_path / "b.json"))}
    met = [r["met"] for r in rows.values()]
    assert met == [True, True, False, True]
    empty = gpu.targets({}, tmp_path / "missing.json")
    assert all(r["met"] is None and r["why_not_measured"] for r in empty)


def test_flops_per_token_counts_the_layer_matrices():
    from compattn import Encoder, EncoderConfig

    model = Encoder(EncoderConfig(variant="none", vocab_size=100, d_model=32, n_heads=4, n_layers=2, d_ff=64,
                                  max_len=16))
    dense = 2 * (4 * 32 * 32 + 2 * 32 * 64)          # q, k, v, out and the two feed-forward matrices
    assert gpu.flops_per_token(model, 16) == pytest.approx(6 * dense + 12 * 2 * 16 * 32 + 6 * 0.15 * 32 * 100)


def test_every_path_of_composite_equals_the_plain_path_on_the_cpu():
    result = gpu.check_paths("cpu", time.monotonic() + 120, print, T=20, variants=["composite", "t5"],
                             compile_variants=[])
    assert result["passed"] and result["complete"]
    assert {(r["variant"], r["path"]) for r in result["results"]} >= {("composite", "sdpa"), ("t5", "sdpa")}


def test_a_wrong_path_fails_the_check(monkeypatch):
    real = gpu.build_on_path

    def broken(variant, path, *args, **kw):
        mixer = real(variant, path, *args, **kw)
        if path == "sdpa" and mixer is not None:
            mixer.scale = mixer.scale * 1.5          # a different function
        return mixer

    monkeypatch.setattr(gpu, "build_on_path", broken)
    result = gpu.check_paths("cpu", time.monotonic() + 120, lambda *a: None, T=20, variants=["composite"],
                             compile_variants=[])
    assert not result["passed"]

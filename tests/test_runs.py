"""Runs that know what made them: settings in checkpoints and records, refusals on resume, CUDA
random state, and a training step without graph breaks (signals and kills:
checks/test_interrupted_runs.py)."""
import json

import pytest
import torch

from compattn import train as T
from compattn.records import validate_record

SMALL = dict(n_layers=1)


def test_settings_are_known_before_the_run_and_kept_in_checkpoint_and_record(tmp_path):
    want = T.pretrain_settings("none", "tiny", seed=1, steps=3, **SMALL)
    _, record = T.pretrain("none", "tiny", seed=1, steps=3, out=tmp_path, progress=False, **SMALL)
    assert record["settings"] == want and record["world_size"] == 1
    assert {"profile", "encoder", "train", "tokenizer", "data", "world_size"} <= set(want)
    assert want["train"]["steps"] == 3 and want["encoder"]["n_layers"] == 1
    ckpt = tmp_path / "pretrain-none-s1.pt"
    state = T.load_checkpoint(ckpt)
    assert state["settings"] == want and "cuda_rng" in state and state["wall_time_s"] > 0
    validate_record(json.loads((tmp_path / "pretrain-none-s1.json").read_text()))
    tuned = T.finetune_settings("none", "wn_pos", ckpt, "tiny", seed=2, steps=2, **SMALL)
    assert tuned["pretrained"]["id"] == T.settings_id(want) and tuned["pretrained"]["seed"] == 1
    _, rec = T.finetune("none", "wn_pos", ckpt, "tiny", seed=2, steps=2, progress=False, **SMALL)
    assert rec["settings"] == tuned


def test_resuming_with_other_settings_is_refused_and_a_finished_rerun_stays_consistent(tmp_path):
    _, first = T.pretrain("none", "tiny", steps=3, out=tmp_path, progress=False, **SMALL)
    with pytest.raises(ValueError, match=r"other settings \(train.steps: 3 -> 5\); delete it"):
        T.pretrain("none", "tiny", steps=5, out=tmp_path, progress=False, **SMALL)
    with pytest.raises(ValueError, match="made with d_ff=256, but this run uses d_ff=128"):
        T.pretrain("none", "tiny", steps=3, out=tmp_path, progress=False, n_layers=1, d_ff=128)
    with pytest.raises(ValueError, match=r"other settings \(train.lr: 0.002 -> 0.001\)"):
        T.pretrain("none", "tiny", steps=3, out=tmp_path, progress=False, train_overrides={"lr": 1e-3}, **SMALL)
    _, again = T.pretrain("none", "tiny", steps=3, out=tmp_path, progress=False, **SMALL)   # nothing to do
    assert again["curves"] == first["curves"] and again["train"]["steps"] == 3
    assert again["wall_time_s"] > 0 and again["tokens_per_s"] > 0
    for bad in (0, -1):
        with pytest.raises(ValueError, match="steps must be a positive int"):
            T.pretrain_settings("none", "tiny", steps=bad)


def test_fine_tuning_from_another_tokenizer_is_refused_naming_both(tmp_path):
    T.pretrain("none", "tiny", steps=1, out=tmp_path, progress=False, **SMALL)
    ckpt = tmp_path / "pretrain-none-s0.pt"
    state = T.load_checkpoint(ckpt)
    current = state["settings"]["tokenizer"]
    state["settings"]["tokenizer"] = "f" * 16
    T.save_checkpoint(ckpt, state)
    with pytest.raises(ValueError, match=f"tokenizer {'f' * 16}, but .* tokenizer {current}"):
        T.finetune("none", "wn_pos", ckpt, "tiny", steps=1, progress=False, **SMALL)
    with pytest.raises(ValueError, match="no such file"):
        T.finetune("none", "wn_pos", tmp_path / "missing.pt", "tiny", steps=1, progress=False, **SMALL)


def test_settings_differences_name_every_leaf():
    a = {"profile": "tiny", "train": {"steps": 3, "lr": 1e-3}, "pretrained": None}
    b = {"profile": "small", "train": {"steps": 3, "lr": 2e-3}, "pretrained": {"id": "x"}}
    assert T.settings_differences(a, b) == ["pretrained: None -> {'id': 'x'}", "profile: 'tiny' -> 'small'",
                                            "train.lr: 0.001 -> 0.002"]


def test_a_training_step_has_no_graph_breaks():
    import torch._dynamo

    torch.manual_seed(0)
    model = T.Encoder(T.EncoderConfig(variant="composite", vocab_size=100, d_model=32, n_heads=2, n_layers=1,
                                      d_ff=64, max_len=16))
    ids = torch.randint(5, 100, (2, 16))
    pad = torch.ones(2, 16, dtype=torch.bool)
    pad[1, 12:] = False
    labels = torch.full_like(ids, -100)
    labels[:, 3] = ids[:, 3]
    objective = T.Objective(model, "mlm")
    explained = torch._dynamo.explain(objective)(ids, pad, labels)
    torch._dynamo.reset()
    assert explained.graph_break_count == 0, explained.break_reasons


def test_the_compiled_loss_equals_the_eager_loss(monkeypatch):
    torch.manual_seed(0)
    model = T.Encoder(T.EncoderConfig(variant="absolute", vocab_size=100, d_model=32, n_heads=2, n_layers=1,
                                      d_ff=64, max_len=16)).eval()
    ids = torch.randint(5, 100, (3, 16))
    labels = torch.where(torch.rand(3, 16) < 0.2, ids, torch.full_like(ids, -100))
    objective = T.Objective(model, "mlm")
    eager = objective(ids, ids != 0, labels)
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)     # the fixed-shape formulation
    torch.testing.assert_close(objective(ids, ids != 0, labels), eager)


def test_many_compiled_variants_stay_compiled():
    import torch._dynamo

    T.allow_many_compiled_graphs()
    assert getattr(torch._dynamo.config, "recompile_limit", getattr(torch._dynamo.config, "cache_size_limit")) >= 256

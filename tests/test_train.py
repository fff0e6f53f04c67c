"""The training loop: determinism, killed-and-resumed runs, DDP, checkpoints, records."""
import json
import os
import subprocess
import sys

import pytest
import torch
from torch.testing import assert_close

from compattn.config import TrainConfig, get_profile
from compattn.records import validate_record
from compattn.train import finetune, lr_at, mask_tokens, pretrain

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
# a killed run resuming to the same weights (SIGKILL at random steps, several times) and
# SIGTERM / SIGINT: checks/test_interrupted_runs.py


def test_runs_are_deterministic_on_cpu():
    a, ra = pretrain("lightconv", "tiny", steps=4, progress=False, n_layers=1)
    b, rb = pretrain("lightconv", "tiny", steps=4, progress=False, n_layers=1)
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), name
    assert ra["curves"] == rb["curves"]


def test_checkpoint_from_another_variant_or_a_corrupted_file(tmp_path):
    pretrain("none", "tiny", steps=2, progress=False, out=tmp_path, n_layers=1,
             train_overrides={"eval_every": 1, "checkpoint_every": 1})
    ckpt = tmp_path / "pretrain-none-s0.pt"
    with pytest.raises(ValueError, match="made with variant='none'"):
        finetune("composite", "wn_pos", ckpt, "tiny", steps=1, progress=False)
    broken = tmp_path / "broken.pt"
    broken.write_bytes(ckpt.read_bytes()[:1000])
    with pytest.raises(ValueError, match="corrupted"):
        finetune("none", "wn_pos", broken, "tiny", steps=1, progress=False)
    assert ckpt.exists(), "a failed load must not remove finished work"


def test_finetune_classification_and_regression(tmp_path):
    _, record = finetune("composite", "wn_pos_context", None, "tiny", steps=3, progress=False, out=tmp_path)
    assert set(record["final"]) == {"dev", "test"} and 0 <= record["final"]["test"]["accuracy"] <= 1
    validate_record(json.loads((tmp_path / "finetune-composite-wn_pos_context-s0.json").read_text()))
    _, reg = finetune("none", "vader_sent", None, "tiny", steps=3, progress=False, regression=True)
    assert "pearson" in reg["final"]["test"]
    with pytest.raises(ValueError, match="regression is only defined for vader_sent"):
        finetune("none", "wn_pos", None, "tiny", steps=1, regression=True)


def test_invalid_records_are_rejected():
    _, record = pretrain("none", "tiny", steps=1, progress=False, n_layers=1)
    validate_record(record)
    with pytest.raises(ValueError, match="invalid run record at profile"):
        validate_record({**record, "profile": "huge"})
    with pytest.raises(ValueError, match="'task' is a required property"):
        validate_record({**record, "kind": "finetune"})


def test_masking_follows_bert():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 1000, (64, 128))
    ids[:, 0], ids[:, -1] = 2, 3
    inputs, labels = mask_tokens(ids, g, 1000, 4, [0, 2, 3])
    chosen = labels != -100
    assert 0.13 < chosen.float().mean() < 0.17
    assert not chosen[:, 0].any() and not chosen[:, -1].any()
    as_mask = (inputs == 4) & chosen
    kept = (inputs == ids) & chosen
    assert 0.77 < as_mask.sum() / chosen.sum() < 0.83
    assert 0.07 < kept.sum() / chosen.sum() < 0.14   # 10 % kept, plus random picks of the same id


def test_schedule_and_profiles():
    cfg = TrainConfig(steps=100, batch_size=1, lr=1.0, warmup=0.1)
    assert lr_at(0, cfg) == pytest.approx(0.1) and lr_at(9, cfg) == pytest.approx(1.0)
    assert lr_at(55, cfg) == pytest.approx(0.5) and lr_at(100, cfg) == 0
    with pytest.raises(ValueError, match="unknown profile 'huge'"):
        get_profile("huge")
    with pytest.raises(ValueError, match="warmup"):
        TrainConfig(steps=10, batch_size=1, lr=1.0, warmup=1.5)


def test_cli_reports_bad_input():
    result = subprocess.run([sys.executable, "-m", "compattn", "finetune", "--variant", "none", "--task", "sst2"],
                            capture_output=True, text=True, env=ENV)
    assert result.returncode == 2 and "unknown task 'sst2'" in result.stderr


def test_encode_task_truncates_but_keeps_the_final_separator():
    from compattn.data.tokenizer import load_tokenizer
    from compattn.train import encode_task

    tok = load_tokenizer("sample")
    rows = [{"text": "word " * n, "label": "a"} for n in (3, 6, 7, 20)]   # 5, 8, 9 and 22 pieces
    ids, mask, _ = encode_task(rows, tok, 8, ["a"])
    lengths = mask.sum(1).tolist()
    assert lengths == [5, 8, 8, 8]
    sep = tok.token_to_id("[SEP]")
    assert all(ids[i, n - 1] == sep for i, n in enumerate(lengths))


def test_length_sorted_evaluation_matches_one_padded_pass():
    """The final metrics come from batches sorted by length and cut to their longest row; the
    same model on the whole split padded to its longest example gives the same metrics."""
    from compattn.data import load_task, task_info
    from compattn.data.tokenizer import load_tokenizer
    from compattn.train import encode_task, task_metrics

    for task, regression in (("wn_pos", False), ("vader_sent", True)):
        model, record = finetune("convbert", task, None, "tiny", steps=2, progress=False, regression=regression)
        labels = task_info(task, "sample")["labels"]
        x, m, y = encode_task(load_task(task, "test", "sample"), load_tokenizer("sample"), 128, labels, regression)
        assert m.sum(1).min() < m.shape[1]                 # the split really has padding to cut
        with torch.no_grad():
            expected = task_metrics(model.classify(model.eval()(x, m), m).float(), y, regression, len(labels))
        for name, value in expected.items():
            # a model fine-tuned for two steps rates every sentence almost alike (a spread of
            # about 3e-4), so its correlation magnifies the float rounding of two batchings
            tolerance = 5e-3 if name == "pearson" else 1e-4
            assert record["final"]["test"][name] == pytest.approx(value, abs=tolerance), (task, name)
        if not regression:        # chance: the most frequent training label, counted by hand
            train = [r["label"] for r in load_task(task, "train", "sample")]
            majority = max(set(train), key=train.count)
            test = [r["label"] for r in load_task(task, "test", "sample")]
            assert record["chance"]["test"] == pytest.approx(test.count(majority) / len(test))


def test_composite_generated_kernels_are_averaged_over_real_text():
    from compattn.train import kernels_on_text

    model, record = pretrain("composite", "tiny", steps=2, progress=False)
    on_text = record["kernels"]["on_text"]
    heads, width = model.cfg.n_heads, 2 * model.blocks[0].mixer.max_rel + 1
    assert len(on_text["layers"]) == model.cfg.n_layers and on_text["dev_blocks"] > 0
    for layer in on_text["layers"]:
        for name in ("query", "key"):
            assert len(layer[name]) == heads and all(len(h) == width for h in layer[name])
            assert all(abs(sum(h) - 1) < 1e-5 for h in layer[name])
    # by hand on two sentences, one of them padded: layer 0 sees the normalised embeddings
    ids = torch.tensor([[2, 40, 41, 42, 3], [2, 50, 3, 0, 0]])
    mixer = model.eval().blocks[0].mixer
    with torch.no_grad():
        x = model.embedding_norm(model.token_embedding(ids))
        x = model.blocks[0].norm1(x) if model.blocks[0].pre_norm else x
        q, _ = mixer.queries_keys(x, ids != 0)
        weights = torch.softmax(q @ mixer.query_kernel * mixer.scale, -1)       # (B, H, T, 2k+1)
        real = [weights[0, :, t] for t in range(5)] + [weights[1, :, t] for t in range(3)]
        expected = torch.stack(real).mean(0)
    assert_close(torch.tensor(kernels_on_text(model, ids)[0]["query"]), expected)
    assert kernels_on_text(pretrain("absolute", "tiny", steps=1, progress=False)[0], ids) == []

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


# --- integrity: content hashes, the folder lock, leftovers (compattn.files) ----------------------
def flip_a_weight_byte(path, state, name="token_embedding.weight"):
    """Change one byte inside a tensor's stored data (the zip entry itself stays readable)."""
    data = bytearray(path.read_bytes())
    stored = state["model"][name].contiguous().view(-1).view(torch.uint8).numpy().tobytes()
    at = data.find(stored[:256])
    assert at > 0, "the tensor's bytes are stored as they are"
    data[at + 101] ^= 0x7F
    path.write_bytes(bytes(data))


def test_a_changed_byte_in_the_weights_is_refused_naming_the_checkpoint(tmp_path, capsys):
    from compattn.__main__ import main
    from compattn.files import ContentChanged

    T.pretrain("none", "tiny", steps=2, out=tmp_path, progress=False, **SMALL)
    ckpt = tmp_path / "pretrain-none-s0.pt"
    flip_a_weight_byte(ckpt, T.load_checkpoint(ckpt))
    assert torch.load(ckpt, weights_only=True)["model"]           # torch itself loads it silently
    with pytest.raises(ContentChanged, match=f"checkpoint {ckpt} was changed after it was written"):
        T.load_checkpoint(ckpt)
    with pytest.raises(ContentChanged):                           # nor does a resume take it
        T.pretrain("none", "tiny", steps=2, out=tmp_path, progress=False, **SMALL)
    assert main(["finetune", "--variant", "none", "--task", "wn_pos", "--steps", "1", "--pretrained", str(ckpt),
                 "--out", str(tmp_path / "ft")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"checkpoint {ckpt} was changed after it was written" in err
    state = torch.load(ckpt, weights_only=True)
    del state["content_sha256"]
    torch.save(state, ckpt)
    with pytest.raises(ValueError, match="carries no content hash"):
        T.load_checkpoint(ckpt)


def test_a_changed_record_is_refused_and_one_without_a_hash_is_read_as_it_is(tmp_path):
    from compattn import sweep as S
    from compattn.files import ContentChanged
    from compattn.records import read_record

    kw = dict(tasks=("wn_pos_context",), seeds=(0,), progress=False, steps={"pretrain": 1, "finetune": 1})
    S.sweep(["none"], "tiny", tmp_path, **kw)
    path = tmp_path / "pretrain-none-s0.json"
    text = path.read_text()
    record = read_record(path)
    assert "content_sha256" in json.loads(text) and "content_sha256" not in record
    path.write_text(text.replace('"world_size": 1', '"world_size": 2', 1))
    with pytest.raises(ContentChanged, match=f"record {path} was changed after it was written"):
        read_record(path)
    assert S.record_status(tmp_path, "pretrain-none-s0")[0] == "changed"
    with pytest.raises(ContentChanged, match="pretrain-none-s0.json was changed"):
        S.load_records(tmp_path)
    with pytest.raises(ValueError, match="pretrain-none-s0.json was changed after it was written .*; delete it"):
        S.sweep(["none"], "tiny", tmp_path, **kw)
    old = json.loads(text)
    del old["content_sha256"]                                      # made before records carried one
    path.write_text(json.dumps(old))
    assert read_record(path) == record and S.sweep(["none"], "tiny", tmp_path, **kw) == []


HOLDER = """
import importlib.util, sys, time
spec = importlib.util.spec_from_file_location("files", sys.argv[1])
files = sys.modules["files"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(files)
with files.folder_lock(sys.argv[2], "a test holder"):
    print("held", flush=True)
    time.sleep(120)
"""


def hold_lock(folder):
    """Another process holding ``folder``'s lock (compattn.files alone: a fast start)."""
    import subprocess
    import sys

    import compattn.files

    proc = subprocess.Popen([sys.executable, "-c", HOLDER, compattn.files.__file__, str(folder)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "held\n"
    return proc


def test_a_second_writer_is_refused_naming_the_holder_and_a_killed_holders_lock_is_taken_over(tmp_path,
                                                                                               capsys):
    import signal
    import socket

    from compattn.__main__ import main
    from compattn.files import LOCK_NAME, FolderBusy, holder

    proc = hold_lock(tmp_path)
    try:
        with pytest.raises(FolderBusy, match=f"is being written by another process \\(pid {proc.pid} on "
                                             f"{socket.gethostname()}, `.*`, since 20"):
            T.pretrain("none", "tiny", steps=1, out=tmp_path, progress=False, **SMALL)
        assert main(["pretrain", "--variant", "none", "--steps", "1", "--out", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"pid {proc.pid}" in err
        assert not list(tmp_path.glob("pretrain-*"))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert holder(tmp_path)["pid"] == proc.pid                    # the killed holder's note is still there
    T.pretrain("none", "tiny", steps=1, out=tmp_path, progress=False, **SMALL)
    err = capsys.readouterr().err
    assert f"locked by pid {proc.pid}" in err and "no longer running; lock taken over" in err
    assert not (tmp_path / LOCK_NAME).exists()                   # released at the end


def test_leftover_temporary_files_are_removed_by_the_next_writer(tmp_path, capsys):
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    (tmp_path / f"pretrain-none-s0.pt.tmp{dead}").write_bytes(b"half a checkpoint")
    (tmp_path / f"pretrain-none-s0.json.tmp{dead}").write_text("{")
    (tmp_path / "pretrain-none-s0.pt.tmp1").write_bytes(b"pid 1 is running: not ours to remove")
    T.pretrain("none", "tiny", steps=1, out=tmp_path, progress=False, **SMALL)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pretrain-none-s0.json", "pretrain-none-s0.pt",
                                                          "pretrain-none-s0.pt.tmp1"]
    assert "removed 2 temporary files" in capsys.readouterr().err


def test_a_killed_data_check_leaves_nothing_behind_the_next_one(tmp_path, monkeypatch):
    import subprocess
    import sys

    from compattn.data import build

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    (tmp_path / build.MANIFEST).write_text(json.dumps({"files": {}}))
    (tmp_path / f".check-{dead}" / "tasks").mkdir(parents=True)     # a check killed mid-build
    (tmp_path / ".check-1").mkdir()                                 # pid 1 runs: its check may too
    monkeypatch.setattr(build, "make", lambda cache, work, progress: work.mkdir() or {"files": {}})
    assert build.rebuild_differences(tmp_path, progress=False) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == [".check-1", build.MANIFEST]

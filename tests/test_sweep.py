"""The sweep: run names, resume, aggregation, best-marking, and regenerating a table from JSON."""
import json
from pathlib import Path

import pytest

from compattn import sweep as S
from compattn.files import json_hash
from compattn.train import finetune


def test_run_names():
    assert S.run_name("pretrain", "composite", 0) == "pretrain-composite-s0"
    assert S.run_name("finetune", "t5", 2, "wn_pos") == "finetune-t5-wn_pos-s2"
    with pytest.raises(ValueError):
        S.run_name("finetune", "t5", 2)


def test_plan_orders_pretraining_first():
    runs = S.plan(["a", "b"], tasks=("x", "y"), seeds=(0, 1))
    assert runs[0] == ("pretrain", "a", 0, None) and len(runs) == 2 * (1 + 4)
    assert runs[5] == ("pretrain", "b", 0, None)


def _record(variant, task, seed, accuracy):
    return {"kind": "finetune", "variant": variant, "task": task, "seed": seed, "final": {"test": {"accuracy": accuracy}}}


def test_aggregate_mean_std_and_best():
    records = [_record("absolute", "t1", s, a) for s, a in enumerate((0.5, 0.6, 0.7))]
    records += [_record("composite", "t1", s, a) for s, a in enumerate((0.8, 0.8, 0.8))]
    records += [_record("composite", "t2", 0, 0.4), _record("absolute", "t2", 0, 0.9)]
    summary = S.aggregate(records)
    assert summary["absolute"]["t1"]["mean"] == pytest.approx(0.6)
    assert summary["absolute"]["t1"]["std"] == pytest.approx(0.1)
    assert summary["composite"]["t1"] == {"mean": pytest.approx(0.8), "std": 0.0, "n": 3, "values": [0.8] * 3}
    assert S.best_per_column(summary) == {"t1": "composite", "t2": "absolute"}
    table = S.results_table(summary, baseline="absolute")
    assert "**80.0 ± 0.0**" in table and "**90.0 ± 0.0**" in table and "| `absolute` |" in table


def test_chance_levels_come_from_the_records_and_must_agree():
    records = [_record("a", "t1", 0, 0.8), _record("b", "t1", 0, 0.7), _record("a", "t2", 0, 0.6)]
    records[0]["chance"] = records[1]["chance"] = {"dev": 0.5, "test": 0.55}
    levels = S.chance_levels(records)
    assert levels == {"t1": 0.55}
    table = S.results_table(S.aggregate(records), baseline="a", chance=levels)
    assert table.splitlines()[-1] == "| *majority label* | 55.0 | – | – | |"
    assert S.at_chance(S.aggregate(records), levels) == []              # 80 and 70 beat 55
    assert S.at_chance(S.aggregate(records), {"t1": 0.795}) == ["t1"]   # half a point is not clearly
    records[1]["chance"] = {"dev": 0.5, "test": 0.6}
    with pytest.raises(ValueError, match="disagree on its chance level"):
        S.chance_levels(records)


def test_a_finished_run_is_skipped_and_a_table_regenerates_from_json(tmp_path):
    kw = dict(tasks=("wn_pos_context",), seeds=(0,), progress=False, steps={"pretrain": 2, "finetune": 2})
    S.sweep(["none"], "tiny", tmp_path, **kw)
    name = S.run_name("finetune", "none", 0, "wn_pos_context")
    assert S.finished(tmp_path, name)
    record = json.loads((tmp_path / f"{name}.json").read_text())
    (tmp_path / "broken.json").write_text("{")
    assert not S.finished(tmp_path, "broken")
    (tmp_path / "broken.json").unlink()
    (tmp_path / "pretrain-none-s0.json").unlink()
    done = S.sweep(["none"], "tiny", tmp_path, **kw)
    assert done == ["pretrain-none-s0"]          # the fine-tuning record already existed, with its settings
    assert (tmp_path / S.COMPLETE).exists()      # every planned run has its record
    records = S.load_records(tmp_path)
    table = S.results_table(S.aggregate(records), baseline="none")
    expected = f"{100 * record['final']['test']['accuracy']:.1f} ± 0.0"
    assert expected in table


def test_compare_gives_a_verdict_with_uncertainty():
    records = [_record("a", t, s, 0.8 + 0.01 * s) for t in ("t1", "t2") for s in range(3)]
    records += [_record("b", t, s, 0.6 + 0.01 * s) for t in ("t1", "t2") for s in range(3)]
    records += [_record("c", t, s, 0.6 + 0.2 * s) for t in ("t1", "t2") for s in range(3)]
    summary = S.aggregate(records)
    result = S.compare(summary, "a", "b")
    assert result["diff"] == pytest.approx(0.2) and result["verdict"] == "a better"
    assert S.compare(summary, "b", "a")["verdict"] == "b better"
    assert S.compare(summary, "a", "c")["verdict"] == "inconclusive"
    with pytest.raises(ValueError, match="no task has results"):
        S.compare(summary, "a", "missing")


def test_best_available_prefers_the_largest_complete_profile(tmp_path):
    for name in ("sweep-tiny", "sweep-small", "sweep-paper"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "x.json").write_text("{}")
    for name in ("sweep-tiny", "sweep-small"):
        (tmp_path / name / S.COMPLETE).write_text("{}")
    # sweep-paper has records but no marker: a half-finished sweep is never shown
    assert S.best_available(tmp_path).name == "sweep-small"
    with pytest.raises(ValueError, match="no complete sweep results"):
        S.best_available(tmp_path / "missing")
    with pytest.raises(ValueError, match="no complete beyond results"):
        S.best_available(tmp_path, "beyond")


def test_mark_complete_needs_every_record(tmp_path):
    with pytest.raises(ValueError, match="1 runs of .* have no record"):
        S.mark_complete(tmp_path, ["pretrain-a-s0"])
    assert not (tmp_path / S.COMPLETE).exists()


def test_a_sweep_refuses_to_resume_with_another_tokenizer(tmp_path):
    _, record = finetune("none", "wn_pos_context", None, "tiny", steps=1, progress=False, out=tmp_path)
    assert len(record["data"]["tokenizer"]) == 16
    S.check_tokenizer(tmp_path, "tiny")                 # same tokenizer: fine
    path = tmp_path / "finetune-none-wn_pos_context-s0.json"
    changed = json.loads(path.read_text())
    changed["data"]["tokenizer"] = "0" * 16
    changed["content_sha256"] = json_hash(changed)      # a record really made with another tokenizer
    path.write_text(json.dumps(changed))
    with pytest.raises(ValueError, match="holds runs made with tokenizer 0000000000000000"):
        S.sweep(["none"], "tiny", tmp_path, tasks=("wn_pos_context",), seeds=(0,), progress=False,
                steps={"pretrain": 1, "finetune": 1})


def test_the_full_data_tokenizer_is_kept_beside_the_records_and_named_in_the_error(tmp_path, monkeypatch):
    from compattn.data.tokenizer import load_tokenizer, tokenizer_id, train_tokenizer

    from test_data import fake_build

    data = tmp_path / "data"
    data.mkdir()
    train_tokenizer([["a small corpus of words", "and some other words"]], vocab_size=60).save(
        str(data / "tokenizer.json"))
    fake_build(data)                                                 # "auto" now means the full data
    monkeypatch.setenv("COMPATTN_DATA", str(data))
    out = tmp_path / "runs"
    S.check_tokenizer(out, "small")
    assert tokenizer_id(load_tokenizer(str(out / S.KEPT_TOKENIZER))) == tokenizer_id(load_tokenizer("full"))
    (out / "pretrain-none-s0.json").write_text(json.dumps(
        {"kind": "pretrain", "data": {"tokenizer": tokenizer_id(load_tokenizer("full"))}}))
    monkeypatch.setattr(S, "load_records", lambda directory: [json.loads(p.read_text())
                                                              for p in Path(directory).glob("pretrain-*.json")])
    train_tokenizer([["quite different words here", "nothing alike"]], vocab_size=60).save(
        str(data / "tokenizer.json"))                                # a rebuilt data set
    fake_build(data)
    with pytest.raises(ValueError, match="copy .*tokenizer.json over the data directory's"):
        S.check_tokenizer(out, "small")


def test_fine_tuning_without_the_pretrained_checkpoint_says_what_to_do(tmp_path):
    S.sweep(["none"], "tiny", tmp_path, tasks=("wn_pos_context",), seeds=(0,), progress=False,
            steps={"pretrain": 1, "finetune": 1})
    (tmp_path / "finetune-none-wn_pos_context-s0.json").unlink()
    (tmp_path / "pretrain-none-s0.pt").unlink()           # e.g. a fresh clone: only records are committed
    with pytest.raises(ValueError, match="pretrain-none-s0.json is finished but its checkpoint .* is gone"):
        S.sweep(["none"], "tiny", tmp_path, tasks=("wn_pos_context",), seeds=(0,), progress=False,
                steps={"pretrain": 1, "finetune": 1})


# --- sweeps that heal and know what made their runs ---------------------------------------------
def _settings(steps: int) -> dict:
    return {"kind": "pretrain", "variant": "a", "profile": "tiny", "seed": 0, "encoder": {}, "train": {"steps": steps},
            "tokenizer": "t", "data": "d", "world_size": 1}


def _fake_record(name: str, settings=None) -> dict:
    kind, variant, seed = name.split("-")[0], name.split("-")[1], int(name.rsplit("-s", 1)[1])
    record = {"kind": kind, "variant": variant, "profile": "tiny", "seed": seed, "encoder": {
        "variant": variant, "vocab_size": 1, "d_model": 1, "n_heads": 1, "n_layers": 1},
        "train": {"steps": 1, "batch_size": 1, "lr": 1.0}, "device": "cpu", "torch": "x", "commit": "x",
        "wall_time_s": 1.0, "tokens_per_s": 1.0, "parameters": {"total": 1},
        "curves": {"step": [], "train_loss": [], "dev": []}, "final": {}}
    return {**record, **({"settings": settings} if settings is not None else {})}


def test_corrupt_records_are_set_aside_and_run_again(tmp_path, capsys):
    runs = [("pretrain", "a", 0, None), ("pretrain", "b", 0, None)]
    executed = []

    def execute(*run):
        name = S.run_name(*run)
        executed.append(name)
        (tmp_path / f"{name}.json").write_text(json.dumps(_fake_record(name, _settings(1))))

    settings_of = lambda *run: _settings(1)                                  # noqa: E731
    assert S.run_resumable(tmp_path, runs, S.run_name, execute, settings_of=settings_of, profile="tiny",
                           desc="t", progress=False) == ["pretrain-a-s0", "pretrain-b-s0"]
    (tmp_path / "pretrain-a-s0.json").write_text('{"kind": "pretrain", "variant": "a", "se')   # truncated
    bad = _fake_record("pretrain-b-s0", _settings(1))
    del bad["curves"]                                                        # schema-invalid
    (tmp_path / "pretrain-b-s0.json").write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="pretrain-a-s0.json: "):
        S.load_records(tmp_path)
    executed.clear()
    assert S.run_resumable(tmp_path, runs, S.run_name, execute, settings_of=settings_of, profile="tiny",
                           desc="t", progress=False) == ["pretrain-a-s0", "pretrain-b-s0"]
    err = capsys.readouterr().err
    assert "pretrain-a-s0.json is not a valid record" in err and "pretrain-b-s0.json is not a valid record" in err
    assert len(list(tmp_path.glob("pretrain-a-s0.json.corrupt-*"))) == 1
    assert len(S.load_records(tmp_path)) == 2 and (tmp_path / S.COMPLETE).exists()
    # a record made with other settings is refused by name, and complete.json needs matching settings
    with pytest.raises(ValueError, match=r"pretrain-a-s0.json was made with other settings .*train.steps: 1 -> 2"):
        S.run_resumable(tmp_path, runs, S.run_name, execute, settings_of=lambda *run: _settings(2),
                        profile="tiny", desc="t", progress=False)
    with pytest.raises(ValueError, match="2 runs of .* have no record"):
        S.mark_complete(tmp_path, ["pretrain-a-s0", "pretrain-b-s0"],
                        settings={"pretrain-a-s0": _settings(2), "pretrain-b-s0": _settings(2)})


def test_a_sweep_with_another_profile_or_steps_refuses_instead_of_calling_itself_done(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPATTN_DATA", str(tmp_path / "no-data"))          # "small" runs on the sample
    kw = dict(tasks=("wn_pos_context",), seeds=(0,), progress=False)
    done = S.sweep(["none"], "tiny", tmp_path, steps={"pretrain": 1, "finetune": 1}, **kw)
    assert done == ["pretrain-none-s0", "finetune-none-wn_pos_context-s0"]
    marker = (tmp_path / S.COMPLETE).read_text()
    assert S.sweep(["none"], "tiny", tmp_path, steps={"pretrain": 1, "finetune": 1}, **kw) == []
    with pytest.raises(ValueError, match=r"pretrain-none-s0.json was made with other settings .*profile: 'tiny' "
                                         r"-> 'small'"):
        S.sweep(["none"], "small", tmp_path, steps={"pretrain": 1, "finetune": 1}, **kw)
    with pytest.raises(ValueError, match=r"other settings .*train.steps: 1 -> 2"):
        S.sweep(["none"], "tiny", tmp_path, steps={"pretrain": 2, "finetune": 1}, **kw)
    assert (tmp_path / S.COMPLETE).read_text() == marker

"""Every user error on the command line is one line on stderr and exit code 2."""
import pytest
import torch

from compattn.__main__ import main


def one_line_error(capsys, argv, code=2) -> str:
    assert main(argv) == code
    err = capsys.readouterr().err.rsplit("\r", 1)[-1]     # after a progress bar (cleared with "\r")
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda(capsys, tmp_path):
    assert "no CUDA device" in one_line_error(capsys, ["pretrain", "--variant", "none", "--device", "cuda",
                                                       "--out", str(tmp_path)])


ARGUMENT_ERRORS = [
    (["pretrain", "--variant", "none", "--steps", "0"], "argument --steps: must be a positive integer"),
    (["pretrain", "--variant", "none", "--steps", "-5"], "argument --steps: must be a positive integer"),
    (["pretrain", "--variant", "none", "--steps", "True"], "argument --steps: must be a positive integer"),
    (["pretrain", "--variant", "none", "--steps", "1.5"], "argument --steps: must be a positive integer"),
    (["pretrain", "--variant", "none", "--seed", "-1"], "argument --seed: must be an integer >= 0"),
    (["finetune", "--variant", "none", "--task", "wn_pos", "--seed", "False"], "argument --seed"),
    (["sweep", "--seeds", "0", "-2"], "argument --seeds: must be an integer >= 0"),
    (["evidence", "--hours", "0"], "argument --hours: must be a positive number of hours (leave --hours out "
                                   "for no deadline)"),
    (["evidence", "--hours", "-1"], "argument --hours: must be a positive number of hours"),
    (["evidence", "--hours", "nan"], "argument --hours: must be a positive number of hours"),
    (["evidence", "--hours", "inf"], "argument --hours: must be a positive number of hours"),
    (["evidence", "--parallel", "0"], "argument --parallel: must be a positive integer"),
    (["evidence", "--parallel", "-2"], "argument --parallel: must be a positive integer"),
    (["evidence", "--parallel", "True"], "argument --parallel: must be a positive integer"),
    (["bench", "--lengths", "-8"], "argument --lengths: must be a positive integer, got '-8'"),
    (["bench", "--lengths", "64", "0"], "argument --lengths: must be a positive integer"),
    (["bench", "--budget-s", "-1"], "argument --budget-s: must be a positive number of seconds"),
    (["bench", "--budget-s", "0"], "argument --budget-s: must be a positive number of seconds"),
    (["bench", "--quick=yes"], "ignored explicit argument 'yes'"),
    (["gpu-run", "--budget-s", "0"], "argument --budget-s: must be a positive number of seconds"),
    (["gpu-run", "--budget-s", "-540"], "argument --budget-s: must be a positive number of seconds"),
    (["gpu-run", "--sessions", "0"], "argument --sessions: must be a positive integer"),
    (["pretrain"], "the following arguments are required: --variant"),
]


@pytest.mark.parametrize("argv,message", ARGUMENT_ERRORS, ids=[" ".join(a) for a, _ in ARGUMENT_ERRORS])
def test_argument_errors_are_one_line_and_write_nothing(capsys, tmp_path, argv, message):
    out = tmp_path / "out"
    needs_out = argv[0] in ("pretrain", "finetune", "sweep", "evidence", "gpu-run")
    err = one_line_error(capsys, argv + (["--out", str(out)] if needs_out else []))
    assert message in err
    assert not out.exists()


def test_evidence_needs_out_for_other_profiles_and_an_unwritable_out_is_named(capsys, tmp_path):
    assert "evidence --profile tiny needs --out DIR" in one_line_error(capsys, ["evidence", "--profile", "tiny"])
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    for argv in (["evidence", "--profile", "tiny"], ["pretrain", "--variant", "none"], ["sweep"]):
        err = one_line_error(capsys, argv + ["--out", str(blocker / "out")])
        assert f"cannot write to --out {blocker / 'out'}: Not a directory" in err
    err = one_line_error(capsys, ["bench", "--quick", "--out", str(blocker / "bench.json")])
    assert f"cannot write to --out {blocker}" in err


def test_a_full_disk_at_a_checkpoint_is_one_line_naming_the_space_and_leaves_no_temporary_file(
        capsys, tmp_path, monkeypatch):
    import errno
    import os

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)             # the bytes went out; the disk refuses them
    err = one_line_error(capsys, ["pretrain", "--variant", "none", "--steps", "1", "--out", str(tmp_path)])
    assert "no space left on the device of" in err and "to write pretrain-none-s0.pt: it needs " in err
    assert " MiB and " in err and " MiB are free; free some space and run the same command again" in err
    assert not list(tmp_path.iterdir()), "no temporary file, no lock left behind"


def test_missing_pretrained_file_unknown_names_and_profile_mismatch(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("COMPATTN_DATA", str(tmp_path / "no-data"))     # "small" runs on the sample here
    assert "no such file" in one_line_error(capsys, ["finetune", "--variant", "none", "--task", "wn_pos",
                                                      "--pretrained", str(tmp_path / "x.pt"), "--out", str(tmp_path)])
    assert "unknown variant 'nope'" in one_line_error(capsys, ["pretrain", "--variant", "nope"])
    assert "unknown task 'nope'" in one_line_error(capsys, ["finetune", "--variant", "none", "--task", "nope",
                                                            "--out", str(tmp_path)])
    assert "unknown profile 'huge'" in one_line_error(capsys, ["pretrain", "--variant", "none", "--profile",
                                                                "huge"])
    assert "unknown task" in one_line_error(capsys, ["sweep", "--out", str(tmp_path), "--tasks", "nope"])
    main(["pretrain", "--variant", "none", "--steps", "1", "--out", str(tmp_path)])
    capsys.readouterr()
    assert "d_model" in one_line_error(capsys, ["finetune", "--variant", "none", "--task", "wn_pos", "--profile",
                                                "small", "--pretrained", str(tmp_path / "pretrain-none-s0.pt"),
                                                "--out", str(tmp_path)])

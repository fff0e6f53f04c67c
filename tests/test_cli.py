"""Every user error on the command line is one line on stderr and exit code 2."""
import pytest
import torch

from compattn.__main__ import main


def one_line_error(capsys, argv, code=2) -> str:
    assert main(argv) == code
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda(capsys, tmp_path):
    assert "no CUDA device" in one_line_error(capsys, ["pretrain", "--variant", "none", "--device", "cuda",
                                                       "--out", str(tmp_path)])


@pytest.mark.parametrize("steps", ["0", "-5"])
def test_steps_must_be_positive(capsys, tmp_path, steps):
    err = one_line_error(capsys, ["pretrain", "--variant", "none", "--steps", steps, "--out", str(tmp_path)])
    assert "steps must be a positive int" in err
    assert not list(tmp_path.iterdir())


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

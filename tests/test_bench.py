"""The benchmark's statistics, memory accounting and report schema; fast paths vs references."""
import json
import random

import pytest
import torch
from torch.testing import assert_close

import compattn
from compattn.records import results_dir
from compattn import bench
from compattn.bench import bootstrap_interval, median_interval, saved_bytes, scaling_exponent, validate_bench

from test_mixers import inputs, make


def test_bootstrap_interval_on_synthetic_timings():
    rng = random.Random(0)
    tight = [2.0 + rng.gauss(0, 0.01) for _ in range(30)]
    noisy = [2.0 + rng.gauss(0, 0.5) for _ in range(30)]
    m1, lo1, hi1 = bootstrap_interval(tight)
    m2, lo2, hi2 = bootstrap_interval(noisy)
    assert lo1 <= m1 <= hi1 and lo2 <= m2 <= hi2
    assert abs(m1 - 2.0) < 0.02 and hi1 - lo1 < hi2 - lo2
    assert bootstrap_interval([3.0] * 7) == (3.0, 3.0, 3.0)


def test_median_interval_covers_the_true_median_at_the_nominal_rate():
    """Order-statistic interval: exact binomial coverage >= 95 % for any continuous distribution,
    checked over many replications of 15 rounds (the benchmark's minimum)."""
    rng = random.Random(1)
    hits = 0
    for _ in range(1000):
        values = [rng.lognormvariate(0.0, 0.3) for _ in range(15)]     # true median 1
        m, lo, hi = median_interval(values)
        assert lo <= m <= hi
        hits += lo <= 1.0 <= hi
    assert 0.94 <= hits / 1000 <= 0.995
    assert median_interval([3.0] * 7) == (3.0, 3.0, 3.0)
    assert median_interval([1.0, 2.0, 3.0]) == (2.0, 1.0, 3.0)      # too few rounds: the whole range


def test_control_and_exponents_need_three_lengths():
    report = _report()
    report["results"]["absolute"] = {"128": {**report["results"]["none"]["128"], "ratio": 1.05,
                                             "ratio_ci95": [0.97, 1.12]}, "exponents": {}}
    assert bench.control(report) == {"128": {"ratio": 1.05, "ratio_ci95": [0.97, 1.12], "contains_1": True}}
    assert scaling_exponent([512, 2048], [1.0, 16.0], min_points=3) is None
    assert bench.exponent_lengths([128, 512, 2048]) == [128, 512, 2048]
    assert bench.exponent_lengths([128, 512, 1024, 2048]) == [512, 1024, 2048]


def test_a_failing_candidate_is_recorded_and_the_rest_go_on(monkeypatch):
    real = bench.make_candidate

    def make(name, *args):
        if name == "hf_t5":
            raise TypeError("an API this transformers version does not have")
        return real(name, *args)

    monkeypatch.setattr(bench, "make_candidate", make)
    report = bench.run_benchmark(["absolute", "hf_t5"], (8, 16, 32), batch=1, n_heads=2, d_head=4, rounds=6,
                                 progress=lambda s: None)
    validate_bench(report)
    assert "TypeError" in report["skipped"]["hf_t5"]["8"] and "hf_t5" not in report["results"]
    assert report["results"]["absolute"]["32"]["rounds"] == 6
    assert len(report["results"]["absolute"]["32"]["times_ms"]) == 6
    assert set(report["control"]) == {"8", "16", "32"}
    assert report["results"]["none"]["exponents"]["lengths"] == [8, 16, 32]


def test_scaling_exponents():
    sizes = [128, 512, 2048]
    assert scaling_exponent(sizes, [s ** 2 * 1e-6 for s in sizes]) == pytest.approx(2.0)
    assert scaling_exponent(sizes, [3 * s for s in sizes]) == pytest.approx(1.0)
    assert scaling_exponent([512], [1.0]) is None


def test_saved_bytes_counts_what_autograd_keeps():
    module = torch.nn.Module()
    x = torch.randn(1000, requires_grad=True)
    # exp saves its output (4000 bytes); the input itself is excluded
    assert saved_bytes(lambda t: t.exp(), module, x, torch.ones(1000)) == 4000
    assert saved_bytes(lambda t: t * 2.0, module, x, torch.ones(1000)) == 0


def _report(ratio=1.2, ci=(1.1, 1.3)):
    entry = {"median_ms": 1.0, "ratio": ratio, "ratio_ci95": list(ci), "rounds": 5, "saved_bytes": 10,
             "peak_bytes": None}
    return {"provenance": {"device": "cpu", "torch": "2", "threads": 2, "commit": "x"},
            "config": {"batch": 8, "n_heads": 4, "d_head": 64, "k": 16, "lengths": [128], "baseline": "none"},
            "results": {"none": {"128": entry, "exponents": {}}}}


def test_report_validation():
    validate_bench(_report())
    with pytest.raises(ValueError, match="median outside its interval"):
        validate_bench(_report(ratio=2.0))
    broken = _report()
    del broken["results"]["none"]["128"]["saved_bytes"]
    with pytest.raises(ValueError, match="lacks one of"):
        validate_bench(broken)
    with pytest.raises(ValueError, match="invalid benchmark report"):
        validate_bench({"config": {}})
    skipped = _report()
    del skipped["results"]["none"]["128"]
    skipped["skipped"] = {"none": {"128": "not reached within the time budget"}}
    validate_bench(skipped)


def test_committed_cpu_report_is_valid():
    path = results_dir() / "bench-cpu.json"
    validate_bench(json.loads(path.read_text()))


@pytest.mark.parametrize("name", [n for n in compattn.variants() if n != "conv_output"])
def test_fast_forward_equals_the_mixing_matrix_reference_with_gradients(name):
    """Each forward (fused SDPA, grouped conv1d, shifted multiply-adds) vs softmax/band @ values."""
    mixer = make(name, dtype=torch.float64, max_rel=3) if "max_rel" in compattn.options(name) \
        else make(name, dtype=torch.float64)
    x = inputs(dtype=torch.float64).requires_grad_()
    grad = torch.randn_like(x)
    mask = torch.ones(2, 11, dtype=torch.bool)
    mask[1, 7:] = False

    def grads(fn):
        mixer.zero_grad()
        x.grad = None
        (fn() * grad).sum().backward()
        return [x.grad.clone()] + [p.grad.clone() for p in mixer.parameters()]

    fast = grads(lambda: mixer(x, mask))
    reference = grads(lambda: mixer.project_out(mixer.mixing_matrix(x, mask) @ mixer.values(x, mask)))
    for a, b in zip(fast, reference):
        assert_close(a, b)

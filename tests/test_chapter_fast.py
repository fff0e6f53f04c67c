"""The committed CPU benchmark that chapter 8 (book/11_fast.ipynb) reads says what the
chapter says it does.  (These were the chapter's "Final checks"; they belong here.)

* every entry is a positive time ratio with a non-negative memory figure;
* fused attention (``none``) keeps memory linear in the length: exponent below 1.3;
* Hugging Face's ``relative_key_query`` builds the (T, T, d) tensor: exponent above 1.7;
* at the longest length ``composite`` is faster than that route;
* the identical-layer control holds (``absolute`` against ``none`` contains 1).

A planted report (the (T, T, d) route made linear, composite made slower) must fail.
"""
import copy
import json

import pytest

from compattn import bench
from compattn.records import results_dir

HF = "hf_bert_relative_key_query"


def exponent(report, name, key):
    lengths = bench.exponent_lengths(report["config"]["lengths"])
    have = [T for T in lengths if report["results"].get(name, {}).get(str(T))]
    return bench.scaling_exponent(have, [report["results"][name][str(T)][key] for T in have],
                                  min_points=3)


def problems(report) -> list[str]:
    found = []
    lengths = report["config"]["lengths"]
    for name, by_T in report["results"].items():
        for T in lengths:
            entry = by_T.get(str(T))
            if entry is not None and (entry["ratio"] <= 0 or (entry.get("saved_bytes") or 0) < 0):
                found.append(f"{name} at T={T}: ratio {entry['ratio']}, saved {entry.get('saved_bytes')}")
    if not exponent(report, "none", "saved_bytes") < 1.3:
        found.append(f"fused attention's memory exponent {exponent(report, 'none', 'saved_bytes'):.2f} >= 1.3")
    if not exponent(report, HF, "saved_bytes") > 1.7:
        found.append(f"the (T, T, d) route's memory exponent {exponent(report, HF, 'saved_bytes'):.2f} <= 1.7")
    longest = str(lengths[-1])
    if not report["results"][HF][longest]["ratio"] > report["results"]["composite"][longest]["ratio"]:
        found.append(f"composite is not faster than {HF} at T={longest}")
    control = bench.control(report)
    if not control or not all(c["contains_1"] for c in control.values()):
        found.append(f"the identical-layer control fails: {control}")
    return found


@pytest.fixture(scope="module")
def report():
    report = json.loads((results_dir() / "bench-cpu.json").read_text())
    bench.validate_bench(report)
    return report


def test_the_committed_report_says_what_chapter_8_says(report):
    assert problems(report) == []


def test_a_planted_report_fails(report):
    planted = copy.deepcopy(report)
    for T in planted["config"]["lengths"]:
        planted["results"][HF][str(T)]["saved_bytes"] = T * 1000      # linear, not quadratic
    longest = str(planted["config"]["lengths"][-1])
    planted["results"]["composite"][longest]["ratio"] = 2 * planted["results"][HF][longest]["ratio"]
    found = " ".join(problems(planted))
    assert "memory exponent" in found and "not faster" in found

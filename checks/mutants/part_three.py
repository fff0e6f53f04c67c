"""Planted errors in the experiments' rules (Part III): the protocol, the statistics, the data."""
from mutation import Mutant

MUTANTS = [
    Mutant("plateau threshold above the unigram loss", "compattn/protocol.py",
           'threshold = unigram_loss - rule["margin_nats"]', 'threshold = unigram_loss + rule["margin_nats"]',
           ("tests/test_evidence.py::test_plateau_exit",)),
    Mutant("the seed interval uses the normal quantile, not Student's t", "compattn/stats.py",
           "half = t_quantile(level, n - 1) * float(per_seed.std(ddof=1)) / np.sqrt(n)",
           "half = 1.959964 * float(per_seed.std(ddof=1)) / np.sqrt(n)",
           ("tests/test_stats.py::test_the_seed_interval_holds_its_level_with_no_true_difference",)),
    Mutant("order gap measured on the text as written", "compattn/train.py",
           'shuffled_loss, _ = _mlm_sums(net, batches, "shuffled", "shuffled_labels")',
           'shuffled_loss, _ = _mlm_sums(net, batches, "inputs", "labels")',
           ("checks/test_order_diagnostic_planted.py",)),
    Mutant("the masked-LM dev split keeps the held-out novel in training too", "compattn/data/__init__.py",
           'return {"train": [doc for name, doc in named if name not in MLM_DEV_DOCUMENTS],',
           'return {"train": [doc for name, doc in named],',
           ("tests/test_data.py::test_the_mlm_dev_split_holds_out_whole_documents_and_no_bible",)),
    Mutant("a sample file is read without its manifest check", "compattn/data/__init__.py",
           '    path = folder / (f"{split}.jsonl.gz" if source == "sample" else f"{split}.jsonl")\n'
           '    check_file(path)',
           '    path = folder / (f"{split}.jsonl.gz" if source == "sample" else f"{split}.jsonl")',
           ("tests/test_data.py::test_a_damaged_sample_file_is_refused_by_name",)),
    Mutant("the search's pass rule ignores the order gap", "compattn/search.py",
           'passes = a["order_gap"] >= SEARCH["pass"]["min_order_gap_nats"] and a["loss"] < n["loss"]',
           'passes = a["loss"] < n["loss"]',
           ("tests/test_search.py::test_the_pass_rule_needs_both_an_order_gap_and_a_lower_loss",)),
]

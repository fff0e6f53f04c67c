"""Planted errors in the experiments' rules (Part III): the protocol, the statistics, the data."""
from mutation import Mutant

MUTANTS = [
    Mutant("plateau threshold above the unigram loss", "compattn/protocol.py",
           'threshold = unigram_loss - rule["margin_nats"]', 'threshold = unigram_loss + rule["margin_nats"]',
           ("tests/test_evidence.py::test_plateau_exit",)),
]

"""The results shipped in the package (compattn/results/): every complete sweep is complete,
each record is valid against the schema, and one profile and one tokenizer made them all."""
import json

import pytest

from compattn import sweep as S
from compattn.records import results_dir

RESULTS = results_dir()


@pytest.mark.parametrize("directory", sorted(p.name for p in RESULTS.iterdir() if (p / S.COMPLETE).exists()))
def test_committed_results_are_complete_valid_and_made_with_one_tokenizer(directory):
    out = RESULTS / directory
    runs = json.loads((out / S.COMPLETE).read_text())["runs"]
    assert runs and all(S.finished(out, name) for name in runs), directory
    records = S.load_records(out)                        # validates every record against the schema
    assert len({r.get("data", {}).get("tokenizer") for r in records}) == 1, directory
    assert len({r["profile"] for r in records}) == 1, directory
    if (out / S.KEPT_TOKENIZER).exists():                 # the vocabulary behind the numbers
        from compattn.data.tokenizer import load_tokenizer, tokenizer_id
        assert {r["data"]["tokenizer"] for r in records} == {tokenizer_id(load_tokenizer(str(out / S.KEPT_TOKENIZER)))}

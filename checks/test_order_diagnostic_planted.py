"""The order diagnostic on a planted order-using model (about half a minute on two cores, so
it lives here; the cheap checks of the diagnostic are in tests/test_order_diagnostic.py)."""
import sys
from pathlib import Path

import torch

from compattn.encoder import Encoder, EncoderConfig
from compattn.train import mask_tokens, mlm_dev_metrics, mlm_eval_set

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_order_diagnostic import MASK, SPECIAL, VOCAB, blocks  # noqa: E402


def test_a_model_that_reads_neighbours_has_a_large_order_gap():
    """A planted order-using model: trained on blocks where every word is written twice, it
    predicts a masked word from the word beside it; shuffled, that neighbour is gone."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(3)
    model = Encoder(EncoderConfig(variant="t5", vocab_size=VOCAB, d_model=32, n_heads=2, n_layers=1,
                                  d_ff=64, max_len=18, dropout=0.0))
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(200):
        ids = blocks(32, 18, g, pairs=True)
        inputs, labels = mask_tokens(ids, g, VOCAB, MASK, SPECIAL)
        target = labels != -100
        loss = torch.nn.functional.cross_entropy(model.mlm_logits(model(inputs, ids != 0)[target]), labels[target])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.eval()
    batches = mlm_eval_set(blocks(64, 18, g, pairs=True), 2, 32, VOCAB, MASK, SPECIAL)
    with torch.no_grad():
        metrics = mlm_dev_metrics(model, batches)
    # a bag of words knows only that the target is one of the block's eight words: at best
    # log 8 = 2.08 nats
    assert metrics["loss"] < 2.08
    assert metrics["order_gap"] > 1.0

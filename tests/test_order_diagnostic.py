"""The order diagnostic of every pre-training (``train.mlm_dev_metrics``'s ``order_gap``): the
dev loss with each block's text shuffled minus the dev loss as written.  It must read zero for a
model that cannot see order and clearly more for one that uses it."""
import torch
from torch.testing import assert_close

from compattn.encoder import Encoder, EncoderConfig
from compattn.train import mask_tokens, mlm_dev_metrics, mlm_eval_set, shuffle_within_blocks

VOCAB, MASK, SPECIAL = 60, 4, [0, 2, 3]          # [PAD]=0, [CLS]=2, [SEP]=3, [MASK]=4


def blocks(n: int, seq_len: int, generator, pairs: bool = False) -> torch.Tensor:
    """``[CLS] text [SEP] [PAD]...`` with random words 5..VOCAB-1 and a padded tail on every
    other row; with ``pairs`` each word is written twice in a row ("a a b b ..."), so a masked
    word is given away by its neighbours -- if the model reads which token stands next to it."""
    body = seq_len - 2
    words = torch.randint(5, VOCAB, (n, body // 2 if pairs else body), generator=generator)
    if pairs:
        words = words.repeat_interleave(2, dim=1)
    ids = torch.cat([torch.full((n, 1), 2), words, torch.full((n, 1), 3)], dim=1)
    ids[1::2, -6:] = 0
    ids[1::2, -7] = 3
    return ids


def test_shuffle_keeps_specials_padding_and_each_target_with_its_input():
    g = torch.Generator().manual_seed(0)
    ids = blocks(8, 20, g)
    inputs, labels = mask_tokens(ids, g, VOCAB, MASK, SPECIAL)
    movable = ~torch.isin(ids, torch.tensor(SPECIAL))
    s_inputs, s_labels = shuffle_within_blocks(inputs, labels, movable, g)
    assert torch.equal(s_inputs[~movable], inputs[~movable])          # [CLS], [SEP], padding stay
    assert not torch.equal(s_inputs, inputs)
    for row in range(len(ids)):                                        # the same multiset, row by row,
        pairs = sorted(zip(inputs[row].tolist(), labels[row].tolist()))   # each target with its input
        assert pairs == sorted(zip(s_inputs[row].tolist(), s_labels[row].tolist()))


def test_a_model_without_positions_has_no_order_gap():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    model = Encoder(EncoderConfig(variant="none", vocab_size=VOCAB, d_model=32, n_heads=2, n_layers=2,
                                  d_ff=64, max_len=24, dropout=0.0)).eval()
    batches = mlm_eval_set(blocks(64, 24, g), 2, 16, VOCAB, MASK, SPECIAL)
    with torch.no_grad():
        metrics = mlm_dev_metrics(model, batches)
    assert_close(metrics["shuffled_loss"], metrics["loss"], atol=1e-5, rtol=0)
    assert abs(metrics["order_gap"]) < 1e-5


def test_for_absolute_positions_shuffling_the_text_is_permuting_the_position_table():
    """Why one figure serves every variant: with learned absolute positions, moving the words
    over fixed positions is the same as keeping the words and moving the positions."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(2)
    model = Encoder(EncoderConfig(variant="absolute", vocab_size=VOCAB, d_model=32, n_heads=2, n_layers=1,
                                  d_ff=64, max_len=16, dropout=0.0)).eval()
    ids = blocks(1, 16, g)[0]
    perm = torch.cat([torch.tensor([0]), 1 + torch.randperm(14, generator=g), torch.tensor([15])])
    with torch.no_grad():
        words_moved = model(ids[perm][None])[0]
        table = model.position_embedding.weight.clone()
        inverse = torch.argsort(perm)
        model.position_embedding.weight.copy_(table[inverse])       # token perm[i] now sits at position i
        positions_moved = model(ids[None])[0][perm]
    assert_close(words_moved, positions_moved)

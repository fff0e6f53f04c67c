import pytest
import torch
from torch.testing import assert_close

import compattn
from compattn import Encoder, EncoderConfig


def tiny(variant, **kw):
    torch.manual_seed(0)
    cfg = EncoderConfig(variant=variant, vocab_size=50, d_model=32, n_heads=4, n_layers=2, d_ff=64,
                        max_len=16, dropout=0.0, **kw)
    return Encoder(cfg).eval()


@pytest.mark.parametrize("variant", compattn.variants())
def test_encoder_heads_and_padding(variant):
    model = tiny(variant)
    ids = torch.randint(0, 50, (2, 9))
    hidden = model(ids)
    assert hidden.shape == (2, 9, 32)
    assert model.mlm_logits(hidden).shape == (2, 9, 50)
    assert model.classify(hidden).shape == (2, 2)
    padded = torch.cat([ids, torch.zeros(2, 3, dtype=torch.long)], 1)
    mask = torch.tensor([[True] * 9 + [False] * 3] * 2)
    assert_close(model(padded, mask)[:, :9], hidden, rtol=1e-5, atol=1e-5)


def test_absolute_positions_only_where_wanted():
    assert tiny("absolute").position_embedding is not None
    assert tiny("composite").position_embedding is None
    assert tiny("composite", absolute_positions=True).position_embedding is not None
    with pytest.raises(ValueError, match="exceeds max_len=16"):
        tiny("absolute")(torch.zeros(1, 17, dtype=torch.long))
    assert tiny("t5")(torch.zeros(1, 40, dtype=torch.long)).shape == (1, 40, 32)


# A masked token must learn where it is to be predicted. Two equal tokens at different places
# get equal hidden states in a model that cannot locate its query: `none` by design, and
# `conv_values` too, since its convolution shapes the values of the keys, but each query's
# weights depend on its content alone. Parameters are drawn large so that tables which start
# at zero (T5's buckets, composite's fixed kernel) already act.
BLIND_TO_THE_QUERY_POSITION = {"none", "conv_values"}


@pytest.mark.parametrize("variant", compattn.variants())
def test_which_variants_tell_two_equal_tokens_apart(variant):
    model = tiny(variant).double()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.3)
    ids = torch.randint(5, 50, (1, 16), generator=torch.Generator().manual_seed(1))
    ids[0, 3] = ids[0, 11] = 4
    hidden = model(ids)[0]
    gap = (hidden[3] - hidden[11]).abs().max().item()
    if variant in BLIND_TO_THE_QUERY_POSITION:
        assert gap < 1e-12
    else:
        assert gap > 1e-4, f"{variant}: two equal tokens got equal states (gap {gap:.1e})"


def test_mlm_decoder_is_tied_to_the_embeddings():
    model = tiny("none")
    hidden = model(torch.randint(0, 50, (1, 5)))
    before = model.mlm_logits(hidden).detach() - model.mlm_bias
    with torch.no_grad():
        model.token_embedding.weight.mul_(2)             # the decoder must follow
    after = model.mlm_logits(hidden).detach() - model.mlm_bias
    assert_close(after, 2 * before)
    # and its gradient reaches the embedding table (one matrix, two uses)
    model.zero_grad()
    model.mlm_logits(hidden.detach()).sum().backward()
    assert model.token_embedding.weight.grad is not None
    assert model.token_embedding.weight.grad.abs().sum() > 0


def test_the_tie_test_fails_on_an_untied_decoder():
    model = tiny("none")
    hidden = model(torch.randint(0, 50, (1, 5)))
    copy = model.token_embedding.weight.detach().clone()
    untied = lambda h: model.mlm_transform(h) @ copy.T + model.mlm_bias  # noqa: E731
    before = untied(hidden).detach() - model.mlm_bias
    with torch.no_grad():
        model.token_embedding.weight.mul_(2)
    with pytest.raises(AssertionError):
        assert_close(untied(hidden).detach() - model.mlm_bias, 2 * before)


def test_post_ln_and_mean_pooling():
    model = tiny("composite", norm="post", pooling="mean")
    ids = torch.randint(0, 50, (2, 7))
    mask = torch.ones(2, 7, dtype=torch.bool)
    mask[0, 5:] = False
    logits = model.classify(model(ids, mask), mask)
    assert logits.shape == (2, 2) and torch.isfinite(logits).all()


def test_parameter_counts():
    absolute, composite = tiny("absolute").parameter_counts(), tiny("composite").parameter_counts()
    assert absolute["absolute_positions"] == 16 * 32 and composite["absolute_positions"] == 0
    per_layer = compattn.mixer_parameter_count("composite", 32, 4) - compattn.mixer_parameter_count("none", 32, 4)
    assert per_layer == 4 * 17 + 2 * 8 * 17
    assert composite["total"] - absolute["total"] == 2 * per_layer - 16 * 32


def test_t5_bias_starts_at_zero_in_the_encoder():
    model = tiny("t5")
    assert (model.blocks[0].mixer.relative_attention_bias.weight == 0).all()


def test_masked_lm_loss_ignores_unlabelled_positions():
    logits = torch.randn(1, 4, 10)
    labels = torch.tensor([[-100, 3, -100, 7]])
    expected = torch.nn.functional.cross_entropy(logits[0, [1, 3]], torch.tensor([3, 7]))
    assert_close(compattn.masked_lm_loss(logits, labels), expected)

"""Parity with the implementations people use: Hugging Face transformers, built from configs.

Identical weights are copied in; nothing is downloaded.  Our output projection is set to the
identity so that we compare the self-attention context, which is what HF's modules return.
"""
import pytest
import torch
from torch.testing import assert_close

import compattn

transformers = pytest.importorskip("transformers")

D, H = 32, 4


def identity_output(mixer):
    with torch.no_grad():
        mixer.out.weight.copy_(torch.eye(mixer.d_model, dtype=mixer.out.weight.dtype))
        mixer.out.bias.zero_()


def randomise(module, seed):
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0, 0.3)


def test_convbert_matches_hugging_face():
    from transformers import ConvBertConfig
    from transformers.models.convbert.modeling_convbert import ConvBertSelfAttention

    config = ConvBertConfig(hidden_size=D, num_attention_heads=H, head_ratio=2, conv_kernel_size=9,
                            attention_probs_dropout_prob=0.0, embedding_size=D)
    theirs = ConvBertSelfAttention(config).eval().double()
    randomise(theirs, 0)
    ours = compattn.build("convbert", D, H, 64).eval().double()
    mapping = {"query": "query", "key": "key", "value": "value", "span_key.depthwise": "key_conv_attn_layer.depthwise",
               "span_key.pointwise": "key_conv_attn_layer.pointwise", "span_key.bias": "key_conv_attn_layer.bias",
               "kernel_generator": "conv_kernel_layer", "conv_value": "conv_out_layer"}
    state = theirs.state_dict()
    new = {}
    for name in ours.state_dict():
        if name.startswith("out."):
            continue
        prefix = next(p for p in mapping if name.startswith(p))
        new[name] = state[mapping[prefix] + name[len(prefix):]]
    ours.load_state_dict({**ours.state_dict(), **new})
    identity_output(ours)
    x = torch.randn(2, 13, D, dtype=torch.float64)
    assert_close(ours(x), theirs(x)[0])


def test_t5_bias_matches_hugging_face():
    from transformers import T5Config
    from transformers.models.t5.modeling_t5 import T5Attention

    config = T5Config(d_model=D, d_kv=D // H, num_heads=H, relative_attention_num_buckets=32,
                      relative_attention_max_distance=128, dropout_rate=0.0, is_decoder=False)
    theirs = T5Attention(config, has_relative_attention_bias=True).eval().double()
    randomise(theirs, 1)
    ours = compattn.build("t5", D, H, 256, unscaled_content=True).eval().double()
    with torch.no_grad():
        for a, b in (("query", "q"), ("key", "k"), ("value", "v"), ("out", "o")):
            getattr(ours, a).weight.copy_(getattr(theirs, b).weight)
            getattr(ours, a).bias.zero_()
        ours.relative_attention_bias.weight.copy_(theirs.relative_attention_bias.weight)
    T = 150   # long enough to reach the logarithmic buckets and the max_distance cap
    x = torch.randn(1, T, D, dtype=torch.float64)
    out, position_bias = theirs(x, cache_position=torch.arange(T))[:2]
    assert_close(ours(x), out, rtol=1e-5, atol=1e-5)  # HF takes the softmax in float32
    assert_close(ours.position_scores(None, None, T), position_bias)
    rel = torch.arange(-200, 201)
    assert torch.equal(compattn.positions.t5_bucket(rel), T5Attention._relative_position_bucket(rel))


def test_shaw_matches_bert_relative_key():
    from transformers import BertConfig
    from transformers.models.bert.modeling_bert import BertSelfAttention

    P, ell = 16, 3
    config = BertConfig(hidden_size=D, num_attention_heads=H, position_embedding_type="relative_key",
                        max_position_embeddings=P, attention_probs_dropout_prob=0.0)
    config._attn_implementation = "eager"
    theirs = BertSelfAttention(config, position_embedding_type="relative_key").eval().double()
    randomise(theirs, 2)
    ours = compattn.build("shaw", D, H, P, max_rel=ell).eval().double()
    with torch.no_grad():
        for name in ("query", "key", "value"):
            getattr(ours, name).load_state_dict(getattr(theirs, name).state_dict())
        # HF's table is indexed by i - j + P - 1 and never clipped: fill it with our clipped rows
        delta = torch.arange(-(P - 1), P)                     # i - j
        theirs.distance_embedding.weight.copy_(ours.relative_keys[(-delta).clamp(-ell, ell) + ell])
    identity_output(ours)
    x = torch.randn(2, 12, D, dtype=torch.float64)
    assert_close(ours(x), theirs(x)[0])

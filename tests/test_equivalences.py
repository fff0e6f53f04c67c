"""The identities the book derives, checked on the library's modules."""
import torch
import torch.nn.functional as F
from torch.testing import assert_close

import compattn
from compattn.mixers.base import merge_heads, split_heads
from compattn.positions import alibi_slopes, clipped_index, place_band, place_clipped, t5_bucket

from test_mixers import inputs, make


def test_place_clipped_matches_definition():
    T, ell = 7, 2
    table = torch.randn(3, T, 2 * ell + 1, dtype=torch.float64)
    placed = place_clipped(table, ell)
    for i in range(T):
        for j in range(T):
            assert placed[0, i, j] == table[0, i, max(-ell, min(ell, j - i)) + ell]
    band = place_band(table, ell)
    assert (band[:, 0, ell + 1:] == 0).all() and (band[:, 0, :ell + 1] == table[:, 0, ell:]).all()


def test_lightconv_is_a_band_matrix_of_its_softmaxed_kernel():
    """An independent reference: the (T, T) band matrix written out entry by entry."""
    ell, T = 3, 11
    mixer = make("lightconv", max_rel=ell, dtype=torch.float64)
    x = inputs(T=T, dtype=torch.float64)
    kernel = F.softmax(mixer.weight, -1)                                # (H, 2ℓ+1)
    band = torch.zeros(4, T, T, dtype=torch.float64)
    for h in range(4):
        for i in range(T):
            for j in range(max(0, i - ell), min(T, i + ell + 1)):
                band[h, i, j] = kernel[h, j - i + ell]
    v = F.glu(mixer.value(x), -1).view(2, T, 4, 8).transpose(1, 2)    # (B, H, T, d_head)
    mixed = (band @ v).transpose(1, 2).reshape(2, T, 32)
    assert_close(mixer(x), mixer.out(mixed))


def test_dynconv_predicts_its_kernel_from_the_glu_output_as_fairseq():
    mixer = make("dynconv", max_rel=2, dtype=torch.float64)
    x = inputs(B=1, T=6, dtype=torch.float64)
    u = F.glu(x @ mixer.value.weight.T + mixer.value.bias, -1)          # (1, T, D)
    logits = (u @ mixer.kernel_generator.weight.T).view(1, 6, 4, 5).transpose(1, 2)
    assert_close(mixer.kernel(x), F.softmax(logits, -1))


def test_dynconv_row_i_depends_on_x_i_alone():
    mixer = make("dynconv", max_rel=2)
    x = inputs(B=1)
    A = mixer.mixing_matrix(x)
    changed = x.clone()
    changed[:, 5] += 3.0                       # change position 5 only
    A2 = mixer.mixing_matrix(changed)
    rows_moved = (A2 - A).abs().amax(dim=(0, 1, 3)) > 0
    assert rows_moved.tolist() == [i == 5 for i in range(11)]


def test_composite_without_content_and_dynamic_terms_is_a_lightweight_convolution():
    ell, T = 2, 10
    mixer = make("composite", content=False, query=False, key=False, max_rel=ell)
    x = inputs(B=1, T=T)
    beta = mixer.fixed_kernel.detach()                                  # (H, 2ℓ+1)
    expected = F.softmax(beta[:, clipped_index(T, ell)], dim=-1)        # (H, T, T)
    A = mixer.mixing_matrix(x)[0]
    assert_close(A, expected)
    # clipped tails: an interior row's weights beyond the window are all equal
    assert torch.allclose(A[:, 6, :3], A[:, 6, :1].expand(-1, 3))
    # edge logits -> -inf: exactly Wu's lightweight convolution of width 2k-1 (interior rows)
    with torch.no_grad():
        mixer.fixed_kernel[:, 0] = mixer.fixed_kernel[:, -1] = float("-inf")
    light = make("lightconv", max_rel=ell - 1)
    with torch.no_grad():
        light.weight.copy_(beta[:, 1:-1])
    band = light.mixing_matrix(x)[0]
    inner = slice(ell - 1, T - ell + 1)
    assert_close(mixer.mixing_matrix(x)[0, :, inner], band[:, inner])


def test_composite_fixed_at_initialisation_equals_plain_attention():
    torch.manual_seed(0)
    plain = compattn.build("none", 32, 4, 32).eval()
    comp = compattn.build("composite_fixed", 32, 4, 32).eval()
    comp.load_state_dict({**plain.state_dict(), "fixed_kernel": comp.fixed_kernel}, strict=True)
    x = inputs()
    assert_close(comp(x), plain(x))


def test_shaw_equals_composite_query():
    shaw, comp = make("shaw", max_rel=3), make("composite_query", max_rel=3, seed=5)
    state = {n: p for n, p in shaw.state_dict().items() if n != "relative_keys"}
    comp.load_state_dict({**state, "query_kernel": shaw.relative_keys.T}, strict=True)
    x = inputs()
    assert_close(comp(x), shaw(x))
    assert_close(comp.mixing_matrix(x), shaw.mixing_matrix(x))


def test_key_based_term_is_indexed_by_i_minus_j():
    ell, T = 2, 6
    mixer = make("composite_key", content=False, max_rel=ell)
    x = inputs(B=1, T=T)
    q, keys = mixer.queries_keys(x, None)
    scores = mixer.position_scores(q, keys, T)
    table = (keys @ mixer.key_kernel) * mixer.scale
    for i in range(T):
        for j in range(T):
            assert_close(scores[0, :, i, j], table[0, :, j, max(-ell, min(ell, i - j)) + ell])


def test_rotary_scores_depend_only_on_the_offset():
    mixer = make("rope")
    x = inputs(B=1, T=1).expand(1, 9, 32)              # the same token at every position
    q, k = mixer.queries_keys(x, None)
    scores = (q @ k.transpose(-1, -2))[0]
    for offset in range(-8, 9):
        diagonal = torch.diagonal(scores, offset=offset, dim1=-2, dim2=-1)
        assert_close(diagonal, diagonal[..., :1].expand_as(diagonal))


def test_t5_buckets_match_known_values():
    rel = torch.tensor([0, -1, -7, -8, -11, -12, -64, -90, -91, -1000, 1, 7, 8, 64, 128])
    expected = [0, 1, 7, 8, 8, 9, 14, 14, 15, 15, 17, 23, 24, 30, 31]
    assert t5_bucket(rel).tolist() == expected
    used = set(t5_bucket(torch.arange(-300, 301)).tolist())
    assert 16 not in used and len(used) == 31


def test_alibi_slopes():
    assert_close(alibi_slopes(8), torch.tensor([2.0 ** -i for i in range(1, 9)]))
    assert_close(alibi_slopes(4), torch.tensor([2.0 ** -i for i in (2, 4, 6, 8)]))
    twelve = [2.0 ** -i for i in range(1, 9)] + [2.0 ** -(i + 0.5) for i in range(0, 4)]
    assert_close(alibi_slopes(12), torch.tensor(twelve))


def test_alibi_without_content_is_a_laplace_kernel():
    mixer = make("alibi", content=False)
    x = inputs(B=1, T=9)
    A = mixer.mixing_matrix(x)[0, 0]          # slope 1/4 for head 0 of 4
    assert_close(A[4, 5] / A[4, 4], torch.tensor(2.0 ** -2).exp().reciprocal())


def test_heads_round_trip():
    x = inputs()
    assert_close(merge_heads(split_heads(x, 4)), x)


def test_parameter_counts_match_the_papers_accounting():
    base = compattn.mixer_parameter_count("none", 256, 4)
    extra = {n: compattn.mixer_parameter_count(n, 256, 4) - base
             for n in ("composite_fixed", "composite_query", "composite_key", "composite",
                       "conv_values", "conv_qk")}
    assert extra == {"composite_fixed": 68, "composite_query": 1088, "composite_key": 1088,
                     "composite": 2244, "conv_values": 4608, "conv_qk": 9216}


def test_window_at_which_composite_adds_one_percent():
    """The answer to an exercise of the chapter on every variant: ell = 10."""
    base = compattn.mixer_parameter_count("none", 256, 4)
    ell = next(ell for ell in range(1, 200)
             if compattn.mixer_parameter_count("composite", 256, 4, max_rel=ell) - base >= 0.01 * base)
    assert ell == 10
    assert (4 + 2 * 64) * (2 * ell + 1) == compattn.mixer_parameter_count("composite", 256, 4,
                                                                            max_rel=ell) - base

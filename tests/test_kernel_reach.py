"""The reach of a kernel (chapter 23) uses each mixer's own edge behaviour: a
zero-padded convolution's edge rows lose the taps that fall outside the sequence and
are not renormalised; a clipped kernel's rows are a softmax over every key."""
import numpy as np
import pytest
import torch
from torch.testing import assert_close

import compattn
from compattn.plots import kernel_attention, kernel_band, kernel_reach


def test_a_lightconv_kernel_placed_by_the_book_is_the_mixers_own_matrix():
    torch.manual_seed(0)
    T, ell = 12, 3
    mixer = compattn.build("lightconv", d_model=16, n_heads=2, max_len=T, max_rel=ell)
    with torch.no_grad():
        mixer.weight.copy_(torch.randn_like(mixer.weight) * 2)
        matrix = mixer.mixing_matrix(torch.randn(1, T, 16))[0]
    for h, logits in enumerate(mixer.weight.detach().double()):
        placed = torch.from_numpy(kernel_attention(logits.numpy(), T, clip=False))
        assert_close(placed, matrix[h].double(), rtol=1e-6, atol=1e-7)
    assert matrix[0, 0].sum() < 1       # the edge row really loses weight


def test_an_edge_row_loses_exactly_the_taps_outside_the_sequence():
    logits = np.array([0.3, -1.0, 2.0, 0.5, 1.0, -0.2, 0.7])     # ℓ = 3
    taps = np.exp(logits) / np.exp(logits).sum()
    T = 10
    rows = kernel_attention(logits, T, clip=False)
    # row 0 has no keys at offsets -3, -2, -1; row 1 lacks -3, -2; the last lacks +1..+3
    assert 1 - rows[0].sum() == pytest.approx(taps[:3].sum())
    assert 1 - rows[1].sum() == pytest.approx(taps[:2].sum())
    assert 1 - rows[-1].sum() == pytest.approx(taps[4:].sum())
    assert rows[5].sum() == pytest.approx(1.0)                  # an inner row keeps all


def test_lost_weight_counts_every_missing_tap():
    logits = np.array([0.3, -1.0, 2.0, 0.5, 1.0, -0.2, 0.7])     # ℓ = 3
    taps = np.exp(logits) / np.exp(logits).sum()
    T, ell = 10, 3
    lost = 0.0
    for i in range(T):
        for r in range(-ell, ell + 1):
            if not 0 <= i + r < T:
                lost += taps[r + ell]
    assert kernel_reach(logits, T, clip=False)["lost"] == pytest.approx(lost / T)


def test_the_band_keeps_each_tap_where_it_lands():
    band = kernel_band([0.1, 0.2, 0.4, 0.2, 0.1], 6)
    assert band[2].tolist() == [0.1, 0.2, 0.4, 0.2, 0.1, 0.0]
    assert band[0].tolist() == [0.4, 0.2, 0.1, 0.0, 0.0, 0.0]


def test_a_clipped_kernel_loses_nothing():
    reach = kernel_reach([0.0] * 6 + [4.0], 40)                  # ℓ = 3, peaked at +3
    assert reach["lost"] == 0.0
    rows = kernel_attention([0.0, 1.0, 0.0, 2.0, 0.0], 9)
    assert_close(torch.from_numpy(rows.sum(1)), torch.ones(9, dtype=torch.float64))

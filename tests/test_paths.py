"""Every execution path computes the same function, on every input that can happen.

Every variant x every path this machine has x {no padding; right padding longer than ℓ; left
padding; all but one position padded} x {outside clip, mask} x {content on, off}: equal outputs
and gradients in float64, finite values after two stacked layers, and nothing from the padded
positions of x (NaN, inf, 1e30) reaching a real output.  FlexAttention has no backward pass on a
CPU: there its forward pass is compared (the score_mod), and a request for its gradients refused.
"""
import itertools

import pytest
import torch
from torch.testing import assert_close

import compattn
import compattn.mixers.chunked as chunked
from compattn.mixers.flex import flex_available
from compattn.mixers.paths import PATHS, Scores, attend

T, ELL, D, H = 14, 2, 8, 2          # ELL: the window ℓ (max_rel)
PADDINGS = ["none", "right", "left", "all_but_one"]


def configurations():
    """(id, variant, options) for every variant and its clip/mask and content switches."""
    for name in compattn.variants():
        allowed = compattn.options(name)
        base = {"max_rel": ELL} if "max_rel" in allowed else {}
        if "kernel_size" in allowed and "max_rel" not in allowed:
            base = {"kernel_size": 2 * ELL + 1}
        if name == "t5":
            base = {"num_buckets": 8, "max_distance": 8}
        outsides = ["clip", "mask"] if "outside" in allowed else [None]
        contents = [True, False] if "content" in allowed else [None]
        for outside, content in itertools.product(outsides, contents):
            opts = dict(base)
            if outside is not None:
                opts["outside"] = outside
            if content is not None:
                opts["content"] = content
            label = "-".join([name] + [f"{key}={value}" for key, value in opts.items()
                                       if key in ("outside", "content")])
            yield label, name, opts
    # the window without any table (the case the plain path once ignored)
    yield ("composite-window-only", "composite",
           dict(max_rel=ELL, outside="mask", fixed=False, query=False, key=False))


CONFIGS = list(configurations())


def pad_mask(kind):
    """(2, T): sequence 0 unpadded, sequence 1 padded as ``kind``; ``None`` for no padding."""
    if kind == "none":
        return None
    mask = torch.ones(2, T, dtype=torch.bool)
    if kind == "right":
        mask[1, T - (ELL + 3):] = False          # more pads than ℓ: windows of pads only
    elif kind == "left":
        mask[1, :ELL + 1] = False
    else:
        mask[1] = False
        mask[1, 5] = True
    return mask


def make(name, opts, path):
    torch.manual_seed(0)
    extra = {"path": path} if path != "auto" else {}
    mixer = compattn.build(name, D, H, 32, **opts, **extra).double().eval()
    with torch.no_grad():
        for p in mixer.parameters():
            if p.abs().sum() == 0:              # zero-initialised tables: make every term count
                p.normal_(0, 0.5)
    return mixer


def paths_of(name):
    return list(PATHS) if "path" in compattn.options(name) else ["auto"]


def inputs(mask):
    x = torch.randn(2, T, D, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    if mask is not None:                         # junk where there is no token
        junk = torch.tensor([float("nan"), float("inf"), -float("inf"), 1e30], dtype=x.dtype)
        x[~mask] = junk.repeat(int((~mask).sum()) * D // 4 + 1)[: int((~mask).sum()) * D].view(-1, D)
    return x


def run(mixer, x, mask, grad_out, with_grad):
    x = x.clone().requires_grad_(with_grad)
    if not with_grad:
        with torch.no_grad():
            return mixer(x, mask), None
    y = mixer(x, mask)
    grads = torch.autograd.grad(y, [x, *mixer.parameters()], grad_out, allow_unused=True)
    return y.detach(), grads


def flex_gradients() -> bool:
    return torch.cuda.is_available()


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: one intra-op thread is faster than several on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.filterwarnings("ignore:flex_attention called without torch.compile")
@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("label, name, opts", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_every_path_gives_the_same_numbers(label, name, opts, padding):
    mask = pad_mask(padding)
    x = inputs(mask)
    grad_out = torch.randn(2, T, D, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    reference = None
    for path in paths_of(name):
        if path == "flex" and not flex_available():
            continue
        with_grad = path != "flex" or flex_gradients()   # FlexAttention has no CPU backward
        mixer = make(name, opts, path)
        y, grads = run(mixer, x, mask, grad_out, with_grad)
        real = slice(None) if mask is None else mask
        assert torch.isfinite(y[real]).all(), f"{path}: a real output is not finite"
        if mask is not None:                           # nothing of the padded junk survives
            assert torch.isfinite(y).all(), f"{path}: padded junk reached the output"
        if reference is None:
            reference = (path, y, grads)
            continue
        assert_close(y, reference[1], msg=lambda m: f"{path} vs {reference[0]}: {m}")
        if grads is not None:
            for g, g_ref in zip(grads, reference[2]):
                assert (g is None) == (g_ref is None)
                if g is not None:
                    assert torch.isfinite(g).all(), f"{path}: a gradient is not finite"
                    assert_close(g, g_ref, msg=lambda m: f"gradient, {path}: {m}")


@pytest.mark.filterwarnings("ignore:flex_attention called without torch.compile")
@pytest.mark.parametrize("padding", ["right", "all_but_one"])
@pytest.mark.parametrize("label, name, opts", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_two_stacked_layers_stay_finite(label, name, opts, padding):
    mask = pad_mask(padding)
    for path in paths_of(name):
        if path == "flex" and not (flex_available() and flex_gradients()):
            continue       # forward only on a CPU: equal to `plain` above, which is stacked here
        with_grad = True
        first, second = make(name, opts, path), make(name, opts, path)
        x = inputs(mask).requires_grad_(with_grad)
        with torch.set_grad_enabled(with_grad):
            y = second(first(x, mask), mask)
        assert torch.isfinite(y[mask]).all(), path
        if with_grad:
            y[mask].sum().backward()
            assert torch.isfinite(x.grad).all(), path
            assert (x.grad[~mask] == 0).all(), f"{path}: padded positions got a gradient"
            for p in [*first.parameters(), *second.parameters()]:
                assert p.grad is None or torch.isfinite(p.grad).all(), path


def test_the_window_does_not_depend_on_which_tables_are_on():
    mixer = make("composite", dict(max_rel=ELL, outside="mask", fixed=False, query=False,
                                   key=False), "plain")
    A = mixer.mixing_matrix(inputs(None))
    far = (torch.arange(T)[None, :] - torch.arange(T)[:, None]).abs() > ELL
    assert (A[..., far] == 0).all()


def test_a_row_without_allowed_keys_is_zero_in_the_mixing_matrix():
    mixer = make("composite", dict(max_rel=ELL, outside="mask"), "plain")
    mask = pad_mask("right")
    A = mixer.mixing_matrix(inputs(mask), mask)
    assert torch.isfinite(A).all()
    assert (A[1, :, ~mask[1]] == 0).all() and (A[1][..., ~mask[1]] == 0).all()


@pytest.mark.filterwarnings("ignore:flex_attention called without torch.compile")
def test_flex_on_a_cpu_refuses_gradients_with_a_clear_message():
    """FlexAttention has no backward pass on a CPU: asking it for gradients there is a ValueError
    that says what to do (not torch's NotImplementedError); its forward pass runs."""
    if not flex_available():
        pytest.skip("this torch has no FlexAttention")
    mixer = make("composite", {"max_rel": ELL}, "flex").float().cpu().train()
    x = inputs(None).float()
    with pytest.raises(ValueError, match="FlexAttention has no backward pass on a CPU: move the mixer"):
        mixer(x)
    with torch.no_grad():
        assert_close(mixer(x), make("composite", {"max_rel": ELL}, "plain").float()(x))


@pytest.mark.filterwarnings("ignore:flex_attention called without torch.compile")
def test_flex_without_content_after_a_flex_call_with_a_table():
    """Regression: zeros aliased as both queries and keys (for content=False) crashed the second
    FlexAttention call of a process with AttributeError ('NoneType' ... '__closure__')."""
    if not flex_available():
        pytest.skip("this torch has no FlexAttention")
    x = inputs(None)
    for name, opts in (("composite", {"max_rel": ELL}), ("alibi", {"content": False}),
                       ("composite", {"max_rel": ELL, "content": False, "key": False})):
        mixer = make(name, opts, "flex")
        with torch.no_grad():
            flex_out = mixer(x)
            mixer.path = "plain"
            assert_close(flex_out, mixer(x))


@pytest.mark.parametrize("name, opts", [("composite", {"outside": "clip"}),
                                         ("composite", {"outside": "mask"}),
                                         ("composite", {"content": False}), ("shaw", {})],
                         ids=["composite-clip", "composite-mask", "composite-no-content", "shaw"])
def test_block_path_over_several_blocks(monkeypatch, name, opts):
    """T = 40 in blocks of 16 rows: the keys left and right of a block's band, whose offsets clip
    to the tables' edge columns, exist only when there are several blocks."""
    monkeypatch.setattr(chunked, "BLOCK_NUMBERS", 1)        # -> the minimum, 16 rows per block
    long_T = 40
    mask = torch.ones(2, long_T, dtype=torch.bool)
    mask[1, -7:] = False
    x = torch.randn(2, long_T, D, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    x[~mask] = float("nan")
    grad_out = torch.randn(2, long_T, D, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    results = {}
    for path in ("plain", "block"):
        mixer = make(name, {"max_rel": ELL, **opts}, path)
        results[path] = run(mixer, x, mask, grad_out, True)
        names = [n for n, _ in mixer.named_parameters()]
    (y, grads), (y_ref, grads_ref) = results["block"], results["plain"]
    assert_close(y, y_ref)
    for pname, g, g_ref in zip(["x", *names], grads, grads_ref):
        assert_close(g, g_ref, msg=lambda m: f"gradient of {pname}: {m}")
    # the edge columns of the tables (offsets clipped to ±ℓ) get gradient from far keys
    tables = {n: g for n, g in zip(names, grads[1:]) if n in ("fixed_kernel", "query_kernel",
                                                               "key_kernel", "relative_keys")}
    for pname, g in tables.items():
        edges = g[..., [0, -1]] if pname != "relative_keys" else g[[0, -1]]
        assert (edges != 0).all(), f"{pname}: an edge column got no gradient"


@pytest.mark.filterwarnings("ignore:flex_attention called without torch.compile")
@pytest.mark.parametrize("path", PATHS)
def test_every_path_refuses_an_empty_batch_and_survives_a_sequence_of_padding(path):
    """Called directly (no mixer's input check): B = 0 is a clear error on every path, and a
    sequence that is all padding gives zeros, with finite gradients, never NaN."""
    if path == "flex" and not flex_available():
        pytest.skip("this torch has no FlexAttention")
    g = torch.Generator().manual_seed(6)
    q, k, v = (torch.randn(2, H, T, 4, dtype=torch.float64, generator=g) for _ in range(3))
    table = torch.randn(1, H, 1, 2 * ELL + 1, dtype=torch.float64, generator=g)
    empty = Scores(T, q[:0], k[:0], 0.5, table, max_rel=ELL)
    with pytest.raises(ValueError, match="empty batch"):
        attend(empty, v[:0], path=path)
    mask = torch.ones(2, T, dtype=torch.bool)
    mask[1] = False
    for band in (False, True):
        with_grad = path != "flex" or flex_gradients()
        tensors = [t.clone().requires_grad_(with_grad) for t in (q, k, v, table)]
        s = Scores(T, *tensors[:2], 0.5, tensors[3], max_rel=ELL, band=band, pad_mask=mask)
        with torch.set_grad_enabled(with_grad):
            out = attend(s, tensors[2], path=path)
        assert (out[1] == 0).all() and torch.isfinite(out).all(), (path, band)
        if with_grad:
            grads = torch.autograd.grad(out.sum(), tensors)
            assert all(torch.isfinite(g_).all() for g_ in grads), (path, band)


@pytest.mark.parametrize("name", ["composite", "t5"])
def test_no_graph_break_in_a_mixer(name):
    """The input checks do not break a compiled graph (the all-padding check is skipped
    while compiling)."""
    mixer = compattn.build(name, D, H, 32).train()
    mask = pad_mask("right")
    explanation = torch._dynamo.explain(mixer)(inputs(None).float(), mask)
    assert explanation.graph_break_count == 0, explanation.break_reasons

"""Every execution path computes the same function, on every input that can happen.

Every variant x every path this machine has x {no padding; right padding longer than k; left
padding; all but one position padded} x {outside clip, mask} x {content on, off}: equal outputs
and gradients in float64, finite values after two stacked layers, and nothing from the padded
positions of x (NaN, inf, 1e30) reaching a real output.
"""
import itertools

import pytest
import torch
from torch.testing import assert_close

import compattn
from compattn.mixers.flex import flex_available
from compattn.mixers.paths import PATHS

T, K, D, H = 14, 2, 8, 2
PADDINGS = ["none", "right", "left", "all_but_one"]


def configurations():
    """(id, variant, options) for every variant and its clip/mask and content switches."""
    for name in compattn.variants():
        allowed = compattn.options(name)
        base = {"max_rel": K} if "max_rel" in allowed else {}
        if "kernel_size" in allowed and "max_rel" not in allowed:
            base = {"kernel_size": 2 * K + 1}
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
            label = "-".join([name] + [f"{k}={v}" for k, v in opts.items()
                                       if k in ("outside", "content")])
            yield label, name, opts
    # the window without any table (the case the plain path once ignored)
    yield ("composite-window-only", "composite",
           dict(max_rel=K, outside="mask", fixed=False, query=False, key=False))


CONFIGS = list(configurations())


def pad_mask(kind):
    """(2, T): sequence 0 unpadded, sequence 1 padded as ``kind``; ``None`` for no padding."""
    if kind == "none":
        return None
    mask = torch.ones(2, T, dtype=torch.bool)
    if kind == "right":
        mask[1, T - (K + 3):] = False            # more pads than k: windows of pads only
    elif kind == "left":
        mask[1, :K + 1] = False
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
    mixer = make("composite", dict(max_rel=K, outside="mask", fixed=False, query=False,
                                   key=False), "plain")
    A = mixer.mixing_matrix(inputs(None))
    far = (torch.arange(T)[None, :] - torch.arange(T)[:, None]).abs() > K
    assert (A[..., far] == 0).all()


def test_a_row_without_allowed_keys_is_zero_in_the_mixing_matrix():
    mixer = make("composite", dict(max_rel=K, outside="mask"), "plain")
    mask = pad_mask("right")
    A = mixer.mixing_matrix(inputs(mask), mask)
    assert torch.isfinite(A).all()
    assert (A[1, :, ~mask[1]] == 0).all() and (A[1][..., ~mask[1]] == 0).all()


def test_flex_on_cpu_is_checked_by_the_forward_pass_only():
    if flex_gradients():
        pytest.skip("CUDA: the gradients of the flex path are compared above")
    pytest.skip("FlexAttention has no backward pass on a CPU: flex gradients are compared "
                "only on CUDA (the forward pass is compared on every machine)")


@pytest.mark.parametrize("name", ["composite", "t5"])
def test_no_graph_break_in_a_mixer(name):
    """The input checks do not break a compiled graph (the all-padding check is skipped
    while compiling)."""
    mixer = compattn.build(name, D, H, 32).train()
    mask = pad_mask("right")
    explanation = torch._dynamo.explain(mixer)(inputs(None).float(), mask)
    assert explanation.graph_break_count == 0, explanation.break_reasons

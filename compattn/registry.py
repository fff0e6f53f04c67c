"""Every variant is a registered name: ``build(name, ...)`` makes one, ``variants()`` lists them.

A name maps to a mixer class plus preset options, so one class can serve several names
(``composite_fixed`` is ``CompositeAttention`` with only the content and fixed terms).
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field

_REGISTRY: dict[str, "Entry"] = {}


@dataclass(frozen=True)
class Entry:
    name: str
    cls: type
    preset: dict = field(default_factory=dict)
    paper_term: str = ""
    formula: str = ""
    cost: str = ""


def register(name: str, *, paper_term: str = "", formula: str = "", cost: str = "", **preset):
    """Class decorator: register ``cls`` under ``name`` with preset options.

    ``paper_term``, ``formula`` (LaTeX) and ``cost`` (extra work over plain attention)
    describe the variant in the book's tables.
    """
    def decorate(cls):
        if name in _REGISTRY:
            raise ValueError(f"variant {name!r} is registered twice")
        _REGISTRY[name] = Entry(name, cls, dict(preset), paper_term, formula, cost)
        return cls
    return decorate


def variants() -> list[str]:
    """Every registered variant name, in the order the book presents them."""
    return list(_REGISTRY)


def entry(name: str) -> Entry:
    if name not in _REGISTRY:
        raise ValueError(f"unknown variant {name!r}; the registered variants are: "
                         + ", ".join(_REGISTRY))
    return _REGISTRY[name]


def options(name: str) -> dict:
    """The options ``build(name, ...)`` accepts, with their defaults for this name."""
    e = entry(name)
    params = inspect.signature(e.cls.__init__).parameters
    defaults = {p: v.default for p, v in params.items()
                if p not in ("self", "d_model", "n_heads", "max_len")
                and v.kind is v.KEYWORD_ONLY}
    defaults.update(e.preset)
    return defaults


def build(name: str, d_model: int = 64, n_heads: int = 4, max_len: int = 128, **opts):
    """Make the token mixer registered as ``name``.

    ``d_model`` must be divisible by ``n_heads``; ``opts`` are the variant's options
    (see :func:`options`); an option the variant does not have is a ``ValueError``.
    """
    e = entry(name)
    allowed = options(name)
    unknown = sorted(set(opts) - set(allowed))
    if unknown:
        raise ValueError(f"variant {name!r} has no option(s) {unknown}; "
                         f"its options are {sorted(allowed)}")
    for key, value in (("d_model", d_model), ("n_heads", n_heads), ("max_len", max_len)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{key} must be a positive int, got {value!r}")
    if d_model % n_heads:
        raise ValueError(f"n_heads ({n_heads}) must divide d_model ({d_model})")
    mixer = e.cls(d_model, n_heads, max_len, **{**e.preset, **opts})
    mixer.variant = name
    return mixer

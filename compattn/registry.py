"""Every variant is a registered name: ``build(name, ...)`` makes one, ``variants()`` lists them.

A name maps to a mixer class plus preset options, so one class can serve several names
(``composite_fixed`` is ``CompositeAttention`` with only the content and fixed terms).
Each class declares its options once, as ``OPTIONS``: name -> :class:`Option` (default and
allowed values); ``build`` and the class itself check them, so a wrong value is a
``ValueError`` at build time, never a surprise in the forward pass.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

_REGISTRY: dict[str, "Entry"] = {}


@dataclass(frozen=True)
class Option:
    """One option of a mixer class: its default and the values it allows.

    ``allowed`` completes the error message "NAME must be ALLOWED, got VALUE"; ``accepts``
    says whether a value is allowed.  bool is not an int here, and a string is not a bool.
    """
    default: object
    allowed: str
    accepts: Callable[[object], bool]

    def check(self, name: str, value):
        if not self.accepts(value):
            raise ValueError(f"{name} must be {self.allowed}, got {value!r}")
        return value


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def flag(default: bool) -> Option:
    return Option(default, "True or False", lambda value: isinstance(value, bool))


def integer(default, allowed: str, accepts: Callable[[int], bool], *, optional: bool = False) -> Option:
    """An int for which ``accepts`` holds (or ``None``, when ``optional``)."""
    return Option(default, allowed + (", or None" if optional else ""),
                  lambda value: (optional and value is None) or (is_int(value) and accepts(value)))


def number(default, allowed: str, accepts: Callable[[float], bool]) -> Option:
    """A finite int or float for which ``accepts`` holds."""
    return Option(default, allowed, lambda value: is_number(value) and accepts(value))


def choice(default: str, *values: str) -> Option:
    allowed = (" or ".join(map(repr, values)) if len(values) == 2
               else "one of " + ", ".join(map(repr, values)))
    return Option(default, allowed, lambda value: isinstance(value, str) and value in values)


def check_options(cls, given: dict, owner: str | None = None) -> dict:
    """Every option of ``cls`` (``cls.OPTIONS``) with ``given`` values checked, defaults filled in."""
    declared = cls.OPTIONS
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise ValueError(f"{owner or cls.__name__} has no option(s) {unknown}; "
                         f"its options are {sorted(declared)}")
    return {name: option.check(name, given[name]) if name in given else option.default
            for name, option in declared.items()}


#: d_model, n_heads, max_len and the encoder's sizes
SIZE = integer(None, "a positive int", lambda n: n >= 1)


@dataclass(frozen=True)
class Entry:
    """A registered variant: its class, preset options, book description and declarations.

    The declarations say what the variant exposes, so that no caller needs to know names:

    * ``tables``: record key -> attribute (dotted path) of a learned position table, for the
      plots and the training records (a table the options switched off is simply absent);
    * ``generated``: ``"query"``/``"key"`` -> attribute of a (d_head, 2ℓ+1) table that generates
      a kernel from each query / key (composite's u, u'), read on real text;
    * ``zero_init``: attributes that start at zero (the encoder keeps them so);
    * ``rows_sum_to_one``: whether every row of the mixing matrix sums to one (softmax over
      the sequence) or rows may lose weight at the edges (a zero-padded convolution);
    * ``mixing_matrix``: whether ``mixing_matrix`` exists (a per-head (T, T) matrix);
    * ``absolute_positions``: whether the encoder adds learned absolute positions.
    """
    name: str
    cls: type
    preset: dict = field(default_factory=dict)
    paper_term: str = ""
    formula: str = ""
    cost: str = ""
    tables: dict = field(default_factory=dict)
    generated: dict = field(default_factory=dict)
    zero_init: tuple = ()
    rows_sum_to_one: bool = True
    mixing_matrix: bool = True
    absolute_positions: bool = False


def register(name: str, *, paper_term: str = "", formula: str = "", cost: str = "",
             tables: dict | None = None, generated: dict | None = None, zero_init=(),
             rows_sum_to_one: bool = True, mixing_matrix: bool = True,
             absolute_positions: bool = False, **preset):
    """Class decorator: register ``cls`` under ``name`` with preset options.

    ``paper_term``, ``formula`` (LaTeX) and ``cost`` (extra work over plain attention)
    describe the variant in the book's tables; the declarations are described at
    :class:`Entry`.
    """
    def decorate(cls):
        if name in _REGISTRY:
            raise ValueError(f"variant {name!r} is registered twice")
        _REGISTRY[name] = Entry(name, cls, dict(preset), paper_term, formula, cost,
                                dict(tables or {}), dict(generated or {}), tuple(zero_init),
                                rows_sum_to_one, mixing_matrix, absolute_positions)
        return cls
    return decorate


def table(mixer, path: str):
    """The tensor at dotted attribute ``path`` of ``mixer``, or ``None`` when it is absent."""
    value = mixer
    for part in path.split("."):
        value = getattr(value, part, None)
        if value is None:
            return None
    return value


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
    return {**{key: option.default for key, option in e.cls.OPTIONS.items()}, **e.preset}


def build(name: str, d_model: int = 64, n_heads: int = 4, max_len: int = 128, **opts):
    """Make the token mixer registered as ``name``.

    ``d_model`` must be divisible by ``n_heads``; ``opts`` are the variant's options
    (see :func:`options`); an option the variant does not have, or a value it does not
    allow, is a ``ValueError``.
    """
    e = entry(name)
    clashes = {key: value for key, value in opts.items()
               if key in e.preset and value != e.preset[key]}
    if clashes:
        wanted = {**e.preset, **opts}
        same = [other.name for other in _REGISTRY.values() if other.cls is e.cls
                and other.preset and all(wanted.get(k) == v for k, v in other.preset.items())]
        really = (f"that is the variant {same[0]!r}: build({same[0]!r}, ...)" if same else
                  f"build({_base_name(e)!r}, " + ", ".join(f"{k}={wanted[k]!r}" for k in e.preset) + ")")
        raise ValueError(f"variant {name!r} fixes {e.preset}; it cannot take {clashes} -- {really}")
    checked = check_options(e.cls, {**e.preset, **opts}, owner=f"variant {name!r}")
    mixer = e.cls(d_model, n_heads, max_len, **checked)
    mixer.variant = name
    mixer.uses_absolute_positions = e.absolute_positions
    return mixer


def _base_name(e: Entry) -> str:
    """The variant of the same class with no preset (``composite``)."""
    free = [other.name for other in _REGISTRY.values() if other.cls is e.cls and not other.preset]
    return free[0] if free else e.name

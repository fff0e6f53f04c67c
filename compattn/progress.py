"""Progress bars: tqdm where it is installed, a silent stand-in where it is not (a bare GPU
image), so that data building, training and sweeps run the same either way."""
from __future__ import annotations

try:
    from tqdm import tqdm
except ImportError:
    class tqdm:                 # noqa: N801  (tqdm's name, so callers need no branch)
        def __init__(self, iterable=None, total=None, **_):
            self.iterable = iterable if iterable is not None else range(total or 0)

        def __iter__(self):
            return iter(self.iterable)

        def update(self, n=1):
            pass

        def set_postfix(self, **_):
            pass

        def close(self):
            pass

__all__ = ["tqdm"]

"""Token mixers, one file per family; importing this package registers them all."""
from . import attention, relative, convolution, convbert, injection, kerple  # noqa: F401  (registration)
from .base import Mixer  # noqa: F401

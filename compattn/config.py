"""Named profiles: how big the book's training runs are.

``COMPATTN_PROFILE`` (or ``--profile``) picks one:

* ``tiny``  -- CI and the default on a CPU: a variant pre-trains and fine-tunes in well under
  a minute on two cores, on the embedded sample;
* ``small`` -- a laptop CPU, on the full data when it is built: a two-layer encoder, about
  seven minutes per variant (pre-training plus 18 fine-tunings) on two cores, so the whole
  sweep takes about two hours and resumes where it stopped;
* ``cpu``   -- the evidence of Part III on two CPU cores (``compattn.evidence``): three
  pre-training seeds of every variant and two fine-tuning seeds per task and checkpoint,
  48 pre-trainings and 576 fine-tunings.  Estimated from the times measured for ``absolute``
  and ``none`` at this model size on two idle cores: 0.29 and 0.27 s per pre-training step
  of 128-token blocks (a 64-token step, as here, measured 0.63 of that side by side under
  load), about 7 s per 100-step fine-tuning plus its final evaluation: about 4.5 h of
  pre-training and 1.5 h of fine-tuning, so about 6 hours; it resumes run by run;
* ``gpu``   -- the same protocol on one GPU, its steps planned from measured throughput;
* ``paper`` -- one GPU: a BERT-small-like encoder (4 layers, d=256, 4 heads, sequence 128),
  sized so that one variant takes a few minutes on an H100.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, replace


@dataclass(frozen=True)
class TrainConfig:
    steps: int
    batch_size: int
    lr: float
    warmup: float = 0.1            # fraction of the steps with a linear warm-up, then linear decay
    weight_decay: float = 0.01
    clip: float = 1.0              # gradient-norm clipping
    eval_every: int = 50
    eval_batches: int = 4
    checkpoint_every: int = 50
    seed: int = 0
    mask_rate: float = 0.15        # masked-LM targets per real token while training (dev: always 0.15)

    def __post_init__(self):
        for name in ("steps", "batch_size", "eval_every", "eval_batches", "checkpoint_every"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive int, got {getattr(self, name)!r}")
        if not 0 <= self.warmup < 1:
            raise ValueError(f"warmup is a fraction of the steps in [0, 1), got {self.warmup}")
        if isinstance(self.mask_rate, bool) or not 0 < self.mask_rate < 1:
            raise ValueError(f"mask_rate is a fraction of the tokens in (0, 1), got {self.mask_rate!r}")


@dataclass(frozen=True)
class Profile:
    name: str
    model: dict = field(default_factory=dict)      # EncoderConfig fields
    pretrain: TrainConfig = None
    finetune: TrainConfig = None
    data: str = "sample"                           # "sample", "auto" or "full"
    tokenizer: str = "sample"
    # "Beyond the paper" (compattn.beyond): masked-LM length generalisation and the probes
    beyond: dict = field(default_factory=dict)

    @property
    def seq_len(self) -> int:
        return self.model["max_len"]

    def to_dict(self) -> dict:
        return asdict(self)


PROFILES = {
    "tiny": Profile(
        "tiny", model=dict(d_model=64, n_heads=4, n_layers=2, d_ff=256, max_len=64, dropout=0.1),
        pretrain=TrainConfig(steps=300, batch_size=16, lr=2e-3, eval_every=50, eval_batches=4,
                             checkpoint_every=50),
        finetune=TrainConfig(steps=150, batch_size=32, lr=1e-3, eval_every=50, eval_batches=4,
                             checkpoint_every=50),
        beyond=dict(train_length=32, eval_lengths=(32, 64, 128), steps=100, batch_size=16, eval_spans=8,
                    probe_steps=100, probe_lr=2e-3)),
    "small": Profile(
        # two layers and a high rate: what learns most masked-LM per CPU-minute (as in "beyond")
        "small", model=dict(d_model=128, n_heads=4, n_layers=2, d_ff=512, max_len=128, dropout=0.1),
        pretrain=TrainConfig(steps=800, batch_size=32, lr=3e-3, eval_every=100, eval_batches=8,
                             checkpoint_every=200),
        finetune=TrainConfig(steps=100, batch_size=32, lr=1e-3, eval_every=25, eval_batches=8,
                             checkpoint_every=100),
        data="auto", tokenizer="auto",
        beyond=dict(train_length=128, eval_lengths=(128, 256, 512), steps=800, batch_size=32, lr=3e-3,
                    model=dict(n_layers=2), eval_spans=48, probe_steps=1000, probe_lr=2e-3)),
    "paper": Profile(
        "paper", model=dict(d_model=256, n_heads=4, n_layers=4, d_ff=1024, max_len=128, dropout=0.1),
        pretrain=TrainConfig(steps=6000, batch_size=128, lr=1e-3, eval_every=500, eval_batches=16,
                             checkpoint_every=500),
        finetune=TrainConfig(steps=1000, batch_size=64, lr=3e-4, eval_every=250, eval_batches=32,
                             checkpoint_every=500),
        data="auto", tokenizer="auto",
        beyond=dict(train_length=128, eval_lengths=(128, 256, 512), steps=4000, batch_size=128, eval_spans=256,
                    probe_steps=2000, probe_lr=2e-3)),
    # The evidence of Part III (compattn.evidence.PROTOCOL): the recipe tuned on absolute and
    # none only, the same budget for every variant, three pre-training seeds.
    "cpu": Profile(
        "cpu", model=dict(d_model=128, n_heads=4, n_layers=2, d_ff=512, max_len=64, dropout=0.0),
        pretrain=TrainConfig(steps=2000, batch_size=32, lr=2e-3, warmup=0.05, eval_every=100,
                             eval_batches=16, checkpoint_every=200),
        finetune=TrainConfig(steps=100, batch_size=32, lr=1e-3, warmup=0.1, eval_every=50,
                             eval_batches=4, checkpoint_every=100),
        data="full", tokenizer="auto"),
    "gpu": Profile(
        # steps are planned from measured throughput by the GPU command (the same for every
        # variant); these are the defaults when it does not override them
        "gpu", model=dict(d_model=256, n_heads=4, n_layers=4, d_ff=1024, max_len=128, dropout=0.0),
        pretrain=TrainConfig(steps=4000, batch_size=128, lr=1e-3, warmup=0.05, eval_every=250,
                             eval_batches=16, checkpoint_every=500),
        finetune=TrainConfig(steps=400, batch_size=64, lr=3e-4, warmup=0.1, eval_every=100,
                             eval_batches=8, checkpoint_every=400),
        data="full", tokenizer="auto"),
}


def get_profile(name: str | None = None) -> Profile:
    """A profile by name; ``None`` means ``current_profile()``."""
    name = name or current_profile()
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of {tuple(PROFILES)}")
    return PROFILES[name]


def current_profile() -> str:
    """The profile named by ``COMPATTN_PROFILE`` (default ``tiny``)."""
    name = os.environ.get("COMPATTN_PROFILE", "tiny")
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r} in COMPATTN_PROFILE; choose one of {tuple(PROFILES)}")
    return name


def resolve_device(device: str = "auto") -> str:
    """``auto`` -> ``cuda`` when a GPU is present, else ``cpu``."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:n]', got {device!r}")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} asked for, but torch {torch.__version__} sees no CUDA device here; "
                             "use --device cpu (or auto)")
        index = device.partition(":")[2]
        if index and (not index.isdigit() or int(index) >= torch.cuda.device_count()):
            raise ValueError(f"device {device!r}: there are {torch.cuda.device_count()} CUDA devices here")
    return device


__all__ = ["TrainConfig", "Profile", "PROFILES", "get_profile", "current_profile", "resolve_device", "replace"]

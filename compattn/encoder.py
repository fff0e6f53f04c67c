"""A BERT-style encoder around any registered token mixer.

    tokens -> embeddings (+ learned absolute positions, only if the mixer wants them)
           -> N x [ mixer, feed-forward ]   (pre-LN by default; post-LN as in BERT)
           -> masked-LM head (decoder tied to the token embeddings) | classification head
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .mixers.base import DROPOUT
from .registry import SIZE, build, entry, table


@dataclass(frozen=True)
class EncoderConfig:
    variant: str = "absolute"
    vocab_size: int = 8000
    d_model: int = 128
    n_heads: int = 4
    n_layers: int = 2
    d_ff: int = 512
    max_len: int = 128
    dropout: float = 0.1
    norm: str = "pre"                 # "pre" (stable, default) or "post" (BERT)
    pooling: str = "cls"              # classification head reads [CLS] or the mean of real tokens
    n_classes: int = 2
    absolute_positions: bool | None = None   # None: whatever the variant wants
    position_init: str = "normal"     # a learned position table starts as N(0, 0.02) noise or as sinusoids
    mixer_options: dict = field(default_factory=dict)

    def __post_init__(self):
        entry(self.variant)  # unknown variant -> ValueError listing the valid names
        if self.norm not in ("pre", "post"):
            raise ValueError(f"norm must be 'pre' or 'post', got {self.norm!r}")
        if self.pooling not in ("cls", "mean"):
            raise ValueError(f"pooling must be 'cls' or 'mean', got {self.pooling!r}")
        if self.position_init not in ("normal", "sinusoid"):
            raise ValueError(f"position_init must be 'normal' or 'sinusoid', got {self.position_init!r}")
        for name in ("vocab_size", "d_model", "n_heads", "n_layers", "d_ff", "max_len", "n_classes"):
            SIZE.check(name, getattr(self, name))
        DROPOUT.check("dropout", self.dropout)

    def to_dict(self) -> dict:
        return asdict(self)


class Block(nn.Module):
    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.mixer = build(cfg.variant, cfg.d_model, cfg.n_heads, cfg.max_len, **cfg.mixer_options)
        self.ff = nn.Sequential(nn.Linear(cfg.d_model, cfg.d_ff), nn.GELU(), nn.Linear(cfg.d_ff, cfg.d_model))
        self.norm1, self.norm2 = nn.LayerNorm(cfg.d_model), nn.LayerNorm(cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)
        self.pre_norm = cfg.norm == "pre"

    def forward(self, x, pad_mask=None):
        if self.pre_norm:
            x = x + self.drop(self.mixer(self.norm1(x), pad_mask))
            return x + self.drop(self.ff(self.norm2(x)))
        x = self.norm1(x + self.drop(self.mixer(x, pad_mask)))
        return self.norm2(x + self.drop(self.ff(x)))


class Encoder(nn.Module):
    """Token ids (B, T) -> hidden states (B, T, D); ``mlm_logits`` and ``classify`` on top."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.cfg = cfg
        self.token_embedding = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        wants_positions = entry(cfg.variant).absolute_positions
        use_positions = wants_positions if cfg.absolute_positions is None else cfg.absolute_positions
        self.position_embedding = nn.Embedding(cfg.max_len, cfg.d_model) if use_positions else None
        self.embedding_norm = nn.LayerNorm(cfg.d_model)
        self.final_norm = nn.LayerNorm(cfg.d_model) if cfg.norm == "pre" else nn.Identity()
        self.drop = nn.Dropout(cfg.dropout)
        # masked-LM head: transform, then a decoder tied to the token embeddings
        self.mlm_transform = nn.Sequential(nn.Linear(cfg.d_model, cfg.d_model), nn.GELU(),
                                           nn.LayerNorm(cfg.d_model))
        self.mlm_bias = nn.Parameter(torch.zeros(cfg.vocab_size))
        self.classifier = nn.Sequential(nn.Linear(cfg.d_model, cfg.d_model), nn.Tanh(),
                                        nn.Dropout(cfg.dropout), nn.Linear(cfg.d_model, cfg.n_classes))
        self.apply(self._init_weights)
        if self.position_embedding is not None and cfg.position_init == "sinusoid":
            with torch.no_grad():
                self.position_embedding.weight.copy_(sinusoid_table(cfg.max_len, cfg.d_model, std=0.02))
        for block in self.blocks:       # tables the variant declares zero start at zero
            _reset_position_tables(block.mixer, cfg.variant)

    @staticmethod
    def _init_weights(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)

    def forward(self, ids: torch.Tensor, pad_mask: torch.Tensor | None = None) -> torch.Tensor:
        if ids.dim() != 2:
            raise ValueError(f"ids must be (batch, time) token ids, got shape {tuple(ids.shape)}")
        T = ids.shape[1]
        x = self.token_embedding(ids)
        if self.position_embedding is not None:
            if T > self.cfg.max_len:
                raise ValueError(f"sequence length {T} exceeds max_len={self.cfg.max_len} "
                                 f"(learned absolute positions)")
            x = x + self.position_embedding(torch.arange(T, device=ids.device))
        x = self.drop(self.embedding_norm(x))
        for block in self.blocks:
            x = block(x, pad_mask)
        return self.final_norm(x)

    def mlm_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.mlm_transform(hidden) @ self.token_embedding.weight.T + self.mlm_bias

    def classify(self, hidden: torch.Tensor, pad_mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.cfg.pooling == "cls" or pad_mask is None:
            pooled = hidden[:, 0] if self.cfg.pooling == "cls" else hidden.mean(1)
        else:
            weights = pad_mask[..., None].to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1)
        return self.classifier(pooled)

    def parameter_counts(self) -> dict:
        return parameter_counts(self)


def sinusoid_table(max_len: int, d_model: int, std: float | None = None) -> torch.Tensor:
    """Vaswani et al.'s positions: entry (t, 2i) = sin(t / 10000^(2i/d)), (t, 2i+1) = cos(...).
    With ``std`` the table is scaled to that standard deviation (the token embeddings' scale), so
    that a learned table can start from it: neighbouring positions start alike."""
    t = torch.arange(max_len, dtype=torch.float64)[:, None]
    rate = 10000.0 ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)
    table = torch.zeros(max_len, d_model, dtype=torch.float64)
    table[:, 0::2] = torch.sin(t * rate)
    table[:, 1::2] = torch.cos(t * rate[: d_model // 2])
    if std is not None:
        table = table * (std / table.std())
    return table.float()


def _reset_position_tables(mixer, variant: str):
    """Undo the encoder's N(0, 0.02) init on the tables the variant declares zero at the start
    (``registry.Entry.zero_init``: T5's bucket biases, composite's fixed kernel)."""
    for path in entry(variant).zero_init:
        value = table(mixer, path)
        if value is not None:
            nn.init.zeros_(value)


def parameter_counts(model: nn.Module) -> dict:
    """Trainable parameters: total, in the token mixers, and in position tables."""
    total = sum(p.numel() for p in model.parameters() if p.requires_grad)
    mixers = [m for m in model.modules() if hasattr(m, "uses_absolute_positions")]
    in_mixers = sum(p.numel() for m in mixers for p in m.parameters() if p.requires_grad)
    positions = model.position_embedding.weight.numel() if getattr(model, "position_embedding", None) is not None else 0
    return {"total": total, "mixers": in_mixers, "absolute_positions": positions}


def mixer_parameter_count(name: str, d_model: int = 256, n_heads: int = 4, max_len: int = 128, **opts) -> int:
    """Trainable parameters of one token mixer (one layer)."""
    mixer = build(name, d_model, n_heads, max_len, **opts)
    return sum(p.numel() for p in mixer.parameters() if p.requires_grad)


def masked_lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over the positions whose label is not -100."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)

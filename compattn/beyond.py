"""Beyond the paper: two questions the paper does not ask of its variants.

1. **Length generalisation.**  Pre-train masked-LM on blocks of ``train_length`` tokens and
   evaluate on held-out text cut into blocks of 1, 2 and 4 times that length.  Every model is
   built with room for the longest length, so learned absolute positions *run* there -- but the
   rows past ``train_length`` never received a gradient.  The held-out text and the masked
   targets are identical at every length (the same spans, masked once, then cut into shorter
   blocks), so a change of loss is caused by the context length alone.
2. **Position probes.**  Small encoders trained from scratch on the synthetic tasks of
   :mod:`compattn.data.probes` (a fixed offset, a local n-gram, bracket balance, content
   lookup) and tested at the training length and longer.

``python -m compattn beyond --profile small --out compattn/results/beyond-small`` runs both for
the chosen variants; like the sweep, it writes one JSON record per run and resumes.
"""
from __future__ import annotations

import math
from dataclasses import asdict, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from .config import get_profile
from .encoder import Encoder, EncoderConfig
from .train import (Objective, _record, cut_blocks, learned_kernels, mask_tokens, run, token_streams,
                    train_probe, write_record)

#: one variant per kind of length behaviour: learned absolute rows, no positions, rotations,
#: fixed slopes, learned buckets, clipped relative tables, a convolution, ConvBERT's span convolution
LENGTH_VARIANTS = ("absolute", "none", "rope", "alibi", "t5", "composite", "lightconv", "convbert")
#: probe -> (training length, test lengths); assoc_recall has 8 keys, so at most 18 symbols
PROBE_LENGTHS = {"copy_offset": (32, (32, 64, 128)), "local_ngram": (32, (32, 64, 128)),
                 "brackets": (32, (32, 64, 128)), "assoc_recall": (18, (18,))}
HELD_OUT_FRACTION = 0.05


def held_out_split(streams, fraction: float = HELD_OUT_FRACTION):
    """Split every document's token stream into a training head and a held-out tail."""
    heads, tails = [], []
    for ids in streams:
        cut = len(ids) - int(len(ids) * fraction)
        heads.append(ids[:cut])
        tails.append(ids[cut:])
    return heads, tails


def evaluation_spans(tails, span: int, limit: int) -> torch.Tensor:
    """Up to ``limit`` consecutive ``span``-token pieces of held-out text (complete pieces only)."""
    spans = [ids[start:start + span] for ids in tails for start in range(0, len(ids) - span + 1, span)]
    if not spans:
        raise ValueError(f"the held-out text has no piece of {span} tokens; use shorter eval lengths")
    return torch.tensor(spans[:limit], dtype=torch.long)


def blocks_at(inputs: torch.Tensor, labels: torch.Tensor, length: int, cls: int, sep: int, pad: int):
    """Cut masked spans (n, S) into ``[CLS] body [SEP]`` blocks of ``length`` (the last one padded).

    Labels get ``-100`` on the special and pad positions, so every length scores the same targets.
    """
    body = length - 2
    pieces_in, pieces_lab = [], []
    for start in range(0, inputs.shape[1], body):
        chunk_in, chunk_lab = inputs[:, start:start + body], labels[:, start:start + body]
        n, width = chunk_in.shape
        pad_cols = body - width
        frame = lambda first, last, fill, x: torch.cat(  # noqa: E731
            [torch.full((n, 1), first), x, torch.full((n, 1), last), torch.full((n, pad_cols), fill)], dim=1)
        pieces_in.append(frame(cls, sep, pad, chunk_in))
        pieces_lab.append(frame(-100, -100, -100, chunk_lab))
    return torch.cat(pieces_in), torch.cat(pieces_lab)


@torch.no_grad()
def mlm_at_lengths(model: Encoder, inputs, labels, lengths, special: tuple[int, int, int], batch_size: int = 16):
    """Masked-LM loss, perplexity and accuracy of ``model`` on the same targets at every length."""
    model.eval()
    device = next(model.parameters()).device
    cls, sep, pad = special
    results = {}
    for length in lengths:
        x, y = blocks_at(inputs, labels, length, cls, sep, pad)
        loss_sum, correct, total = 0.0, 0, 0
        for start in range(0, len(x), batch_size):
            xb, yb = x[start:start + batch_size].to(device), y[start:start + batch_size].to(device)
            target = yb != -100
            logits = model.mlm_logits(model(xb, xb != pad)[target]).float()
            loss_sum += F.cross_entropy(logits, yb[target], reduction="sum").item()
            correct += (logits.argmax(-1) == yb[target]).sum().item()
            total += target.sum().item()
        results[str(length)] = {"loss": loss_sum / total, "perplexity": math.exp(loss_sum / total),
                                "accuracy": correct / total, "targets": total}
    return results


def length_run(variant: str, profile: str | None = None, *, seed: int = 0, out: Path | None = None,
               device: str = "auto", progress: bool = True, steps: int | None = None,
               train_length: int | None = None, eval_lengths=None, eval_spans: int | None = None,
               **model_overrides) -> dict:
    """Pre-train ``variant`` at ``train_length`` and evaluate masked-LM at every ``eval_lengths``.

    Budgets default to the profile's ``beyond`` settings.  Returns the run record (``kind="length"``,
    ``final["by_length"]``), written to ``out/length-<variant>-s<seed>.json`` when ``out`` is given.
    """
    from .data import load_corpus
    from .data.tokenizer import load_tokenizer, tokenizer_id

    prof = get_profile(profile)
    settings = prof.beyond
    train_length = train_length or settings["train_length"]
    eval_lengths = tuple(eval_lengths or settings["eval_lengths"])
    if min(eval_lengths) < 8 or train_length < 8:
        raise ValueError(f"lengths must be >= 8, got train {train_length}, eval {eval_lengths}")
    steps = steps or settings["steps"]
    cfg = replace(prof.pretrain, seed=seed, steps=steps, batch_size=settings["batch_size"],
                  lr=settings.get("lr", prof.pretrain.lr), eval_every=max(1, steps // 5), checkpoint_every=100)
    tokenizer = load_tokenizer(prof.tokenizer)
    special = tuple(tokenizer.token_to_id(t) for t in ("[CLS]", "[SEP]", "[PAD]"))
    mask_id, vocab = tokenizer.token_to_id("[MASK]"), tokenizer.get_vocab_size()
    heads, tails = held_out_split(token_streams(load_corpus(prof.data), tokenizer))
    train_blocks = cut_blocks(heads, tokenizer, train_length)
    g = torch.Generator().manual_seed(4321)
    spans = evaluation_spans(tails, max(eval_lengths) - 2, eval_spans or settings["eval_spans"])
    eval_inputs, eval_labels = mask_tokens(spans, g, vocab, mask_id, list(special))
    torch.manual_seed(seed)
    model = Encoder(EncoderConfig(variant=variant, vocab_size=vocab,
                                  **{**prof.model, **settings.get("model", {}), "max_len": max(eval_lengths),
                                     **model_overrides}))

    def batch_fn(step, rank, world):
        g = torch.Generator().manual_seed(seed * 1_000_003 + step)
        ids = train_blocks[torch.randint(len(train_blocks), (cfg.batch_size,), generator=g)[rank::world]]
        inputs, labels = mask_tokens(ids, g, vocab, mask_id, list(special))
        return inputs, ids != special[2], labels

    quick = (eval_inputs[:8], eval_labels[:8])
    result = run(Objective(model, "mlm"), cfg, batch_fn,
                 lambda net: mlm_at_lengths(net, *quick, (train_length,), special)[str(train_length)],
                 device=device, checkpoint=Path(out) / f"length-{variant}-s{seed}.pt" if out else None,
                 progress=progress, desc=f"length {variant}", tokens_per_step=cfg.batch_size * train_length)
    by_length = mlm_at_lengths(model, eval_inputs, eval_labels, eval_lengths, special)
    record = _record("length", variant, prof, seed, result, model,
                     {"train": asdict(cfg), "train_length": train_length, "eval_lengths": list(eval_lengths),
                      "data": {"source": prof.data, "train_blocks": len(train_blocks), "eval_spans": len(spans),
                               "held_out_fraction": HELD_OUT_FRACTION, "tokenizer": tokenizer_id(tokenizer)},
                      "kernels": learned_kernels(model), "final": {"by_length": by_length},
                      "plateau": _plateau(result["history"], train_blocks, quick[1], vocab, special, cfg)})
    if out:
        write_record(record, Path(out) / f"length-{variant}-s{seed}.json")
        (Path(out) / f"length-{variant}-s{seed}.pt").unlink(missing_ok=True)
    return record


def _plateau(history, train_blocks, targets, vocab, special, cfg) -> dict:
    """Where a length run left the unigram plateau (the rule of ``compattn.evidence``)."""
    from .protocol import plateau_exit, unigram_baseline

    base = unigram_baseline(train_blocks, targets, vocab, special)
    return plateau_exit(history["step"], [d["loss"] for d in history["dev"]], base["loss"], cfg.steps)


def off_plateau(records) -> dict:
    """``{variant: True/False/None}`` for length records: left the plateau in time, or ``None``
    when the record predates the plateau rule (then nothing is claimed from it)."""
    return {r["variant"]: (r["plateau"]["left_in_time"] if "plateau" in r else None)
            for r in records if r["kind"] == "length"}


def plan(variants, probes, seeds=(0,)):
    """Run names in order: every variant's length run, then every probe for every variant."""
    runs = [("length", v, s, None) for s in seeds for v in variants]
    return runs + [("probe", v, s, p) for s in seeds for p in probes for v in variants]


def run_beyond(variants=LENGTH_VARIANTS, probes=tuple(PROBE_LENGTHS), profile: str | None = None, *,
               out: Path, seeds=(0,), device: str = "auto", progress: bool = True) -> list[str]:
    """Run (or resume) both experiments; returns the names of the runs done in this call."""
    from .sweep import run_resumable

    prof = get_profile(profile)

    def execute(kind, variant, seed, probe):
        if kind == "length":
            length_run(variant, prof.name, seed=seed, out=out, device=device, progress=progress)
            return
        train_length, test_lengths = PROBE_LENGTHS[probe]
        train_probe(variant, probe, train_length=train_length, test_lengths=test_lengths,
                    steps=prof.beyond["probe_steps"], lr=prof.beyond["probe_lr"], seed=seed, device=device,
                    progress=progress, profile=prof.name, out=out)

    return run_resumable(out, plan(variants, probes, seeds), run_name, execute, profile=prof.name,
                         desc=f"beyond ({prof.name})", progress=progress)


def run_name(kind: str, variant: str, seed: int, probe: str | None = None) -> str:
    return f"length-{variant}-s{seed}" if kind == "length" else f"probe-{probe}-{variant}-s{seed}"


def length_table(records) -> dict:
    """``{variant: {length: loss}}`` and the training length, from ``kind="length"`` records."""
    table, train_lengths = {}, set()
    for r in records:
        if r["kind"] == "length":
            table[r["variant"]] = {int(k): v["loss"] for k, v in r["final"]["by_length"].items()}
            train_lengths.add(r["train_length"])
    if len(train_lengths) > 1:
        raise ValueError(f"length records were trained at different lengths {sorted(train_lengths)}")
    return {"loss": table, "train_length": train_lengths.pop() if train_lengths else None}


def probe_table(records) -> dict:
    """``{probe: {variant: {length: mean accuracy over seeds (None where it cannot run)}}}``."""
    values: dict = {}
    for r in records:
        if r["kind"] != "probe":
            continue
        for length, acc in r["final"]["accuracy"].items():
            values.setdefault(r["probe"], {}).setdefault(r["variant"], {}).setdefault(int(length), []).append(acc)
    return {p: {v: {n: (None if any(a is None for a in accs) else sum(accs) / len(accs))
                    for n, accs in by_len.items()} for v, by_len in by_var.items()}
            for p, by_var in values.items()}


__all__ = ["LENGTH_VARIANTS", "PROBE_LENGTHS", "held_out_split", "evaluation_spans", "blocks_at",
           "mlm_at_lengths", "length_run", "plan", "run_beyond", "length_table", "probe_table",
           "off_plateau", "position_free_table"]


def position_free_table(records) -> dict:
    """``{probe: {length: accuracy}}`` of the position-free baseline
    (``compattn.data.probes.position_free_baseline``) on the very test sets of the records."""
    from .data.probes import make_probe, position_free_baseline

    table: dict = {}
    for r in records:
        if r["kind"] != "probe" or r["probe"] in table:
            continue
        table[r["probe"]] = {}
        for length in map(int, r["final"]["accuracy"]):
            ids, labels, _ = make_probe(r["probe"], r["n_test"], length, seed=r["seed"] + 1000 + length,
                                        **r.get("probe_options", {}))
            table[r["probe"]][length] = position_free_baseline(r["probe"], ids, labels)
    return table

"""One training loop for masked-LM pre-training and fine-tuning.

* AdamW (no decay on biases and norms), linear warm-up then linear decay, gradient clipping;
* batches and masks are drawn from generators seeded by (seed, step), so a run is
  deterministic on a CPU and a resumed run continues exactly where it stopped;
* checkpoints and records carry the sha256 of their content, checked on load, and are written
  atomically into an output folder that one process at a time may write (``compattn.files``);
  checkpoints are loaded with ``weights_only=True``; a killed run resumes to the same final
  weights and the same curves (the running training-loss average is in the checkpoint);
* ``device="auto"`` picks CUDA, where bf16 autocast and ``torch.compile`` are switched on;
* under ``torchrun`` every process takes its slice of each batch (DistributedDataParallel,
  gloo on CPU, NCCL on CUDA, each process on its own GPU) and only rank 0 writes;
* a run knows what made it: its *settings* (profile, model and training configuration,
  tokenizer id, data id, number of processes, the pre-training it started from) are in its
  checkpoint and its record, and resuming with other settings is refused;
* SIGTERM and SIGINT stop a run at the end of the current step, with a checkpoint (exit
  codes 143 and 130 on the command line).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import subprocess
import threading
import time
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from .config import TrainConfig, get_profile, resolve_device
from .encoder import Encoder, EncoderConfig, masked_lm_loss, parameter_counts
from .files import HASH_KEY, check_hash, content_hash, folder_lock, json_hash, write_atomic
from .progress import tqdm

MASK_RATE = 0.15


# --- data ---------------------------------------------------------------------------------------
def token_streams(documents, tokenizer) -> list[list[int]]:
    """Each document (a list of paragraphs) as one list of token ids, without special tokens."""
    return [[i for enc in tokenizer.encode_batch(doc, add_special_tokens=False) for i in enc.ids]
            for doc in documents]


def cut_blocks(streams, tokenizer, seq_len: int) -> torch.Tensor:
    """Blocks ``[CLS] ... [SEP]`` of length ``seq_len`` cut from each token stream (the tail padded;
    a tail shorter than a quarter block is dropped)."""
    cls, sep, pad = (tokenizer.token_to_id(t) for t in ("[CLS]", "[SEP]", "[PAD]"))
    body = seq_len - 2
    blocks = []
    for ids in streams:
        for start in range(0, len(ids), body):
            chunk = ids[start:start + body]
            if len(chunk) < body // 4:
                continue
            blocks.append([cls] + chunk + [sep] + [pad] * (body - len(chunk)))
    if not blocks:
        raise ValueError("the corpus gave no training blocks (is it empty?)")
    return torch.tensor(blocks, dtype=torch.long)


def mlm_blocks(documents, tokenizer, seq_len: int) -> torch.Tensor:
    """Token blocks ``[CLS] ... [SEP]`` of length ``seq_len`` cut from each document (padded)."""
    return cut_blocks(token_streams(documents, tokenizer), tokenizer, seq_len)


def mask_tokens(ids: torch.Tensor, generator: torch.Generator, vocab_size: int, mask_id: int,
                special_ids: list[int], rate: float = MASK_RATE):
    """BERT masking: ``rate`` (15 %) of the real tokens are targets; of those 80 % [MASK], 10 %
    random, 10 % kept."""
    can_mask = ~torch.isin(ids, torch.tensor(special_ids))
    chosen = (torch.rand(ids.shape, generator=generator) < rate) & can_mask
    labels = torch.where(chosen, ids, torch.full_like(ids, -100))
    action = torch.rand(ids.shape, generator=generator)
    random_ids = torch.randint(vocab_size, ids.shape, generator=generator)
    inputs = torch.where(chosen & (action < 0.8), torch.full_like(ids, mask_id), ids)
    inputs = torch.where(chosen & (action >= 0.8) & (action < 0.9), random_ids, inputs)
    return inputs, labels


# --- does a model read word order? ----------------------------------------------------------------
def shuffle_within_blocks(inputs: torch.Tensor, labels: torch.Tensor, movable: torch.Tensor,
                          generator: torch.Generator):
    """Each row's ``movable`` positions (its text, not [CLS], [SEP] or padding) put in a random
    order, the same order for the inputs and the targets: every masked token keeps its own
    target and the same multiset of visible neighbours; only where they stand changes."""
    inputs, labels = inputs.clone(), labels.clone()
    for row in range(len(inputs)):
        where = movable[row].nonzero().squeeze(1)
        order = where[torch.randperm(len(where), generator=generator)]
        inputs[row, where], labels[row, where] = inputs[row, order], labels[row, order]
    return inputs, labels


def mlm_eval_set(blocks: torch.Tensor, batches: int, batch_size: int, vocab_size: int, mask_id: int,
                 special_ids: list[int], seed: int = 12345) -> list[dict]:
    """The fixed dev batches of a pre-training: blocks drawn with ``seed``, masked at the standard
    15 % whatever the training mask rate (so dev losses of two recipes compare), each with a
    shuffled twin (:func:`shuffle_within_blocks`)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(batches):
        ids = blocks[torch.randint(len(blocks), (batch_size,), generator=g)]
        inputs, labels = mask_tokens(ids, g, vocab_size, mask_id, special_ids)
        movable = ~torch.isin(ids, torch.tensor(special_ids))
        shuffled, shuffled_labels = shuffle_within_blocks(inputs, labels, movable, g)
        out.append({"inputs": inputs, "labels": labels, "pad_mask": ids != 0,
                    "shuffled": shuffled, "shuffled_labels": shuffled_labels})
    return out


def _mlm_sums(net, batches, inputs_key: str, labels_key: str):
    device = next(net.parameters()).device
    loss_sum, correct, total = 0.0, 0, 0
    for batch in batches:
        inputs, labels = batch[inputs_key].to(device), batch[labels_key].to(device)
        target = labels != -100
        logits = net.mlm_logits(net(inputs, batch["pad_mask"].to(device))[target]).float()
        loss_sum += F.cross_entropy(logits, labels[target], reduction="sum").item()
        correct += (logits.argmax(-1) == labels[target]).sum().item()
        total += target.sum().item()
    return loss_sum / total, correct / total


def mlm_dev_metrics(net, batches: list[dict]) -> dict:
    """Dev masked-LM loss, perplexity and accuracy, and ``order_gap``: the loss on the same
    blocks with their text shuffled (:func:`shuffle_within_blocks`) minus the loss as written,
    in nats.  A model that ignores word order (``none``: attention without positions is
    permutation-equivariant) has a gap of exactly zero; the more a model's predictions rest on
    where its context stands, the larger the gap."""
    loss, accuracy = _mlm_sums(net, batches, "inputs", "labels")
    shuffled_loss, _ = _mlm_sums(net, batches, "shuffled", "shuffled_labels")
    return {"loss": loss, "perplexity": math.exp(loss), "accuracy": accuracy,
            "shuffled_loss": shuffled_loss, "order_gap": shuffled_loss - loss}


def encode_task(rows, tokenizer, seq_len: int, labels: list[str], regression: bool = False):
    """Padded ids (N, L), pad mask and targets for a classification or regression task."""
    texts = [r["text"] for r in rows]
    if "text_b" in rows[0]:
        encodings = tokenizer.encode_batch(list(zip(texts, [r["text_b"] for r in rows])))
    else:
        encodings = tokenizer.encode_batch(texts)
    # too long: keep the first seq_len - 1 pieces and the final [SEP]
    ids = [e.ids if len(e.ids) <= seq_len else e.ids[:seq_len - 1] + [e.ids[-1]] for e in encodings]
    longest = max(map(len, ids))
    padded = torch.zeros(len(ids), longest, dtype=torch.long)
    for i, seq in enumerate(ids):
        padded[i, :len(seq)] = torch.tensor(seq)
    if regression:
        targets = torch.tensor([float(r["score"]) for r in rows])
    else:
        index = {label: i for i, label in enumerate(labels)}
        targets = torch.tensor([index[str(r["label"])] for r in rows])
    return padded, padded != 0, targets


class Objective(torch.nn.Module):
    """The loss of one training step, as a module so that DDP sees the heads used in forward."""

    def __init__(self, encoder: Encoder, kind: str, regression: bool = False):
        super().__init__()
        self.encoder, self.kind, self.regression = encoder, kind, regression

    def forward(self, inputs, pad_mask, targets):
        hidden = self.encoder(inputs, pad_mask)
        if self.kind == "mlm":
            if torch.compiler.is_compiling():
                # fixed shapes for the compiler (boolean indexing would break the graph): every
                # position, non-targets ignored -- the same mean cross-entropy
                return masked_lm_loss(self.encoder.mlm_logits(hidden), targets)
            # eager: the vocabulary projection is the largest matmul of a small encoder, so run it
            # only on the ~15 % of positions that are targets (the same mean cross-entropy)
            target = targets != -100
            return masked_lm_loss(self.encoder.mlm_logits(hidden[target]), targets[target])
        logits = self.encoder.classify(hidden, pad_mask).float()
        return F.mse_loss(logits[:, 0], targets.float()) if self.regression else F.cross_entropy(logits, targets)


# --- tokenised data, once per process ------------------------------------------------------------
_ENCODED: dict = {}


def encoded_once(key: tuple, tokenizer, encode):
    """``encode()``, remembered per data directory and tokenizer: a sweep runs hundreds of
    fine-tunings in one process, and tokenising a task's splits took longer than training on
    it at the small profile.  Callers index into the result and never write to it."""
    from .data import data_dir
    from .data.tokenizer import tokenizer_id

    key = (str(data_dir()), tokenizer_id(tokenizer), *key)
    if key not in _ENCODED:
        _ENCODED[key] = encode()
    return _ENCODED[key]


# --- checkpoints ---------------------------------------------------------------------------------
def save_checkpoint(path: Path, state: dict):
    """Write ``state`` with the sha256 of its content (``content_sha256``), atomically: a crash
    mid-write leaves the previous checkpoint intact.  Only rank 0 of a distributed run writes."""
    if not is_writer():
        return
    import io

    path = Path(path)
    state = {key: value for key, value in state.items() if key != HASH_KEY}
    buffer = io.BytesIO()
    torch.save({**state, HASH_KEY: content_hash(state)}, buffer)
    with folder_lock(path.parent, f"checkpoint {path.name}"):
        write_atomic(path, buffer.getvalue())


def load_checkpoint(path: Path) -> dict:
    """A checkpoint's state, once its content matches the sha256 written with it (a changed byte
    in the weights is refused, naming the file)."""
    if not Path(path).exists():
        raise ValueError(f"no such file: checkpoint {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated, not a torch file, or unsafe content
        raise ValueError(f"checkpoint {path} is corrupted or not a compattn checkpoint ({type(err).__name__}: "
                         f"{str(err)[:200]}); delete it to start the run over") from None
    if not isinstance(state, dict) or "model" not in state or "encoder" not in state:
        raise ValueError(f"checkpoint {path} is not a compattn checkpoint (no model/encoder entries)")
    if HASH_KEY not in state:
        raise ValueError(f"checkpoint {path} carries no content hash (made by an older version); delete it to "
                         "start the run over")
    found = state.pop(HASH_KEY)
    check_hash(found, content_hash(state), path, "checkpoint", "delete it to start the run over")
    return state


def check_compatible(state: dict, cfg: EncoderConfig, path):
    saved = state["encoder"]
    for key in ("variant", "vocab_size", "d_model", "n_heads", "n_layers", "d_ff"):
        if saved.get(key) != getattr(cfg, key):
            raise ValueError(f"checkpoint {path} was made with {key}={saved.get(key)!r}, "
                             f"but this run uses {key}={getattr(cfg, key)!r}")


# --- settings: what defines a run ------------------------------------------------------------------
def _jsonable(value):
    return json.loads(json.dumps(value, sort_keys=True))


def settings_id(settings: dict) -> str:
    """A short hash of a run's settings (a fine-tuning names its pre-training by it)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def settings_differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    """``["train.steps: 100 -> 300", ...]``: every leaf where two settings differ."""
    diffs = []
    for key in sorted(set(old) | set(new), key=str):
        a, b = old.get(key, "(none)"), new.get(key, "(none)")
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += settings_differences(a, b, f"{prefix}{key}.")
        elif a != b:
            diffs.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return diffs


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def _train_config(base: TrainConfig, seed: int, steps, train_overrides) -> TrainConfig:
    if steps is not None and (not isinstance(steps, int) or steps < 1):
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    return replace(base, seed=seed, **({"steps": steps} if steps is not None else {}), **(train_overrides or {}))


def _pretrain_setup(variant, profile, seed, steps, train_overrides, model_overrides, protocol=None):
    from .data import data_id
    from .data.tokenizer import load_tokenizer, tokenizer_id

    prof = get_profile(profile)
    cfg = _train_config(prof.pretrain, seed, steps, train_overrides)
    tokenizer = load_tokenizer(prof.tokenizer)
    enc_cfg = EncoderConfig(variant=variant, vocab_size=tokenizer.get_vocab_size(),
                            **{**prof.model, **model_overrides})
    settings = _jsonable({"kind": "pretrain", "variant": variant, "profile": prof.name, "seed": seed,
                          "encoder": asdict(enc_cfg), "train": asdict(cfg), "tokenizer": tokenizer_id(tokenizer),
                          "data": data_id(prof.data), "world_size": world_size(),
                          **_protocol_entry(protocol)})
    return prof, cfg, tokenizer, enc_cfg, settings


def _protocol_entry(protocol) -> dict:
    """``{"protocol_version": n}`` for a run of an evidence protocol, ``{}`` otherwise (the
    settings of runs made before protocol v3, which carry no version, stay as they were)."""
    if protocol is None:
        return {}
    if isinstance(protocol, bool) or not isinstance(protocol, int):
        raise ValueError(f"protocol is a protocol version (an int) or None, got {protocol!r}")
    return {"protocol_version": protocol}


def pretrain_settings(variant: str, profile: str | None = None, seed: int = 0, steps: int | None = None,
                      train_overrides: dict | None = None, protocol: int | None = None, **model_overrides) -> dict:
    """The settings :func:`pretrain` would run with (nothing is trained): profile, encoder and
    training configuration, tokenizer id, data id and number of processes (``WORLD_SIZE``), and
    the evidence protocol's version when ``protocol`` is given."""
    return _pretrain_setup(variant, profile, seed, steps, train_overrides, model_overrides, protocol)[-1]


_PRETRAINED: dict = {}


def pretrained_settings(path) -> dict:
    """The settings of the pre-training behind a checkpoint (or, when the checkpoint is gone, its
    record ``<name>.json`` beside it); remembered per (path, mtime, size)."""
    path = Path(path)
    for candidate in (path, path.with_suffix(".json")):
        if not candidate.exists():
            continue
        stat = candidate.stat()
        key = (str(candidate), stat.st_mtime_ns, stat.st_size)
        if key not in _PRETRAINED:
            if candidate.suffix == ".json":
                from .records import read_record

                try:
                    found = read_record(candidate, validate=False).get("settings")
                except (json.JSONDecodeError, UnicodeDecodeError):
                    found = None
            else:
                found = load_checkpoint(candidate).get("settings")
            if found is None:
                raise ValueError(f"{candidate} holds no settings (made by an older version); pre-train again")
            _PRETRAINED[key] = found
        return _PRETRAINED[key]
    raise ValueError(f"no such file: pre-training checkpoint {path}")


def _pretrained_entry(pretrained) -> dict | None:
    if pretrained is None:
        return None
    if isinstance(pretrained, (str, Path)):
        found = pretrained_settings(pretrained)
        return {"id": settings_id(found), "seed": found["seed"], "variant": found["variant"],
                "tokenizer": found["tokenizer"]}
    return {"id": "in-memory model", "seed": None, "variant": pretrained.cfg.variant, "tokenizer": None}


def epoch_plan(task: str, n_rows: int, epochs: int, max_examples: int, batch_size: int,
               rows: list[int] | None = None) -> dict:
    """Fine-tuning by epochs over a capped subset (protocol v3): which rows
    (:func:`compattn.protocol.finetune_subset`, or ``rows`` when the caller has drawn them
    already) and how many steps ``epochs`` passes over them take at ``batch_size``; what goes
    into the run's settings as ``by_epochs`` (the rows as their count and a sha256 of their
    indices)."""
    from .protocol import FINETUNE_V3, epoch_steps, finetune_subset

    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    if rows is None:
        rows = finetune_subset(task, n_rows, max_examples)
    return {"epochs": epochs, "max_examples": max_examples, "examples": len(rows), "of": n_rows,
            "rows_sha256": hashlib.sha256(json.dumps(rows).encode()).hexdigest(),
            "rule": FINETUNE_V3["subset"], "batch_size": batch_size,
            "steps": epoch_steps(len(rows), epochs, batch_size)}


def epoch_batch(rows: torch.Tensor, step: int, seed: int, batch_size: int) -> torch.Tensor:
    """The training rows of ``step`` when fine-tuning by epochs: epoch ``step // per_epoch``
    visits ``rows`` in an order drawn from ``seed`` and the epoch, ``batch_size`` at a time (the
    epoch's last batch takes what is left), so each epoch sees every row exactly once."""
    per_epoch = -(-len(rows) // batch_size)
    epoch, i = divmod(step, per_epoch)
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return rows[torch.randperm(len(rows), generator=g)][i * batch_size:(i + 1) * batch_size]


def _finetune_setup(variant, task, pretrained, profile, seed, regression, steps, train_overrides, model_overrides,
                    epochs=None, max_examples=None, protocol=None):
    from .data import data_id, task_info
    from .data.tokenizer import load_tokenizer, tokenizer_id
    from .protocol import finetune_subset

    prof = get_profile(profile)
    cfg = _train_config(prof.finetune, seed, steps, train_overrides)
    if regression and task != "vader_sent":
        raise ValueError(f"regression is only defined for vader_sent (its human score), not {task!r}")
    tokenizer = load_tokenizer(prof.tokenizer)
    info = task_info(task, prof.data)
    labels = info["labels"]
    by_epochs = subset = None
    if epochs is not None or max_examples is not None:
        if epochs is None or max_examples is None:
            raise ValueError("fine-tuning by epochs needs both epochs and max_examples")
        subset = finetune_subset(task, info["counts"]["train"], max_examples)
        by_epochs = epoch_plan(task, info["counts"]["train"], epochs, max_examples, cfg.batch_size,
                               rows=subset)
        if steps is None and "steps" not in (train_overrides or {}):     # an explicit budget (a test's) wins
            cfg = replace(cfg, steps=by_epochs["steps"])
    enc_cfg = EncoderConfig(variant=variant, vocab_size=tokenizer.get_vocab_size(),
                            n_classes=1 if regression else len(labels), **{**prof.model, **model_overrides})
    origin = _pretrained_entry(pretrained)
    current = tokenizer_id(tokenizer)
    if origin and origin["tokenizer"] not in (None, current):
        raise ValueError(f"the pre-training {pretrained} was made with tokenizer {origin['tokenizer']}, but the "
                         f"{prof.name!r} profile now loads tokenizer {current}; fine-tune with the tokenizer it "
                         "was made with, or pre-train again")
    settings = _jsonable({"kind": "finetune", "variant": variant, "task": task, "regression": regression,
                          "profile": prof.name, "seed": seed, "encoder": asdict(enc_cfg), "train": asdict(cfg),
                          "tokenizer": current, "data": data_id(prof.data), "world_size": world_size(),
                          "pretrained": origin, **({"by_epochs": by_epochs} if by_epochs else {}),
                          **_protocol_entry(protocol)})
    return prof, cfg, tokenizer, info, subset, enc_cfg, settings


def finetune_settings(variant: str, task: str, pretrained=None, profile: str | None = None, seed: int = 0,
                      regression: bool = False, steps: int | None = None, train_overrides: dict | None = None,
                      epochs: int | None = None, max_examples: int | None = None, protocol: int | None = None,
                      **model_overrides) -> dict:
    """The settings :func:`finetune` would run with (nothing is trained); ``pretrained`` is a
    checkpoint path (its settings id and seed are part of them), an ``Encoder`` or ``None``."""
    return _finetune_setup(variant, task, pretrained, profile, seed, regression, steps, train_overrides,
                           model_overrides, epochs, max_examples, protocol)[-1]


# --- stopping on a signal ---------------------------------------------------------------------------
class Stopped(SystemExit):
    """A run stopped by SIGTERM / SIGINT after writing its checkpoint; ``code`` is 128 + signal."""


class _StopOnSignal:
    """While active (main thread only), SIGTERM and SIGINT only set a flag (and are passed to
    ``forward``, e.g. to worker processes); the loop checks it after each step, writes its
    checkpoint and raises :class:`Stopped`.  A second signal stops at once."""

    def __init__(self, active: bool, forward=None):
        self.active = active and threading.current_thread() is threading.main_thread()
        self.signum, self.previous, self.forward = 0, {}, forward

    def __enter__(self):
        if self.active:
            for sig in (signal.SIGTERM, signal.SIGINT):
                self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.forward is not None:
            self.forward(signum)
        if self.signum:            # a second signal: stop now, as before
            raise KeyboardInterrupt if signum == signal.SIGINT else SystemExit(128 + signum)
        self.signum = signum

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def raise_stopped(signum, frame):
    """A signal handler for a whole command (outside a training loop, which stops more gently):
    raise :class:`Stopped` where the signal lands, so that ``finally`` blocks remove temporary
    files and release the folder lock."""
    name = signal.Signals(signum).name
    print(f"{name} received: stopped; what was written is complete, run the same command again to continue",
          file=__import__("sys").stderr, flush=True)
    raise Stopped(128 + signum)


# --- the loop ------------------------------------------------------------------------------------
def _optimizer(model, cfg: TrainConfig):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.dim() < 2 or "norm" in name else decay).append(p)
    return torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)


def lr_at(step: int, cfg: TrainConfig) -> float:
    warm = max(1, int(cfg.warmup * cfg.steps))
    if step < warm:
        return cfg.lr * (step + 1) / warm
    return cfg.lr * max(0.0, (cfg.steps - step) / max(1, cfg.steps - warm))


def _distributed(device: str = "cpu"):
    """``(rank, world size)``; under ``torchrun`` the process group is started once, and on CUDA
    each process is put on its own GPU (``LOCAL_RANK``) before NCCL starts."""
    world = world_size()
    if world > 1 and not torch.distributed.is_initialized():
        cuda = device.startswith("cuda")
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        torch.distributed.init_process_group("nccl" if cuda else "gloo")
    rank = torch.distributed.get_rank() if world > 1 else 0
    return rank, world


def is_writer() -> bool:
    """Only rank 0 of a distributed run writes records and checkpoints or deletes files (before
    the process group starts, ``torchrun``'s ``RANK`` says which process that is)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank() == 0
    return int(os.environ.get("RANK", "0")) == 0


def allow_many_compiled_graphs():
    """Raise torch._dynamo's recompile limits: a sweep compiles many variants (and shapes) in one
    process, and past the default limit of 8 later ones silently run uncompiled."""
    import torch._dynamo

    config = torch._dynamo.config
    for name, value in (("recompile_limit", 256), ("cache_size_limit", 256),
                        ("accumulated_recompile_limit", 4096), ("accumulated_cache_size_limit", 4096)):
        if hasattr(config, name) and getattr(config, name) < value:
            setattr(config, name, value)


def git_commit() -> str:
    """HEAD's hash, with ``+dirty`` when the library's code differs from it (the results it is
    writing under ``compattn/results`` do not count).  A copy without git history (a GPU
    machine gets the working tree only) names its commit in ``COMPATTN_COMMIT``."""
    if os.environ.get("COMPATTN_COMMIT"):
        return os.environ["COMPATTN_COMMIT"]
    here = Path(__file__).parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=here,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", ".", ":(exclude)results"], capture_output=True, text=True,
                               cwd=here, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (head + ("+dirty" if dirty else "")) if head else "unknown"


def run(objective: Objective, cfg: TrainConfig, batch_fn, eval_fn, *, device="auto",
        checkpoint: Path | None = None, progress=True, desc="train", tokens_per_step=0,
        settings: dict | None = None, fast_cuda: bool = True) -> dict:
    """Train ``objective.encoder`` for ``cfg.steps``; resume from ``checkpoint`` if it exists.

    ``batch_fn(step, rank, world)`` returns the batch ``(inputs, pad_mask, targets)`` of a step
    (deterministic in ``step``); ``eval_fn(encoder)`` returns a dict of dev metrics.
    ``settings`` (what defines the run) go into the checkpoint; a checkpoint made with other
    settings is refused, naming the differences.  With a checkpoint, SIGTERM / SIGINT stop the
    run at the end of the current step, after writing the checkpoint (:class:`Stopped`).
    """
    model = objective.encoder
    device = resolve_device(device)
    rank, world = _distributed(device)
    if device == "cuda" and world > 1:
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', rank))}"
    # the output folder is this run's while it trains (rank 0 writes for every process)
    with folder_lock(Path(checkpoint).parent, desc) if checkpoint is not None and rank == 0 else nullcontext():
        return _run(objective, cfg, batch_fn, eval_fn, device, rank, world, checkpoint, progress, desc,
                    tokens_per_step, settings, fast_cuda)


def _resume(checkpoint, model, optimizer, settings, cfg, device) -> dict:
    """The checkpoint's state, loaded into ``model`` and ``optimizer`` (with the random state),
    once it is known to be this run's."""
    state = load_checkpoint(checkpoint)
    check_compatible(state, model.cfg, checkpoint)
    if settings is not None:
        saved = state.get("settings")
        if saved is None:
            raise ValueError(f"checkpoint {checkpoint} holds no settings (made by an older version); "
                             "delete it to start the run over")
        diffs = settings_differences(saved, settings)
        if diffs:
            raise ValueError(f"checkpoint {checkpoint} was made with other settings ({'; '.join(diffs[:4])}"
                             f"{'; ...' if len(diffs) > 4 else ''}); delete it to start the run over with "
                             "these settings, or use another output directory")
    if state["step"] > cfg.steps:
        raise ValueError(f"checkpoint {checkpoint} is at step {state['step']}, past this run's {cfg.steps} steps; "
                         "delete it to start the run over, or use another output directory")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["rng"])
    if device.startswith("cuda") and state.get("cuda_rng") is not None:
        torch.cuda.set_rng_state(state["cuda_rng"], torch.device(device))
    return state


def _run(objective, cfg, batch_fn, eval_fn, device, rank, world, checkpoint, progress, desc, tokens_per_step,
         settings, fast_cuda) -> dict:
    model = objective.encoder
    cuda = device.startswith("cuda")
    objective.to(device)
    optimizer = _optimizer(model, cfg)
    history = {"step": [], "train_loss": [], "dev": []}
    # the training losses since the last evaluation: the next point of the curve is their mean,
    # so a checkpoint between two evaluations must keep them
    running: list[float] = []
    start, wall_before = 0, 0.0
    if checkpoint is not None and Path(checkpoint).exists():
        state = _resume(checkpoint, model, optimizer, settings, cfg, device)
        start, history, running = state["step"], state["history"], list(state.get("running", []))
        wall_before = float(state.get("wall_time_s", 0.0))
    # heads a step does not use (the classifier while pre-training) get no gradient: find_unused_parameters
    wrapped = (torch.nn.parallel.DistributedDataParallel(objective, find_unused_parameters=True)
               if world > 1 else objective)
    if cuda:
        allow_many_compiled_graphs()
    fast = cuda and fast_cuda
    step_fn = torch.compile(wrapped) if fast else wrapped
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if fast else torch.autocast(device.split(":")[0], enabled=False)
    t0 = time.perf_counter()
    bar = tqdm(range(start, cfg.steps), desc=desc, disable=not progress or rank != 0, leave=False,
               mininterval=2.0)

    def save(done):
        save_checkpoint(checkpoint, {"step": done, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                     "rng": torch.get_rng_state(),
                                     "cuda_rng": torch.cuda.get_rng_state(torch.device(device)) if cuda else None,
                                     "history": history, "running": running, "encoder": asdict(model.cfg),
                                     "settings": settings, "wall_time_s": wall_before + time.perf_counter() - t0})

    with _StopOnSignal(checkpoint is not None) as stop, _closing(bar):
        for step in bar:
            _train_step(step, objective, model, optimizer, step_fn, autocast, batch_fn, eval_fn, cfg, device,
                        rank, world, history, running)
            done = step + 1
            if done % cfg.eval_every == 0 or done == cfg.steps:
                running.clear()
                bar.set_postfix(loss=f"{history['train_loss'][-1]:.3f}")
            stopping = _agreed(stop.signum, world, device) if checkpoint is not None else 0
            if checkpoint is not None and rank == 0 and (done % cfg.checkpoint_every == 0 or done == cfg.steps
                                                         or stopping):
                save(done)
            if stopping:
                name = signal.Signals(stopping).name
                print(f"{desc}: {name} received, stopped after step {done} of {cfg.steps}; checkpoint "
                      f"{checkpoint} written, run the same command again to resume", flush=True)
                raise Stopped(128 + stopping)
    if world > 1:
        torch.distributed.barrier()          # rank 0's last checkpoint is written before anyone reads it
    wall = wall_before + time.perf_counter() - t0
    return {"history": history, "wall_time_s": wall, "steps_run": cfg.steps - start, "device": device,
            "tokens_per_s": tokens_per_step * cfg.steps / wall if wall > 0 else None,
            "rank": rank, "world_size": world, "settings": settings}


@contextmanager
def _closing(bar):
    """Clear the progress bar however the loop ends, so that an error starts on a line of its own."""
    try:
        yield bar
    finally:
        bar.close()


def _agreed(signum: int, world: int, device: str) -> int:
    """The signal every process stops for (the largest any of them received): under DDP the
    processes must stop after the same step, or the next all-reduce would wait forever."""
    if world == 1:
        return signum
    flag = torch.tensor([signum], device=device)
    torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
    return int(flag.item())


def _train_step(step, objective, model, optimizer, step_fn, autocast, batch_fn, eval_fn, cfg, device, rank, world,
                history, running):
    """One optimisation step (and the evaluation due after it)."""
    model.train()
    for group in optimizer.param_groups:
        group["lr"] = lr_at(step, cfg)
    batch = [b.to(device) for b in batch_fn(step, rank, world)]
    with autocast:
        loss = step_fn(*batch)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
    optimizer.step()
    running.append(loss.item())
    done = step + 1
    if done % cfg.eval_every == 0 or done == cfg.steps:
        model.eval()
        with torch.no_grad(), autocast:
            metrics = eval_fn(model)
        history["step"].append(done)
        history["train_loss"].append(sum(running) / len(running))
        history["dev"].append(metrics)


def _device_name(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return f"cpu ({os.cpu_count()} cores, {torch.get_num_threads()} threads)"


def _record(kind, variant, profile, seed, result, model, extra) -> dict:
    return {"kind": kind, "variant": variant, "profile": profile.name, "seed": seed,
            "encoder": asdict(model.cfg), "train": extra.pop("train"), "device": _device_name(result["device"]),
            "torch": torch.__version__, "commit": git_commit(), "wall_time_s": result["wall_time_s"],
            "tokens_per_s": result["tokens_per_s"], "parameters": parameter_counts(model),
            "curves": result["history"], "world_size": result.get("world_size", 1),
            **({"settings": result["settings"]} if result.get("settings") is not None else {}), **extra}


def pretrain(variant: str, profile: str | None = None, *, seed: int = 0, out: Path | None = None,
             device: str = "auto", progress: bool = True, steps: int | None = None,
             train_overrides: dict | None = None, fast_cuda: bool = True, protocol: int | None = None,
             **model_overrides):
    """Masked-LM pre-training of one variant; returns ``(model, record)``.

    With ``out`` the checkpoint (``out/pretrain-<variant>-s<seed>.pt``) and the JSON record
    are written there, and a killed run resumes from the checkpoint.  ``protocol`` (an evidence
    protocol's version) goes into the settings and the record as ``protocol_version``.
    """
    from .data import mlm_split
    from .data.tokenizer import tokenizer_id

    prof, cfg, tokenizer, enc_cfg, settings = _pretrain_setup(variant, profile, seed, steps, train_overrides,
                                                              model_overrides, protocol)
    seq_len = enc_cfg.max_len            # the profile's, unless the run overrides it
    split = encoded_once(("corpus", prof.data, seq_len), tokenizer,
                         lambda: {part: mlm_blocks(docs, tokenizer, seq_len)
                                  for part, docs in mlm_split(prof.data).items()})
    train_blocks, dev_blocks = split["train"], split["dev"]
    torch.manual_seed(seed)
    model = Encoder(enc_cfg)
    special = [tokenizer.token_to_id(t) for t in ("[PAD]", "[CLS]", "[SEP]")]
    mask_id, vocab = tokenizer.token_to_id("[MASK]"), tokenizer.get_vocab_size()

    def batch_fn(step, rank, world):
        g = torch.Generator().manual_seed(seed * 1_000_003 + step)
        index = torch.randint(len(train_blocks), (cfg.batch_size,), generator=g)[rank::world]
        ids = train_blocks[index]
        inputs, labels = mask_tokens(ids, g, vocab, mask_id, special, cfg.mask_rate)
        return inputs, ids != 0, labels

    dev_batches = mlm_eval_set(dev_blocks, cfg.eval_batches, cfg.batch_size, vocab, mask_id, special)

    def eval_fn(net):
        return mlm_dev_metrics(net, dev_batches)

    ckpt = Path(out) / f"pretrain-{variant}-s{seed}.pt" if out else None
    result = run(Objective(model, "mlm"), cfg, batch_fn, eval_fn, device=device, checkpoint=ckpt, progress=progress,
                 desc=f"pretrain {variant}", tokens_per_step=cfg.batch_size * seq_len, settings=settings,
                 fast_cuda=fast_cuda)
    on_text = kernels_on_text(model, dev_blocks[:TEXT_BLOCKS])
    record = _record("pretrain", variant, prof, seed, result, model,
                     {"train": asdict(cfg), "data": {"source": prof.data, "train_blocks": len(train_blocks),
                                                     "dev_blocks": len(dev_blocks),
                                                     "tokenizer": tokenizer_id(tokenizer)},
                      "kernels": {**learned_kernels(model),
                                  **({"on_text": {"dev_blocks": TEXT_BLOCKS, "layers": on_text}} if on_text else {})},
                      "final": result["history"]["dev"][-1] if result["history"]["dev"] else {},
                      "plateau": _plateau(result["history"], train_blocks, dev_batches, vocab, special, cfg),
                      **_protocol_entry(protocol)})
    if out:
        write_record(record, Path(out) / f"pretrain-{variant}-s{seed}.json")
    return model.cpu(), record


def finetune(variant: str, task: str, pretrained=None, profile: str | None = None, *, seed: int = 0,
             out: Path | None = None, device: str = "auto", progress: bool = True, regression: bool = False,
             steps: int | None = None, train_overrides: dict | None = None, epochs: int | None = None,
             max_examples: int | None = None, protocol: int | None = None, **model_overrides):
    """Fine-tune on a downstream task; ``pretrained`` is an ``Encoder``, a checkpoint path or ``None``.

    ``regression=True`` (``vader_sent`` only) predicts the human rating with a squared error.
    By default each step draws its batch from the whole training split at random; with ``epochs``
    and ``max_examples`` (protocol v3, :func:`epoch_plan`) the run makes ``epochs`` passes over a
    fixed subset of at most ``max_examples`` rows, and its steps are those passes (unless
    ``steps`` says otherwise).  ``protocol`` goes into the settings and the record as
    ``protocol_version``, with the data build's ``surface_cues`` of the task (or ``None``).
    Returns ``(model, record)`` with dev and test metrics.
    """
    from .data import load_task
    from .data.tokenizer import tokenizer_id

    prof, cfg, tokenizer, info, subset, enc_cfg, settings = _finetune_setup(
        variant, task, pretrained, profile, seed, regression, steps, train_overrides, model_overrides,
        epochs, max_examples, protocol)
    labels = info["labels"]
    splits = {s: encoded_once(("task", task, s, prof.data, enc_cfg.max_len, tuple(labels), regression), tokenizer,
                              lambda s=s: encode_task(load_task(task, s, prof.data), tokenizer, enc_cfg.max_len,
                                                      labels, regression))
              for s in ("train", "dev", "test")}
    torch.manual_seed(seed)
    model = Encoder(enc_cfg)
    if pretrained is not None:
        if isinstance(pretrained, (str, Path)):
            state = load_checkpoint(Path(pretrained))
            check_compatible(state, enc_cfg, pretrained)
            weights = state["model"]
        else:
            check_compatible({"encoder": asdict(pretrained.cfg)}, enc_cfg, "the given model")
            weights = pretrained.state_dict()
        weights = {k: v for k, v in weights.items() if not k.startswith("classifier.")}
        missing, unexpected = model.load_state_dict(weights, strict=False)
        assert all(k.startswith("classifier.") for k in missing) and not unexpected

    ids, mask, targets = splits["train"]

    def batch_fn(step, rank, world):
        g = torch.Generator().manual_seed(seed * 1_000_003 + step)
        index = torch.randint(len(ids), (cfg.batch_size,), generator=g)[rank::world]
        longest = int(mask[index].sum(1).max())
        return ids[index, :longest], mask[index, :longest], targets[index]

    if subset is not None:
        if info["counts"]["train"] != len(ids):
            raise ValueError(f"{task}'s info says {info['counts']['train']} training rows but its split has "
                             f"{len(ids)}; rebuild the data")
        rows = torch.tensor(subset)

        def batch_fn(step, rank, world):  # noqa: F811  (epochs over the fixed subset replace the draws above)
            index = epoch_batch(rows, step, seed, cfg.batch_size)[rank::world]
            longest = int(mask[index].sum(1).max())
            return ids[index, :longest], mask[index, :longest], targets[index]

    def evaluate(net, split, limit=None, items=False):
        x, m, y = splits[split]
        if limit:
            x, m, y = x[:limit], m[:limit], y[:limit]
        device = next(net.parameters()).device
        # batches of similar length, each cut to its longest row: the split is padded to its
        # longest example, and attention to padding is the largest cost of an evaluation
        lengths = m.sum(1)
        order = torch.argsort(lengths, descending=True)
        logits = torch.empty(len(x), 1 if regression else len(labels))
        for start in range(0, len(x), 256):
            rows = order[start:start + 256]
            longest = int(lengths[rows].max())
            xb, mb = x[rows, :longest].to(device), m[rows, :longest].to(device)
            logits[rows] = net.classify(net(xb, mb), mb).float().cpu()
        return task_metrics(logits, y, regression, len(labels), items=items)

    result = run(Objective(model, "classify", regression), cfg, batch_fn,
                 lambda net: evaluate(net, "dev", cfg.eval_batches * cfg.batch_size), device=device,
                 checkpoint=Path(out) / f"finetune-{variant}-{task}-s{seed}.pt" if out else None,
                 progress=progress, desc=f"finetune {variant} on {task}",
                 tokens_per_step=cfg.batch_size * int(mask.sum(1).float().mean()), settings=settings)
    model.eval()
    with torch.no_grad():
        final = {"dev": evaluate(model, "dev"), "test": evaluate(model, "test", items=True)}
    record = _record("finetune", variant, prof, seed, result, model,
                     {"train": asdict(cfg), "task": task, "regression": regression, "labels": labels,
                      "data": {"source": prof.data, "tokenizer": tokenizer_id(tokenizer)},
                      "pretrained": pretrained is not None, "final": final,
                      **({} if regression else {"chance": majority_accuracy(targets, splits,
                                                                               len(labels))}),
                      **({} if protocol is None else {**_protocol_entry(protocol),
                                                      # records travel, data builds do not
                                                      "surface_cues": info.get("surface_cues")})})
    if out:
        write_record(record, Path(out) / f"finetune-{variant}-{task}-s{seed}.json")
    return model.cpu(), record


def majority_accuracy(train_targets: torch.Tensor, splits: dict, n_classes: int | None = None) -> dict:
    """Chance levels measured on the split being evaluated: ``dev``/``test`` are the largest
    class share of that split (what always answering its most frequent label scores);
    ``balanced`` is the balanced accuracy of any constant answer (1 / number of classes);
    ``train_majority`` is the test accuracy of always answering the training majority."""
    majority = int(torch.mode(train_targets).values)
    levels = {split: torch.bincount(splits[split][2]).max().item() / len(splits[split][2])
              for split in ("dev", "test")}
    n_classes = n_classes or int(train_targets.max()) + 1
    return {**levels, "balanced": 1 / n_classes,
            "train_majority": (splits["test"][2] == majority).float().mean().item()}


def _plateau(history: dict, train_blocks, dev_batches, vocab: int, special: list, cfg) -> dict:
    """Where the run left the unigram plateau (``compattn.protocol.plateau_exit``)."""
    from .protocol import plateau_exit, unigram_baseline

    targets = torch.cat([batch["labels"].flatten() for batch in dev_batches])
    base = unigram_baseline(train_blocks, targets, vocab, special)
    exit_ = plateau_exit(history["step"], [d["loss"] for d in history["dev"]], base["loss"], cfg.steps)
    return {**exit_, "unigram_accuracy": base["accuracy"]}


ITEM_CODES = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+/"


def encode_items(values) -> str:
    """Class indices (< 64) as one character each: per-item predictions stay small in JSON."""
    return "".join(ITEM_CODES[int(v)] for v in values)


def decode_items(text: str) -> list[int]:
    return [ITEM_CODES.index(c) for c in text]


def learned_kernels(model: Encoder) -> dict:
    """The position tables each layer learned, as lists (small: they go into the JSON record).

    Which tables a variant has is declared in its registry entry (``Entry.tables``, record key
    -> attribute), e.g. ``fixed``: composite's beta (H, 2ℓ+1) logits; ``lightconv``: Wu's kernel
    logits (H, 2ℓ+1); ``t5``: the bucket biases (buckets, H); ``query``/``key``: composite's
    (d_head, 2ℓ+1) tables; ``kerple_r1``/``kerple_r2``: KERPLE's (H,) parameters.
    """
    from .registry import entry, table

    declared = entry(model.cfg.variant).tables
    layers = []
    for block in model.blocks:
        tables = {}
        for key, path in declared.items():
            value = table(block.mixer, path)
            if isinstance(value, torch.Tensor):
                tables[key] = value.detach().float().cpu().tolist()
        layers.append(tables)
    return {"layers": layers} if any(layers) else {}


TEXT_BLOCKS = 64     # held-out blocks of real text on which composite's generated kernels are averaged


def kernels_on_text(model: Encoder, ids: torch.Tensor) -> list[dict]:
    """Composite attention's *generated* kernels on real text, per layer: each head's kernel over
    the offsets, ``softmax_r(q_i . u_r / sqrt(d_h))`` averaged over the real tokens i of ``ids``
    (``"query"``), and ``softmax_r(k_j . u'_r / sqrt(d_h))`` averaged over the real keys j
    (``"key"``), each (H, 2ℓ+1).  The tables u, u' alone say little: what a head does depends
    on the queries and keys that real sentences produce.  Which tables generate kernels is
    declared in the registry (``Entry.generated``).  Empty without such tables."""
    from .registry import entry, table

    declared = entry(model.cfg.variant).generated
    mixers = {ell: block.mixer for ell, block in enumerate(model.blocks)
              if any(table(block.mixer, path) is not None for path in declared.values())}
    if not mixers:
        return []
    inputs = {}
    hooks = [mixer.register_forward_pre_hook(lambda m, args, ell=ell: inputs.__setitem__(ell, args))
             for ell, mixer in mixers.items()]
    was_training, device = model.training, next(model.parameters()).device
    ids = ids.to(device)
    try:
        with torch.no_grad():
            model.eval()(ids, ids != 0)
            layers = []
            for ell in range(len(model.blocks)):
                if ell not in mixers:
                    layers.append({})
                    continue
                mixer, (x, pad_mask) = mixers[ell], inputs[ell]
                q, k = mixer.queries_keys(x, pad_mask)                      # (B, H, T, d_h)
                real = pad_mask[:, None, :, None].float()                   # (B, 1, T, 1)
                layer = {}
                for name, path in declared.items():
                    generator = table(mixer, path)
                    if generator is not None:
                        vectors = q if name == "query" else k
                        weights = torch.softmax((vectors @ generator).float() * mixer.scale, -1)
                        layer[name] = ((weights * real).sum((0, 2)) / real.sum((0, 2))).cpu().tolist()
                layers.append(layer)
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    return layers


def task_metrics(logits: torch.Tensor, y: torch.Tensor, regression: bool, n_classes: int,
                 items: bool = False) -> dict:
    """Accuracy, macro-F1 and balanced accuracy (mean recall over the classes present); with
    ``items`` also every item's prediction and gold label (``encode_items``), so that error
    bars can resample test items and pair variants item by item."""
    if regression:
        pred = logits[:, 0]
        return {"mse": F.mse_loss(pred, y.float()).item(),
                "pearson": torch.corrcoef(torch.stack([pred, y.float()]))[0, 1].item()}
    pred = logits.argmax(-1)
    f1s = []
    for c in range(n_classes):
        tp = ((pred == c) & (y == c)).sum().item()
        fp = ((pred == c) & (y != c)).sum().item()
        fn = ((pred != c) & (y == c)).sum().item()
        if tp + fp + fn:
            f1s.append(2 * tp / (2 * tp + fp + fn))
    recalls = [((pred == c) & (y == c)).sum().item() / (y == c).sum().item()
               for c in range(n_classes) if (y == c).any()]
    metrics = {"accuracy": (pred == y).float().mean().item(), "macro_f1": sum(f1s) / max(1, len(f1s)),
               "balanced_accuracy": sum(recalls) / max(1, len(recalls))}
    if items and n_classes <= len(ITEM_CODES):
        metrics["items"] = {"pred": encode_items(pred.tolist()), "gold": encode_items(y.tolist())}
    return metrics


def write_record(record: dict, path: Path):
    """Validate, then write atomically with the sha256 of its content (``content_sha256``, checked
    by :func:`compattn.records.read_record`); rank 0 only under DDP, the others wait for it."""
    from .records import validate_record

    validate_record(record)
    if is_writer():
        path = Path(path)
        as_read = json.loads(json.dumps(record))         # the record as a reader will see it
        sealed = {**as_read, HASH_KEY: json_hash(as_read)}
        with folder_lock(path.parent, f"record {path.name}"):
            write_atomic(path, json.dumps(sealed, indent=1, sort_keys=True) + "\n")
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()          # every process sees the record once this returns


def train_probe(variant: str, probe: str, *, train_length: int = 32, test_lengths=(32, 64), n_train: int = 4000,
                n_test: int = 500, steps: int = 300, batch_size: int = 32, lr: float = 1e-3, seed: int = 0,
                device: str = "auto", progress: bool = True, probe_options: dict | None = None,
                profile: str = "tiny", out: Path | None = None, **model_overrides) -> dict:
    """Train a small encoder from scratch on a synthetic probe; test at several lengths.

    Train short, test long: ``max_len`` is the training length, so learned absolute positions
    cannot run longer sequences (their test accuracy at longer lengths is reported as ``None``).
    Returns a run record (``kind="probe"``; ``final["accuracy"]`` maps each test length to the
    accuracy there), written to ``out/probe-<probe>-<variant>-s<seed>.json`` when ``out`` is given.
    """
    from .data.probes import make_probe, vocab_size

    opts = probe_options or {}
    ids, labels, classes = make_probe(probe, n_train, train_length, seed=seed, **opts)
    model_cfg = dict(d_model=64, n_heads=4, n_layers=2, d_ff=128, dropout=0.0, pooling="cls")
    torch.manual_seed(seed)
    model = Encoder(EncoderConfig(variant=variant, vocab_size=vocab_size(opts.get("symbols", 16)),
                                  n_classes=classes, max_len=train_length + 1, **{**model_cfg, **model_overrides}))
    cfg = TrainConfig(steps=steps, batch_size=batch_size, lr=lr, eval_every=max(1, steps // 5), eval_batches=1,
                      checkpoint_every=steps, seed=seed)
    tests = {length: make_probe(probe, n_test, length, seed=seed + 1000 + length, **opts)[:2]
             for length in test_lengths}

    def batch_fn(step, rank, world):
        g = torch.Generator().manual_seed(seed * 1_000_003 + step)
        index = torch.randint(len(ids), (batch_size,), generator=g)[rank::world]
        return ids[index], ids[index] != 0, labels[index]

    def accuracy(net, length):
        x, y = tests[length]
        if net.position_embedding is not None and x.shape[1] > net.cfg.max_len:
            return None
        device_ = next(net.parameters()).device
        pred = torch.cat([net.classify(net(x[i:i + 256].to(device_))).argmax(-1).cpu()
                          for i in range(0, len(x), 256)])
        return (pred == y).float().mean().item()

    result = run(Objective(model, "classify"), cfg, batch_fn,
                 lambda net: {"accuracy": accuracy(net, train_length) if train_length in tests else None},
                 device=device, progress=progress, desc=f"{probe} {variant}",
                 tokens_per_step=batch_size * (train_length + 1))
    model.eval()
    with torch.no_grad():
        by_length = {str(length): accuracy(model, length) for length in test_lengths}
    record = _record("probe", variant, get_profile(profile), seed, result, model,
                     {"train": asdict(cfg), "probe": probe, "probe_options": opts, "train_length": train_length,
                      "n_train": n_train, "n_test": n_test, "final": {"accuracy": by_length}})
    if out:
        write_record(record, Path(out) / f"probe-{probe}-{variant}-s{seed}.json")
    return record

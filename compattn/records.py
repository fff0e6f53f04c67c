"""The JSON record every training run writes, and its schema.

A record carries its provenance -- variant, profile, seed, configuration, device, torch
version, git commit, wall time, throughput, number of processes and the settings that define
the run -- next to its learning curves and final metrics, so that every number the book
shows can be traced to a run.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

import jsonschema


def results_dir() -> Path:
    """Where the committed results live: ``compattn/results`` inside the installed package, found
    with ``importlib.resources``, so a chapter copied anywhere (or opened on Colab after the
    install cell) reads the same records as the book."""
    return Path(str(resources.files("compattn") / "results"))

_NUMBER_OR_NULL = {"type": ["number", "null"]}

RECORD_SCHEMA = {
    "type": "object",
    "required": ["kind", "variant", "profile", "seed", "encoder", "train", "device", "torch", "commit",
                 "wall_time_s", "tokens_per_s", "parameters", "curves", "final"],
    "properties": {
        "kind": {"enum": ["pretrain", "finetune", "length", "probe"]},
        "variant": {"type": "string"},
        "profile": {"enum": ["tiny", "small", "paper"]},
        "seed": {"type": "integer"},
        "encoder": {"type": "object", "required": ["variant", "vocab_size", "d_model", "n_heads", "n_layers"]},
        "train": {"type": "object", "required": ["steps", "batch_size", "lr"]},
        "device": {"type": "string"},
        "torch": {"type": "string"},
        "commit": {"type": "string"},
        "wall_time_s": {"type": "number", "minimum": 0},
        "tokens_per_s": _NUMBER_OR_NULL,
        "parameters": {"type": "object", "required": ["total"]},
        "curves": {
            "type": "object", "required": ["step", "train_loss", "dev"],
            "properties": {"step": {"type": "array", "items": {"type": "integer"}},
                           "train_loss": {"type": "array", "items": {"type": "number"}},
                           "dev": {"type": "array", "items": {"type": "object"}}},
        },
        "final": {"type": "object"},
        "task": {"type": "string"},
        # what defines the run (compattn.train.pretrain_settings / finetune_settings); records
        # made before settings existed have none, and a sweep does not count them as done
        "settings": {"type": "object", "required": ["kind", "variant", "profile", "seed", "encoder", "train",
                                                    "tokenizer", "data", "world_size"]},
        "world_size": {"type": "integer", "minimum": 1},
    },
    "allOf": [{"if": {"properties": {"kind": {"const": "finetune"}}},
               "then": {"required": ["task"], "properties": {"final": {"required": ["dev", "test"]}}}},
              {"if": {"properties": {"kind": {"const": "length"}}},
               "then": {"required": ["train_length", "eval_lengths"],
                        "properties": {"final": {"required": ["by_length"]}}}},
              {"if": {"properties": {"kind": {"const": "probe"}}},
               "then": {"required": ["probe", "train_length"], "properties": {"final": {"required": ["accuracy"]}}}}],
}


def validate_record(record: dict) -> None:
    """Raise ``ValueError`` naming the first field that does not fit the schema."""
    try:
        jsonschema.validate(record, RECORD_SCHEMA)
    except jsonschema.ValidationError as err:
        where = "/".join(map(str, err.absolute_path)) or "(top level)"
        raise ValueError(f"invalid run record at {where}: {err.message}") from None

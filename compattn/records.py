"""The JSON record every training run writes, and its schema.

A record carries its provenance -- variant, profile, seed, configuration, device, torch
version, git commit, wall time, throughput, number of processes and the settings that define
the run -- next to its learning curves and final metrics, so that every number the book
shows can be traced to a run.  It also carries the sha256 of its own content
(``content_sha256``), which :func:`read_record` checks: a record changed after it was written is
refused, naming the file.  (Records written before the hash existed have none and are read as
they are.)
"""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from .config import PROFILES
from .files import HASH_KEY, check_hash, json_hash


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
        "profile": {"enum": list(PROFILES)},
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
        # the evidence protocol a run was made for (protocol v3 on; earlier runs carry none)
        "protocol_version": {"type": "integer"},
        HASH_KEY: {"type": "string"},
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
        validate_schema(record, RECORD_SCHEMA)
    except ValueError as err:
        raise ValueError(f"invalid run record at {err}") from None


def read_record(path, validate: bool = True) -> dict:
    """The JSON file ``path``, once the content hash it carries matches its content
    (:class:`compattn.files.ContentChanged` otherwise), without that hash; with ``validate``, also
    checked against the schema.  ``ValueError`` for a file that is not JSON."""
    record = json.loads(Path(path).read_text())
    if isinstance(record, dict) and HASH_KEY in record:
        check_hash(record[HASH_KEY], json_hash(record), path, "record",
                   "delete it (and its checkpoint) to run it again")
        record = {key: value for key, value in record.items() if key != HASH_KEY}
    if validate:
        validate_record(record)
    return record


def validate_schema(instance, schema) -> None:
    """Validate with ``jsonschema`` when it is installed, else with the small subset of JSON
    Schema the project's schemas use (type, required, properties, enum, const, items,
    additionalProperties, minimum, allOf with if/then), so that a machine without jsonschema
    (a bare GPU image) still checks what it writes.  Raises ``ValueError("<path>: <message>")``."""
    try:
        import jsonschema
    except ImportError:
        problem = _first_problem(instance, schema, ())
        if problem:
            where, message = problem
            raise ValueError(f"{'/'.join(map(str, where)) or '(top level)'}: {message}") from None
        return
    try:
        jsonschema.validate(instance, schema)
    except jsonschema.ValidationError as err:
        where = "/".join(map(str, err.absolute_path)) or "(top level)"
        raise ValueError(f"{where}: {err.message}") from None


_TYPES = {"object": dict, "array": list, "string": str, "integer": int, "number": (int, float),
          "null": type(None), "boolean": bool}


def _is(value, name) -> bool:
    if name in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, _TYPES[name])


def _first_problem(value, schema, where):
    types = schema.get("type")
    if types is not None:
        types = [types] if isinstance(types, str) else types
        if not any(_is(value, t) for t in types):
            return where, f"{value!r:.60} is not of type {' or '.join(map(repr, types))}"
    if "enum" in schema and value not in schema["enum"]:
        return where, f"{value!r:.60} is not one of {schema['enum']}"
    if "const" in schema and value != schema["const"]:
        return where, f"{schema['const']!r} was expected"
    if "minimum" in schema and isinstance(value, (int, float)) and value < schema["minimum"]:
        return where, f"{value} is less than the minimum of {schema['minimum']}"
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                return where, f"{key!r} is a required property"
        props = schema.get("properties", {})
        for key, sub in value.items():
            rule = props.get(key, schema.get("additionalProperties") if key not in props else None)
            if isinstance(rule, dict):
                problem = _first_problem(sub, rule, where + (key,))
                if problem:
                    return problem
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            problem = _first_problem(item, schema["items"], where + (i,))
            if problem:
                return problem
    for part in schema.get("allOf", []):
        if "if" in part:
            if _first_problem(value, part["if"], where) is None and "then" in part:
                problem = _first_problem(value, part["then"], where)
                if problem:
                    return problem
        else:
            problem = _first_problem(value, part, where)
            if problem:
                return problem
    return None

"""A WordPiece tokenizer trained with Hugging Face ``tokenizers`` (BERT's recipe).

Special tokens: ``[PAD]`` = 0, ``[UNK]``, ``[CLS]``, ``[SEP]``, ``[MASK]``; single texts are
encoded as ``[CLS] a [SEP]`` and pairs as ``[CLS] a [SEP] b [SEP]``.
"""
from __future__ import annotations

from pathlib import Path

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def train_tokenizer(documents: list[list[str]], vocab_size: int = 8000):
    """Train a lower-cased WordPiece vocabulary on documents of paragraphs."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    if vocab_size < len(SPECIAL_TOKENS) + 26:
        raise ValueError(f"vocab_size {vocab_size} is too small for a WordPiece vocabulary")
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                        show_progress=False)
    tokenizer.train_from_iterator((p for doc in documents for p in doc), trainer=trainer)
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    return tokenizer


def load_tokenizer(name_or_path: str = "sample"):
    """``"sample"`` (the embedded one), ``"full"`` (next to the full data), ``"auto"`` (full when
    built, else sample) or a path to a JSON file."""
    from tokenizers import Tokenizer

    from . import SAMPLE_DIR, data_dir, full_data_available

    if name_or_path == "auto":
        name_or_path = "full" if full_data_available() else "sample"
    if name_or_path == "sample":
        path = SAMPLE_DIR / "tokenizer.json"
    elif name_or_path == "full":
        path = data_dir() / "tokenizer.json"
        if not path.exists():
            raise ValueError(f"no tokenizer at {path}; run `python -m compattn data` first")
    else:
        path = Path(name_or_path)
        if not path.exists():
            raise ValueError(f"no tokenizer file {path}; use 'sample', 'full' or a path to a tokenizer.json")
    return Tokenizer.from_file(str(path))


def tokenizer_id(tokenizer) -> str:
    """A short fingerprint of a tokenizer (its vocabulary and settings), kept in run records:
    WordPiece training is not deterministic, so a rebuilt tokenizer can differ."""
    import hashlib

    return hashlib.sha256(tokenizer.to_str().encode("utf-8")).hexdigest()[:16]

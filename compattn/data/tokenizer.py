"""A WordPiece tokenizer trained with Hugging Face ``tokenizers`` (BERT's recipe), reproducibly.

Special tokens: ``[PAD]`` = 0, ``[UNK]``, ``[CLS]``, ``[SEP]``, ``[MASK]``; single texts are
encoded as ``[CLS] a [SEP]`` and pairs as ``[CLS] a [SEP] b [SEP]``.

Why training is made reproducible by hand: the trainer numbers the word-internal pieces
``##c`` in the order it meets them while walking a hash map of word counts, and a hash map's
order changes from process to process (its seed is random).  Merges of equal count are then
broken by those numbers, so two trainings on the same text gave different vocabularies
(not only different ids: different pieces).  Threads play no part (``RAYON_NUM_THREADS=1``
changes nothing).  Listing every ``##c`` of the corpus's alphabet, sorted, as initial tokens
gives them fixed ids before the walk, so every tie is broken the same way in every process;
they are then turned back into ordinary vocabulary entries.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def _components():
    from tokenizers import decoders, normalizers, pre_tokenizers

    return (normalizers.BertNormalizer(lowercase=True), pre_tokenizers.BertPreTokenizer(),
            decoders.WordPiece())


def _assemble(vocab: dict):
    """A tokenizer around a WordPiece vocabulary, with the five special tokens and BERT's templates."""
    from tokenizers import Tokenizer, models, processors

    normalizer, pre_tokenizer, decoder = _components()
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tokenizer.normalizer, tokenizer.pre_tokenizer, tokenizer.decoder = normalizer, pre_tokenizer, decoder
    tokenizer.add_special_tokens(SPECIAL_TOKENS)
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    return tokenizer


def train_tokenizer(documents: list[list[str]], vocab_size: int = 8000):
    """Train a lower-cased WordPiece vocabulary on documents of paragraphs; the same documents
    give the same vocabulary and the same ``tokenizer.json`` bytes in every process."""
    from tokenizers import Tokenizer, models, trainers

    if vocab_size < len(SPECIAL_TOKENS) + 26:
        raise ValueError(f"vocab_size {vocab_size} is too small for a WordPiece vocabulary")
    paragraphs = [p for doc in documents for p in doc]
    normalizer, pre_tokenizer, decoder = _components()
    alphabet = set()
    for paragraph in paragraphs:
        alphabet.update(normalizer.normalize_str(paragraph))
    inner = ["##" + c for c in sorted(alphabet) if not c.isspace()]
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer, tokenizer.pre_tokenizer, tokenizer.decoder = normalizer, pre_tokenizer, decoder
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS + inner,
                                        show_progress=False)
    tokenizer.train_from_iterator(paragraphs, trainer=trainer)
    vocab = tokenizer.get_vocab(with_added_tokens=True)
    return _assemble(dict(sorted(vocab.items(), key=lambda kv: kv[1])))


def load_tokenizer(name_or_path: str = "sample"):
    """``"sample"`` (the embedded one), ``"full"`` (next to the full data), ``"auto"`` (full when
    built, else sample) or a path to a JSON file."""
    from tokenizers import Tokenizer

    from . import SAMPLE_DIR, data_dir, full_data_available

    if name_or_path == "auto":
        name_or_path = "full" if full_data_available() else "sample"
    if name_or_path == "sample":
        from . import check_file

        path = SAMPLE_DIR / "tokenizer.json"
        check_file(path)
    elif name_or_path == "full":
        from . import check_file

        path = data_dir() / "tokenizer.json"
        if not path.exists():
            raise ValueError(f"no tokenizer at {path}; run `python -m compattn data` first")
        check_file(path)
    else:
        path = Path(name_or_path)
        if not path.exists():
            raise ValueError(f"no tokenizer file {path}; use 'sample', 'full' or a path to a tokenizer.json")
    return Tokenizer.from_file(str(path))


def tokenizer_id(tokenizer) -> str:
    """A short fingerprint of a tokenizer (its vocabulary and settings), kept in checkpoints and
    run records, so that weights are never used with another vocabulary's ids."""
    return hashlib.sha256(tokenizer.to_str().encode("utf-8")).hexdigest()[:16]

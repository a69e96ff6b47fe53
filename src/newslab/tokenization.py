"""Tokenizers: the protocol newslab uses, and the trainers behind `--tokenizer`, in one registry.

Everything else (data encoding, checkpoints, attention labels, prediction) talks to a
`Tokenizer` only, so a tokenizer from another library is one class and one registry line
here. Hugging Face's `tokenizers` provides the three built in; `word` is the default because it
is the only one of its trainers that is deterministic (README, "Why these defaults").
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Protocol

from .errors import NewslabError

PAD_ID, UNK_ID = 0, 1
SPECIAL_TOKENS = ["[PAD]", "[UNK]"]
ENCODE_CHUNK = 4096  # texts per batch call: HF Encoding objects (offsets, strings) cost ~200 bytes a token


class Tokenizer(Protocol):
    """Text to token ids; [PAD] is id 0 and [UNK] id 1 in every implementation."""

    @property
    def vocab_size(self) -> int: ...

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each text, untruncated, without special tokens (may be empty)."""
        ...

    def id_to_token(self, token_id: int) -> str: ...

    def to_json(self) -> str:
        """A JSON text that `load_tokenizer` turns back into an equal tokenizer."""
        ...


class HuggingFaceTokenizer:
    """A `tokenizers.Tokenizer` behind the protocol."""

    library = "huggingface"

    def __init__(self, tokenizer):  # a tokenizers.Tokenizer
        self.hf = tokenizer

    @property
    def vocab_size(self) -> int:
        return self.hf.get_vocab_size()

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [enc.ids for enc in self.hf.encode_batch(texts, add_special_tokens=False)]

    def id_to_token(self, token_id: int) -> str:
        return self.hf.id_to_token(token_id)

    def to_json(self) -> str:
        return json.dumps({"library": self.library, "tokenizer": self.hf.to_str()})

    @classmethod
    def from_json(cls, text: str) -> HuggingFaceTokenizer:
        from tokenizers import Tokenizer as HFTokenizer

        return cls(HFTokenizer.from_str(text))


def _train_huggingface(kind: str) -> Callable[[list[str], int, int], Tokenizer]:
    def train(texts: list[str], vocab_size: int, min_freq: int) -> Tokenizer:
        from tokenizers import Tokenizer as HFTokenizer
        from tokenizers import decoders, models, normalizers, pre_tokenizers, trainers

        trainer: trainers.Trainer
        if kind == "wordpiece":
            tok = HFTokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=100))
            trainer = trainers.WordPieceTrainer(
                vocab_size=vocab_size, min_frequency=min_freq, special_tokens=SPECIAL_TOKENS, show_progress=False
            )
            tok.decoder = decoders.WordPiece()
        elif kind == "bpe":
            tok = HFTokenizer(models.BPE(unk_token="[UNK]", continuing_subword_prefix="##"))
            trainer = trainers.BpeTrainer(
                vocab_size=vocab_size,
                min_frequency=min_freq,
                special_tokens=SPECIAL_TOKENS,
                continuing_subword_prefix="##",
                show_progress=False,
            )
            tok.decoder = decoders.WordPiece()
        else:
            tok = HFTokenizer(models.WordLevel(unk_token="[UNK]"))
            trainer = trainers.WordLevelTrainer(
                vocab_size=vocab_size, min_frequency=min_freq, special_tokens=SPECIAL_TOKENS, show_progress=False
            )
        tok.normalizer = normalizers.BertNormalizer(clean_text=True, lowercase=True, strip_accents=True)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
        assert tok.token_to_id("[PAD]") == PAD_ID and tok.token_to_id("[UNK]") == UNK_ID
        return HuggingFaceTokenizer(tok)

    return train


# name -> trainer(texts, vocab_size, min_freq); the `--tokenizer` choices
TOKENIZERS: dict[str, Callable[[list[str], int, int], Tokenizer]] = {
    "word": _train_huggingface("word"),
    "wordpiece": _train_huggingface("wordpiece"),
    "bpe": _train_huggingface("bpe"),
}
# library -> loader of `to_json()` output
LOADERS: dict[str, Callable[[str], Tokenizer]] = {HuggingFaceTokenizer.library: HuggingFaceTokenizer.from_json}


def train_tokenizer(texts: list[str], kind: str, vocab_size: int, min_freq: int) -> Tokenizer:
    """A tokenizer of `kind` fitted on `texts` (the training split only)."""
    return TOKENIZERS[kind](texts, vocab_size, min_freq)


def load_tokenizer(text: str, source: str = "tokenizer") -> Tokenizer:
    """The tokenizer that `to_json()` wrote (also a bare Hugging Face JSON, as newslab 0.1 stored it)."""
    try:
        payload = json.loads(text)
        if isinstance(payload, dict) and "library" in payload and payload["library"] in LOADERS:
            return LOADERS[payload["library"]](payload["tokenizer"])
        return HuggingFaceTokenizer.from_json(text)
    except Exception as exc:  # the Rust loader raises its own exception type
        raise NewslabError(
            f"{source}: not a tokenizer newslab can load ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''})"
        ) from None


def encode_chunks(tokenizer: Tokenizer, texts: list[str]) -> Iterator[list[list[int]]]:
    """Token ids per text, a chunk of texts at a time (a 120k-row split's Encoding objects never
    live at once); a text that tokenizes to nothing becomes [UNK] (never an empty row)."""
    for start in range(0, len(texts), ENCODE_CHUNK):
        yield [ids or [UNK_ID] for ids in tokenizer.encode_batch(texts[start : start + ENCODE_CHUNK])]

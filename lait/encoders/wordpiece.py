"""BERT's WordPiece tokenizer in plain Python, read from a ``vocab.txt``.

The two steps of Google's original ``tokenization.py`` (Devlin et al., 2019), which the
Hugging Face ``BertTokenizer`` reproduces:

1. basic tokenization: drop control characters and normalise whitespace, put spaces
   around CJK ideographs, lower-case and strip accents (uncased models), split on
   whitespace and then on every punctuation character;
2. WordPiece: greedy longest-match-first split of each word into vocabulary pieces,
   continuation pieces prefixed with ``##``; a word that cannot be split, or is longer
   than 100 characters, becomes ``[UNK]``.

>>> tok = WordPieceTokenizer.from_vocab_file(minilm_vocab)            # doctest: +SKIP
>>> tok.tokenize("Unaffable dogs!")                                    # doctest: +SKIP
['una', '##ffa', '##ble', 'dogs', '!']
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

__all__ = ["WordPieceTokenizer", "basic_tokenize"]

UNK, CLS, SEP, PAD, MASK = "[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"
SPECIAL_TOKENS = (PAD, UNK, CLS, SEP, MASK)
# Google's tokenizer gives up on longer "words" (URLs, base64...) rather than split them.
MAX_CHARS_PER_WORD = 100


def _is_whitespace(char: str) -> bool:
    return char in " \t\n\r" or unicodedata.category(char) == "Zs"


def _is_control(char: str) -> bool:
    # \t, \n and \r count as whitespace, not control, as in BERT.
    if char in "\t\n\r":
        return False
    return unicodedata.category(char).startswith("C")


def _is_punctuation(char: str) -> bool:
    # All non-letter/number ASCII counts as punctuation ("$", "^", "`"), as in BERT,
    # even where Unicode files it under symbols.
    cp = ord(char)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def _is_cjk(cp: int) -> bool:
    # The CJK Unified Ideographs blocks only: Hangul and kana are written with spaces or
    # are split by WordPiece like any other script.
    return (
        0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F
    )


def _clean(text: str) -> str:
    out = []
    for char in text:
        cp = ord(char)
        if cp == 0 or cp == 0xFFFD or _is_control(char):
            continue
        if _is_cjk(cp):
            out.append(f" {char} ")
        elif _is_whitespace(char):
            out.append(" ")
        else:
            out.append(char)
    return "".join(out)


def _strip_accents(word: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", word) if unicodedata.category(c) != "Mn")


def _split_punctuation(word: str) -> list[str]:
    pieces: list[str] = []
    current: list[str] = []
    for char in word:
        if _is_punctuation(char):
            if current:
                pieces.append("".join(current))
                current = []
            pieces.append(char)
        else:
            current.append(char)
    if current:
        pieces.append("".join(current))
    return pieces


def basic_tokenize(text: str, lowercase: bool = True, never_split: Iterable[str] = SPECIAL_TOKENS) -> list[str]:
    """BERT's basic tokenization: words and punctuation marks, before WordPiece.

    Parameters
    ----------
    text : str
        Raw text.
    lowercase : bool, default=True
        Lower-case and strip accents (uncased models).
    never_split : iterable of str, default=the special tokens
        Tokens kept whole, e.g. ``[MASK]`` written in the text.
    """
    keep = set(never_split)
    words: list[str] = []
    for word in _clean(text).split():
        if word in keep:
            words.append(word)
            continue
        if lowercase:
            word = _strip_accents(word.lower())
        words.extend(_split_punctuation(word))
    return words


class WordPieceTokenizer:
    """BERT WordPiece tokenizer over a fixed vocabulary.

    Parameters
    ----------
    vocab : dict of str to int
        Token to id, as read from ``vocab.txt`` (line number = id).
    lowercase : bool, default=True
        Lower-case and strip accents first (True for uncased models such as MiniLM).

    Attributes
    ----------
    vocab_size : int
    cls_id, sep_id, pad_id, mask_id, unk_id : int
        Ids of the special tokens.
    """

    def __init__(self, vocab: dict[str, int], lowercase: bool = True):
        missing = [t for t in SPECIAL_TOKENS if t not in vocab]
        if missing:
            raise ValueError(f"vocabulary lacks the special tokens {missing}")
        self.vocab = vocab
        self.lowercase = lowercase
        self.ids_to_tokens = {i: t for t, i in vocab.items()}
        self.vocab_size = len(vocab)
        self.cls_id, self.sep_id = vocab[CLS], vocab[SEP]
        self.pad_id, self.mask_id, self.unk_id = vocab[PAD], vocab[MASK], vocab[UNK]
        # Per-instance cache: web text repeats words a lot and the greedy search is the slow part.
        self._word_pieces = lru_cache(maxsize=65536)(self._split_word)

    @classmethod
    def from_vocab_file(cls, path: str | Path, lowercase: bool = True) -> WordPieceTokenizer:
        """Read a BERT ``vocab.txt`` (one token per line, the line number is its id)."""
        with open(path, encoding="utf-8") as f:
            vocab = {line.rstrip("\n"): i for i, line in enumerate(f)}
        return cls(vocab, lowercase=lowercase)

    def _split_word(self, word: str) -> tuple[str, ...]:
        if len(word) > MAX_CHARS_PER_WORD:
            return (UNK,)
        pieces = []
        start = 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    break
                end -= 1
            else:
                return (UNK,)
            pieces.append(piece)
            start = end
        return tuple(pieces)

    def tokenize(self, text: str) -> list[str]:
        """WordPiece tokens of `text`, without special tokens."""
        tokens: list[str] = []
        for word in basic_tokenize(text, self.lowercase):
            if word in SPECIAL_TOKENS:
                tokens.append(word)
            else:
                tokens.extend(self._word_pieces(word))
        return tokens

    def convert_tokens_to_ids(self, tokens: Iterable[str]) -> list[int]:
        return [self.vocab.get(t, self.unk_id) for t in tokens]

    def convert_ids_to_tokens(self, ids: Iterable[int]) -> list[str]:
        return [self.ids_to_tokens.get(int(i), UNK) for i in ids]

    def encode(self, text: str, max_length: int | None = None, add_special_tokens: bool = True) -> list[int]:
        """Token ids of `text`, as ``[CLS] ... [SEP]`` by default.

        Parameters
        ----------
        max_length : int, optional
            Truncate to at most this many ids, special tokens included (the end of the
            text is cut, ``[SEP]`` stays last).
        add_special_tokens : bool, default=True
            Wrap in ``[CLS]`` and ``[SEP]``.
        """
        ids = self.convert_tokens_to_ids(self.tokenize(text))
        if add_special_tokens:
            if max_length is not None:
                ids = ids[: max(max_length - 2, 0)]
            return [self.cls_id, *ids, self.sep_id]
        return ids if max_length is None else ids[:max_length]

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = True) -> str:
        """Text of `ids`: pieces joined, ``##`` continuations glued to their word."""
        special = set(SPECIAL_TOKENS)
        tokens = [t for t in self.convert_ids_to_tokens(ids) if not (skip_special_tokens and t in special)]
        return " ".join(tokens).replace(" ##", "").replace("##", "")

    def __len__(self) -> int:
        return self.vocab_size

"""WordPiece tokenizer: BERT's basic tokenization and greedy longest-match pieces."""

from __future__ import annotations

import pytest

from lait.encoders.minilm import minilm_model_dir
from lait.encoders.wordpiece import WordPieceTokenizer, basic_tokenize


@pytest.fixture(scope="module")
def tokenizer() -> WordPieceTokenizer:
    try:
        vocab = minilm_model_dir() / "vocab.txt"
    except FileNotFoundError as err:
        pytest.skip(str(err))
    return WordPieceTokenizer.from_vocab_file(vocab)


def test_basic_tokenize_lowercases_strips_accents_and_splits_punctuation():
    assert basic_tokenize("Café, naïve\tRÉSUMÉ!") == ["cafe", ",", "naive", "resume", "!"]
    assert basic_tokenize("$100 a_b") == ["$", "100", "a", "_", "b"]


def test_basic_tokenize_splits_cjk_and_drops_control_characters():
    assert basic_tokenize("北京\x00欢迎\u200bhi") == ["北", "京", "欢", "迎", "hi"]


def test_basic_tokenize_keeps_case_when_asked():
    assert basic_tokenize("New York", lowercase=False) == ["New", "York"]


def test_wordpiece_greedy_longest_match(tokenizer):
    # The example of Google's BERT README, with the uncased vocabulary.
    assert tokenizer.tokenize("Unaffable dogs!") == ["una", "##ffa", "##ble", "dogs", "!"]
    assert tokenizer.tokenize("IMG_2034.JPG") == ["im", "##g", "_", "203", "##4", ".", "jp", "##g"]


def test_overlong_word_becomes_unk(tokenizer):
    assert tokenizer.tokenize("a" * 150) == ["[UNK]"]


def test_encode_adds_special_tokens_and_truncates(tokenizer):
    ids = tokenizer.encode("a child and a woman are at waters edge in a big city .")
    assert ids[0] == tokenizer.cls_id == 101 and ids[-1] == tokenizer.sep_id == 102
    assert ids[1:4] == [1037, 2775, 1998]  # "a child and"
    short = tokenizer.encode("a child and a woman are at waters edge", max_length=5)
    assert len(short) == 5 and short[-1] == tokenizer.sep_id
    assert tokenizer.encode("a child", add_special_tokens=False) == [1037, 2775]


def test_decode_round_trip(tokenizer):
    assert tokenizer.decode(tokenizer.encode("Unaffable dogs run")) == "unaffable dogs run"
    assert tokenizer.convert_ids_to_tokens([101, 1037]) == ["[CLS]", "a"]


def test_special_ids_and_size(tokenizer):
    assert (tokenizer.pad_id, tokenizer.unk_id, tokenizer.mask_id) == (0, 100, 103)
    assert tokenizer.vocab_size == len(tokenizer.vocab) == 30522
    assert tokenizer.tokenize("the [MASK] sat") == ["the", "[MASK]", "sat"]

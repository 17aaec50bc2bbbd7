"""Named features of an image-text pair for the relevance model (LAIT's "weak semantic model").

The LAIT recipe scores pairs "over hundreds of features including text-only, image-content
and text-image cross-modal features". Here they come in four families, each named
(``text.*``, ``image.*``, ``page.*``, ``cross.*``; see :func:`feature_names`):

- text only: lengths, word and character statistics, word rarity (``wordfreq``), stopwords,
  capitalisation, digits, punctuation, fastText English confidence, boilerplate cues
  ("click", "logo", file names...), ``text_source``;
- image only: size, aspect, format, bytes per pixel, naturalness and NSFW scores from
  FilterImages, colourfulness (Hasler & Suesstrunk, 2003), entropy, edge density, the shares
  of eleven basic colour names, and the EfficientNet-Lite0 ImageNet confidences (top-k,
  entropy, and summed per coarse group of ``data/imagenet_groups.tsv``);
- page/DOM: dominant-image score, figcaption/context presence, similarity of the text
  to the page title;
- cross-modal: MiniLM similarity between the text and the probability-weighted ImageNet
  label names, word overlap with the predicted labels and their groups' everyday words,
  file-name tokens against the text, colour words in the text against the image's colours.

The learned image-text interaction lives in ``lait.scoring.relevance`` (it is trained).
Missing inputs become NaN, which the gradient-boosted classifier routes on its own.
Everything here is deterministic: same pair, same features.

Heavy models run once per batch on unique texts and images (:meth:`RelevanceFeatures.encode_texts`,
:meth:`RelevanceFeatures.encode_images`); :meth:`RelevanceFeatures.pair_features` then
combines them per pair, so a training set that pairs each caption with many images
encodes each caption and each image only once.
"""

from __future__ import annotations

import io
import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np
from PIL import Image, UnidentifiedImageError

from lait.encoders.efficientnet import DETAIL_DIM, EMBEDDING_DIM, NUM_CLASSES
from lait.filters.text_lexicon import load_word_list
from lait.records import NETWORK_OUTPUT_KEYS

__all__ = ["RelevanceFeatures", "TextEncoding", "ImageEncoding", "load_imagenet_groups", "image_statistics", "stem",
           "text_statistics", "words_of", "COLOUR_NAMES"]

DATA_DIR = Path(__file__).resolve().parent / "data"
GROUPS_FILE = DATA_DIR / "imagenet_groups.tsv"
TEXT_SOURCES = ("alt", "title", "figcaption", "og_image_alt", "context")
IMAGE_FORMATS = ("JPEG", "PNG", "GIF", "WEBP")
# Side of the thumbnail the pixel statistics are computed on: enough for colour shares
# and entropy, and cheap (decode with draft() + one resize).
STATS_SIDE = 64
TOP_K = 5

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_URL_OR_FILE = re.compile(r"https?://|www\.|\.(?:jpe?g|png|gif|webp|svg|bmp)\b", re.I)
# Phrases that mark an alt as page furniture rather than a description.
_BOILERPLATE = {
    "click": re.compile(r"\b(?:click|tap|here|download|subscribe|share|follow|sign ?up|log ?in|read more)\b", re.I),
    "graphic": re.compile(r"\b(?:logo|icon|banner|button|arrow|avatar|thumbnail|thumb|spacer|pixel|badge|sprite|placeholder|loading|gif)\b", re.I),
    "media_word": re.compile(r"\b(?:image|images|img|photo|photos|picture|pic|graphic|screenshot|illustration)\b", re.I),
    "credit": re.compile(r"(?:©|\(c\)|\bcopyright\b|\bcredit\b|\bcourtesy\b|\bgetty\b|\breuters\b|\bap photo\b|\bshutterstock\b)", re.I),
    "commerce": re.compile(r"(?:\$|€|£|\bprice\b|\bbuy\b|\bsale\b|\bshop\b|\bcart\b|\border\b|\bstars?\b|\brating\b|\breview\b)", re.I),
    "advert": re.compile(r"\b(?:advert\w*|sponsored|ad|ads|promo\w*)\b", re.I),
}
# Words that name no content in a file name (camera defaults, sizes, CMS suffixes).
_GENERIC_FILE_WORDS = {
    "img", "image", "images", "dsc", "dscn", "dscf", "pic", "photo", "jpg", "jpeg", "png", "gif", "webp",
    "thumb", "thumbnail", "small", "large", "medium", "full", "scaled", "crop", "cropped", "resized", "main",
    "default", "original", "orig", "copy", "final", "edit", "hd", "web", "www", "http", "https", "com",
    "uploads", "wp", "content", "px", "x", "v", "the", "and", "of",
}

# Eleven basic colour terms (Berlin & Kay) and the caption words that name them.
COLOUR_NAMES = ("black", "white", "gray", "red", "orange", "yellow", "green", "blue", "purple", "pink", "brown")
_COLOUR_WORDS = {
    "black": "black", "dark": "black", "white": "white", "snowy": "white", "gray": "gray", "grey": "gray",
    "silver": "gray", "red": "red", "orange": "orange", "yellow": "yellow", "blond": "yellow",
    "blonde": "yellow", "gold": "yellow", "golden": "yellow", "green": "green", "grassy": "green",
    "blue": "blue", "purple": "purple", "violet": "purple", "pink": "pink", "brown": "brown", "tan": "brown",
}


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    """scikit-learn's English stop words, from a copy (importing scikit-learn for them costs
    every worker more than a second)."""
    return frozenset(load_word_list("relevance_stopwords.txt"))


@lru_cache(maxsize=200_000)
def _zipf(word: str) -> float:
    from wordfreq import zipf_frequency

    return zipf_frequency(word, "en")


def words_of(text: str | None) -> list[str]:
    """Lower-case words (letters and digits) of `text`, accents stripped."""
    if not text:
        return []
    text = unicodedata.normalize("NFKD", text)
    return [w for w in _WORD.findall("".join(c for c in text if not unicodedata.combining(c)).lower())]


def stem(word: str) -> str:
    """A crude plural/verb stem so that "dogs"/"dog" and "runs"/"run" meet; enough for overlap."""
    for suffix in ("ies", "es", "s"):
        if len(word) > 3 + len(suffix) - 1 and word.endswith(suffix) and not word.endswith("ss"):
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


def content_words(words: Sequence[str]) -> list[str]:
    """A text's content words: alphabetic, over two letters, not stop words."""
    stop = _stopwords()
    return [w for w in words if w.isalpha() and len(w) > 2 and w not in stop]


def content_stems(words: Sequence[str]) -> set[str]:
    """Stems of a text's content words."""
    return {stem(w) for w in content_words(words)}


# ----------------------------------------------------------------------------- groups


@dataclass(frozen=True)
class ImageNetGroup:
    name: str
    words: frozenset[str]
    members: tuple[int, ...]


def load_imagenet_groups(class_names: Sequence[str], path: Path = GROUPS_FILE) -> list[ImageNetGroup]:
    """Coarse ImageNet groups from ``imagenet_groups.tsv``; raises on a member it cannot resolve."""
    index = {}
    for i, name in enumerate(class_names):
        index.setdefault(name, []).append(i)
    groups = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, words, members = line.split("\t")
        ids: set[int] = set()
        for member in members.split(","):
            member = member.strip()
            if re.fullmatch(r"\d+(-\d+)?", member):
                lo, _, hi = member.partition("-")
                ids.update(range(int(lo), int(hi or lo) + 1))
            elif member in index:
                ids.update(index[member])
            else:
                raise ValueError(f"{path.name}: group {name}: unknown ImageNet class {member!r}")
        groups.append(ImageNetGroup(name, frozenset(stem(w) for w in words.split()), tuple(sorted(ids))))
    return groups


# ----------------------------------------------------------------------------- text only

TEXT_STAT_NAMES = [
    "text.n_chars", "text.log_n_chars", "text.n_words", "text.mean_word_len", "text.max_word_len",
    "text.frac_upper", "text.frac_title_words", "text.frac_digit_chars", "text.frac_punct_chars",
    "text.frac_space_chars", "text.frac_non_ascii", "text.frac_alpha_words", "text.frac_digit_words",
    "text.stopword_share", "text.rare_word_ratio", "text.mean_zipf", "text.min_zipf", "text.frac_unknown_words",
    "text.n_unique_ratio", "text.frac_ing_words", "text.starts_with_article", "text.ends_with_period",
    "text.has_url_or_file", "text.n_sentences", "text.frac_colour_words", "text.is_all_upper",
    "text.has_pipe_or_dash_sep", "text.has_colon",
    *[f"text.boilerplate.{name}" for name in _BOILERPLATE],
    *[f"text.source.{s}" for s in (*TEXT_SOURCES, "other", "missing")],
    "text.alt_equals_text", "text.title_equals_text",
]


def text_statistics(text: str, text_source: str | None = None) -> list[float]:
    """Text-only features (no model): ``TEXT_STAT_NAMES`` but the last two (alt/title equality, per pair)."""
    text = text or ""
    n = max(len(text), 1)
    words = words_of(text)
    raw_words = text.split()
    nw = max(len(words), 1)
    zipfs = [_zipf(w) for w in words] or [0.0]
    stop = _stopwords()
    stripped = text.strip()
    first = words[0] if words else ""
    feats = [
        float(len(text)), math.log1p(len(text)), float(len(words)),
        float(np.mean([len(w) for w in words])) if words else 0.0, float(max((len(w) for w in words), default=0)),
        sum(c.isupper() for c in text) / n,
        sum(w[:1].isupper() for w in raw_words) / max(len(raw_words), 1),
        sum(c.isdigit() for c in text) / n,
        sum(unicodedata.category(c).startswith("P") for c in text) / n,
        sum(c.isspace() for c in text) / n,
        sum(ord(c) > 127 for c in text) / n,
        sum(w.isalpha() for w in words) / nw, sum(w.isdigit() for w in words) / nw,
        sum(w in stop for w in words) / nw,
        sum(z < 3.0 for z in zipfs) / nw, float(np.mean(zipfs)), float(min(zipfs)),
        sum(z == 0.0 for z in zipfs) / nw,
        len(set(words)) / nw, sum(w.endswith("ing") for w in words) / nw,
        float(first in ("a", "an", "the", "two", "three", "several", "some")),
        float(stripped.endswith(".")),
        float(bool(_URL_OR_FILE.search(text))),
        float(len(re.findall(r"[.!?](?:\s|$)", stripped)) or (1 if stripped else 0)),
        sum(w in _COLOUR_WORDS for w in words) / nw,
        float(stripped.isupper() and any(c.isalpha() for c in stripped)),
        float(bool(re.search(r"\s[|\-–—:]\s", text))), float(":" in text),
    ]
    feats += [float(bool(rx.search(text))) for rx in _BOILERPLATE.values()]
    source = text_source if text_source in TEXT_SOURCES else ("missing" if not text_source else "other")
    feats += [float(source == s) for s in (*TEXT_SOURCES, "other", "missing")]
    return feats


# ----------------------------------------------------------------------------- image only

IMAGE_STAT_NAMES = [
    "image.decoded", "image.width", "image.height", "image.log_pixels", "image.aspect", "image.log_aspect",
    "image.min_side", "image.log_bytes", "image.bytes_per_pixel",
    *[f"image.format.{f.lower()}" for f in (*IMAGE_FORMATS, "other")],
    "image.has_alpha", "image.colourfulness", "image.entropy", "image.brightness_mean", "image.brightness_std",
    "image.saturation_mean", "image.edge_density", "image.n_colours_q", "image.top8_colour_share",
    "image.is_grayscale", "image.white_border",
    *[f"image.colour.{c}" for c in COLOUR_NAMES],
]


def _colour_shares(rgb: np.ndarray) -> np.ndarray:
    """Share of pixels per basic colour name, from an [H, W, 3] uint8 array (rules on HSV)."""
    hsv = np.asarray(Image.fromarray(rgb).convert("HSV"), dtype=np.float32) / 255.0
    h, s, v = hsv[..., 0] * 360.0, hsv[..., 1], hsv[..., 2]
    label = np.full(h.shape, -1, dtype=np.int8)
    black, white, gray = v < 0.2, (s < 0.15) & (v > 0.8), s < 0.15
    chroma = ~(black | gray)
    brown = chroma & (h >= 10) & (h < 45) & (v < 0.6)
    hue_bins = [(0, 10, "red"), (10, 40, "orange"), (40, 70, "yellow"), (70, 170, "green"),
                (170, 260, "blue"), (260, 290, "purple"), (290, 335, "pink"), (335, 361, "red")]
    for lo, hi, name in hue_bins:
        label[chroma & ~brown & (h >= lo) & (h < hi)] = COLOUR_NAMES.index(name)
    # Light, weakly saturated reds read as pink.
    label[chroma & ~brown & ((h < 10) | (h >= 335)) & (s < 0.5) & (v > 0.7)] = COLOUR_NAMES.index("pink")
    label[brown] = COLOUR_NAMES.index("brown")
    label[gray & ~black & ~white] = COLOUR_NAMES.index("gray")
    label[white] = COLOUR_NAMES.index("white")
    label[black] = COLOUR_NAMES.index("black")
    counts = np.bincount(label.ravel()[label.ravel() >= 0], minlength=len(COLOUR_NAMES))
    return counts / max(label.size, 1)


def decode_image(image_bytes: bytes | None) -> Image.Image | None:
    """RGB image of `image_bytes`, or None when missing or undecodable (never raises)."""
    if not image_bytes:
        return None
    try:
        image = Image.open(io.BytesIO(image_bytes))
        image.load()
        return image
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError, SyntaxError):
        return None


def image_statistics(image: Image.Image | None, image_bytes: bytes | None, pair: dict) -> list[float]:
    """Image-only pixel and file features in the order of ``IMAGE_STAT_NAMES`` (NaN when unknown)."""
    nan = float("nan")
    width = pair.get("width") or (image.width if image is not None else None)
    height = pair.get("height") or (image.height if image is not None else None)
    fmt = pair.get("image_format") or (image.format if image is not None else None)
    size_known = bool(width and height)
    pixels = float(width * height) if size_known else nan
    n_bytes = float(len(image_bytes)) if image_bytes else nan
    feats = [
        float(image is not None), float(width or nan), float(height or nan), math.log(pixels) if size_known else nan,
        width / height if size_known else nan, math.log(width / height) if size_known else nan,
        float(min(width, height)) if size_known else nan,
        math.log(n_bytes) if image_bytes else nan, n_bytes / pixels if size_known and image_bytes else nan,
    ]
    fmt = (fmt or "").upper()
    feats += [float(fmt == f) for f in IMAGE_FORMATS] + [float(bool(fmt) and fmt not in IMAGE_FORMATS)]
    if image is None:
        return feats + [nan] * (len(IMAGE_STAT_NAMES) - len(feats))
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    thumb = image.convert("RGB")
    thumb.thumbnail((STATS_SIDE, STATS_SIDE), Image.Resampling.BILINEAR)
    rgb = np.asarray(thumb, dtype=np.uint8)
    x = rgb.astype(np.float32)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    rg, yb = r - g, 0.5 * (r + g) - b
    colourfulness = math.hypot(rg.std(), yb.std()) + 0.3 * math.hypot(rg.mean(), yb.mean())
    gray = 0.299 * r + 0.587 * g + 0.114 * b
    hist = np.bincount(gray.astype(np.uint8).ravel(), minlength=256) / gray.size
    entropy = float(-(hist[hist > 0] * np.log2(hist[hist > 0])).sum())
    saturation = (x.max(-1) - x.min(-1)) / np.maximum(x.max(-1), 1.0)
    edges = (np.abs(np.diff(gray, axis=0)).mean() + np.abs(np.diff(gray, axis=1)).mean()) / 255.0
    quant = (rgb // 32).astype(np.int32)
    codes = quant[..., 0] * 64 + quant[..., 1] * 8 + quant[..., 2]
    code_counts = np.sort(np.bincount(codes.ravel(), minlength=512))[::-1]
    border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]]).astype(np.float32)
    feats += [
        float(has_alpha), colourfulness / 100.0, entropy, float(gray.mean() / 255.0), float(gray.std() / 255.0),
        float(saturation.mean()), float(edges), float((code_counts > 0).sum()), float(code_counts[:8].sum() / codes.size),
        float(np.abs(rg).mean() < 2 and np.abs(yb).mean() < 2), float((border.min(-1) > 240).mean()),
    ]
    return feats + _colour_shares(rgb).tolist()


# ----------------------------------------------------------------------------- file names


def file_name_words(image_url: str | None) -> list[str]:
    """Content words of the image's file name: "/img/Red-Fox_in-snow_1024x768.jpg" -> [red, fox, snow]."""
    if not image_url:
        return []
    try:
        path = unquote(urlsplit(image_url).path)
    except ValueError:
        return []
    stem = path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    words = words_of(_CAMEL.sub(" ", stem))
    return [w for w in words if len(w) > 2 and not w.isdigit() and w not in _GENERIC_FILE_WORDS
            and not re.fullmatch(r"\d+x\d+|[a-f0-9]{8,}|\w*\d\w*", w)]


# ----------------------------------------------------------------------------- encodings


# An image's vector for relevance: EfficientNet's pooled embedding followed by its detail.
IMAGE_VECTOR_DIM = EMBEDDING_DIM + DETAIL_DIM
# The side of the image's second, wider look: EfficientNet's pooled embedding of the image
# scaled to 320 px (its objects larger on the network's grid) tells captions of look-alike
# photos apart better than the 224 px pass FilterImages shares (bench/bench_relevance_variants.py).
WIDE_INPUT_SIZE = 320


def precomputed_image_outputs(pair: dict) -> tuple[np.ndarray, np.ndarray] | None:
    """(image vector [1792], probs [1000]) from the network outputs an earlier stage stored in `pair`, else None."""
    arrays = []
    for key, size in zip(NETWORK_OUTPUT_KEYS, (EMBEDDING_DIM, NUM_CLASSES, DETAIL_DIM)):
        value = pair.get(key)
        try:
            array = (np.frombuffer(value, dtype=np.float32) if isinstance(value, bytes | bytearray)
                     else np.asarray(value, dtype=np.float32))
        except (ValueError, TypeError):
            return None
        if array.shape != (size,):
            return None
        arrays.append(array)
    embedding, probs, detail = arrays
    return np.concatenate([embedding, detail]), probs


@dataclass
class TextEncoding:
    """Per unique text: MiniLM embedding, text-only features and stemmed word sets."""

    embeddings: np.ndarray  # [N, 384], L2-normalised
    statistics: np.ndarray  # [N, len(TEXT_STAT_NAMES) - 4]
    language: np.ndarray  # [N] fastText P(en)
    stems: list[frozenset[str]]
    words: list[list[str]]


@dataclass
class ImageEncoding:
    """Per unique image: EfficientNet-Lite0 outputs and image-only statistics (NaN rows when undecodable)."""

    embeddings: np.ndarray  # [N, IMAGE_VECTOR_DIM]: EfficientNet's pooled embedding, then its detail
    probs: np.ndarray  # [N, 1000]
    statistics: np.ndarray  # [N, len(IMAGE_STAT_NAMES)]
    decoded: np.ndarray  # [N] bool
    wide: np.ndarray  # [N, EMBEDDING_DIM]: EfficientNet's pooled embedding at WIDE_INPUT_SIZE


class RelevanceFeatures:
    """Extracts the named features of image-text pairs; holds the models (build once per worker).

    Parameters
    ----------
    device : str, optional
        Torch device for MiniLM and EfficientNet-Lite0 (default CPU, where EfficientNet-Lite0
        runs on ONNX Runtime on one thread, as in FilterImages).
    text_encoder, image_model, language_identifier : optional
        Already-built models to share (tests, training); built here when None.
    label_embeddings : ndarray [1000, 384], optional
        MiniLM embeddings of the ImageNet label prompts; a model file stores them so that
        workers need not encode 1000 prompts in `setup`. Computed when None.

    Attributes
    ----------
    names : list of str
        Feature names, the column order of :meth:`pair_features`.
    """

    def __init__(self, device: str | None = None, text_encoder=None, image_model=None, language_identifier=None,
                 label_embeddings: np.ndarray | None = None):
        from lait.encoders.efficientnet import IMAGENET_CLASSES
        from lait.encoders.efficientnet_onnx import load_efficientnet
        from lait.encoders.minilm import MiniLMEncoder
        from lait.filters.language import LanguageIdentifier

        self.text_encoder = text_encoder or MiniLMEncoder(device=device or "cpu")
        self.image_model = image_model or load_efficientnet(device or "cpu")
        self.language_identifier = language_identifier or LanguageIdentifier()
        self.class_names = list(IMAGENET_CLASSES)
        self.groups = load_imagenet_groups(self.class_names)
        # [1000, G] membership matrix: group probability = probs @ membership.
        self.membership = np.zeros((len(self.class_names), len(self.groups)), dtype=np.float32)
        for g, group in enumerate(self.groups):
            self.membership[list(group.members), g] = 1.0
        if label_embeddings is None:
            label_embeddings = self.text_encoder.encode(label_prompts(self.class_names))
        self.label_embeddings = np.asarray(label_embeddings, dtype=np.float32)
        self.class_stems = [frozenset(stem(w) for w in words_of(n)) for n in self.class_names]
        self.names = feature_names([g.name for g in self.groups])

    # -- heavy, batched parts ------------------------------------------------------------

    def encode_texts(self, texts: Sequence[str]) -> TextEncoding:
        texts = [t or "" for t in texts]
        return TextEncoding(self.text_encoder.encode(texts), *self.encode_texts_without_embeddings(texts))

    def encode_texts_without_embeddings(self, texts: Sequence[str]) -> tuple:
        """The model-free parts of :class:`TextEncoding`: statistics, P(en), stems, words."""
        texts = [t or "" for t in texts]
        words = [words_of(t) for t in texts]
        return (
            np.array([text_statistics(t) for t in texts], dtype=np.float32).reshape(len(texts), -1),
            np.array([self.language_identifier.score(t, "en") for t in texts], dtype=np.float32),
            [frozenset(stem(w) for w in ws) for ws in words],
            words,
        )

    def encode_images(self, images: Sequence[bytes | None], pairs: Sequence[dict] | None = None) -> ImageEncoding:
        """Encode image files; `pairs` (same length) lends width/height/format when known.

        A pair that already carries EfficientNet-Lite0 outputs for its image (keys
        ``efficientnet_embedding`` [1280], ``efficientnet_probs`` [1000] and ``efficientnet_detail``
        [512], arrays or raw float32 bytes, e.g. from FilterImages) is not run through the network
        again at 224 px; every decoded image gets its :data:`WIDE_INPUT_SIZE` pass here.
        """
        pairs = pairs or [{} for _ in images]
        decoded = [decode_image(b) for b in images]
        emb = np.full((len(images), IMAGE_VECTOR_DIM), np.nan, dtype=np.float32)
        probs = np.full((len(images), len(self.class_names)), np.nan, dtype=np.float32)
        todo = []
        for i, (image, pair) in enumerate(zip(decoded, pairs)):
            given = precomputed_image_outputs(pair)
            if image is None:
                continue
            if given is not None:
                emb[i], probs[i] = given
            else:
                todo.append(i)
        for start in range(0, len(todo), 32):
            rows = todo[start : start + 32]
            e, p, detail = self.image_model.encode([decoded[i] for i in rows])
            emb[rows], probs[rows] = np.hstack([e, detail]), p
        wide = np.full((len(images), EMBEDDING_DIM), np.nan, dtype=np.float32)
        seen = [i for i, image in enumerate(decoded) if image is not None]
        for start in range(0, len(seen), 32):
            rows = seen[start : start + 32]
            wide[rows] = self.image_model.encode([decoded[i] for i in rows], size=WIDE_INPUT_SIZE).embeddings
        stats = np.array([image_statistics(im, b, pr) for im, b, pr in zip(decoded, images, pairs)],
                         dtype=np.float32).reshape(len(images), -1)
        return ImageEncoding(emb, probs, stats, np.array([im is not None for im in decoded]), wide)

    # -- per pair --------------------------------------------------------------------------

    def pair_features(
        self,
        pairs: Sequence[dict],
        texts: TextEncoding,
        images: ImageEncoding,
        text_index: Sequence[int] | None = None,
        image_index: Sequence[int] | None = None,
        page_titles: TextEncoding | None = None,
    ) -> np.ndarray:
        """Feature matrix [N, len(names)] for `pairs`.

        `text_index[i]` / `image_index[i]` say which row of `texts` / `images` belongs to
        pair i (identity when None). `page_titles` encodes each pair's ``page_title``
        (row i for pair i); without it page-title similarity is NaN.
        """
        n = len(pairs)
        ti = np.arange(n) if text_index is None else np.asarray(text_index)
        ii = np.arange(n) if image_index is None else np.asarray(image_index)
        t_emb, p = texts.embeddings[ti], images.probs[ii]
        # Label-side similarities, vectorised over pairs.
        sims = t_emb @ self.label_embeddings.T  # [N, 1000]
        weighted = p @ self.label_embeddings
        weighted /= np.linalg.norm(weighted, axis=1, keepdims=True).clip(1e-9)
        top = np.argsort(-np.nan_to_num(p, nan=0.0), axis=1)[:, :TOP_K]
        group_p = p @ self.membership  # [N, G]
        rows = []
        for r, pair in enumerate(pairs):
            rows.append(self._one_pair(pair, r, ti[r], ii[r], texts, images, sims[r], weighted[r], top[r],
                                       group_p[r], t_emb[r], page_titles))
        return np.asarray(rows, dtype=np.float32).reshape(n, len(self.names))

    def _one_pair(self, pair, r, t, i, texts, images, sims, weighted, top, group_p, t_emb, page_titles) -> list[float]:
        nan = float("nan")
        text = pair.get("text") or ""
        stems, words = texts.stems[t], texts.words[t]
        p = images.probs[i]
        decoded = bool(images.decoded[i])
        feats = list(texts.statistics[t])
        source = pair.get("text_source")
        source = source if source in TEXT_SOURCES else ("missing" if not source else "other")
        # Overwrite the source one-hot (statistics were computed per unique text, source is per pair).
        start = TEXT_STAT_NAMES.index("text.source.alt")
        for k, s in enumerate((*TEXT_SOURCES, "other", "missing")):
            feats[start + k] = float(source == s)
        feats += [float(pair.get("alt") is not None and " ".join(str(pair["alt"]).split()) == text),
                  float(pair.get("title") is not None and " ".join(str(pair["title"]).split()) == text)]
        feats.append(float(texts.language[t]))

        # Image only.
        feats += list(images.statistics[i])
        for key in ("natural_score", "nsfw_score"):
            value = pair.get(key)
            feats.append(float(value) if value is not None else nan)
        if decoded:
            ps = np.sort(p)[::-1]
            entropy = float(-(p * np.log(p.clip(1e-12))).sum())
            feats += [float(ps[0]), float(ps[1]), float(ps[:5].sum()), entropy, float(ps[0] - ps[1]),
                      float(group_p.max())]
            feats += group_p.tolist()
        else:
            feats += [nan] * (6 + len(self.groups))

        # Page / DOM context.
        dominant = pair.get("dominant_score")
        title = pair.get("page_title")
        title_words = set(stem(w) for w in words_of(title))
        feats += [float(dominant) if dominant is not None else nan,
                  float(bool(pair.get("figcaption"))), float(bool(pair.get("context"))),
                  float(bool(title))]
        if title and page_titles is not None:
            feats.append(float(page_titles.embeddings[r] @ t_emb))
        else:
            feats.append(nan)
        feats += [len(stems & title_words) / max(len(stems), 1) if title else nan,
                  float(bool(title) and text.lower() in title.lower())]

        # Cross-modal: labels.
        if decoded:
            content = stems - _stopwords()
            top_stems = [self.class_stems[c] for c in top]
            top_overlap = sum(float(p[c]) * bool(content & s) for c, s in zip(top, top_stems))
            mentioned = np.array([bool(content & g.words) for g in self.groups], dtype=np.float32)
            mentioned_p = group_p * mentioned
            order = np.argsort(-sims)
            rank_top1 = float(np.where(order == top[0])[0][0]) / len(order)
            log_p = np.log(p.clip(1e-8))
            corr = float(np.corrcoef(sims, log_p)[0, 1]) if sims.std() > 0 and log_p.std() > 0 else 0.0
            soft = np.exp((sims - sims.max()) / 0.05)
            soft /= soft.sum()
            feats += [
                float(weighted @ t_emb), float(sims @ p), float(sims[top[0]]), float(sims[top].max()),
                float((sims[top] * p[top]).sum() / max(p[top].sum(), 1e-9)), float(sims.max()),
                rank_top1, corr, float((soft * log_p).sum()), top_overlap,
                float(mentioned.sum()), float(mentioned_p.sum()), float(mentioned_p.max() if mentioned.any() else nan),
                float(((group_p < 0.02) & (mentioned > 0)).sum()),
            ]
            feats += mentioned.tolist() + mentioned_p.tolist()
        else:
            content = stems - _stopwords()
            mentioned = [float(bool(content & g.words)) for g in self.groups]
            feats += [nan] * 10 + [float(sum(mentioned))] + [nan] * 3 + mentioned + [nan] * len(self.groups)

        # Cross-modal: file name.
        fname = file_name_words(pair.get("image_url"))
        fstems = set(stem(w) for w in fname)
        if fname:
            overlap = len(fstems & stems)
            label_overlap = sum(float(p[c]) * bool(fstems & self.class_stems[c]) for c in top) if decoded else nan
            feats += [1.0, float(len(fname)), float(overlap), overlap / max(len(fstems | stems), 1),
                      overlap / max(len(fstems), 1), label_overlap]
        else:
            feats += [0.0, 0.0, nan, nan, nan, nan]

        # Cross-modal: colour words against the image's colour shares.
        shares = images.statistics[i][IMAGE_STAT_NAMES.index("image.colour.black"):]
        named = {_COLOUR_WORDS[w] for w in words if w in _COLOUR_WORDS}
        if named and decoded:
            s = [float(shares[COLOUR_NAMES.index(c)]) for c in named]
            feats += [float(len(named)), float(np.mean(s)), float(min(s)), float(max(s)), float(sum(x < 0.02 for x in s))]
        else:
            feats += [float(len(named))] + [nan] * 4
        return feats

    def features(self, pairs: Sequence[dict]) -> np.ndarray:
        """All features of `pairs` (each with ``text`` and ``image_bytes``; the rest optional)."""
        texts, images, titles = self.encode(pairs)
        return self.pair_features(pairs, texts, images, page_titles=titles)

    def encode(self, pairs: Sequence[dict]) -> tuple[TextEncoding, ImageEncoding, TextEncoding]:
        """Text, image and page-title encodings of `pairs`, row i for pair i."""
        texts = self.encode_texts([pr.get("text") or "" for pr in pairs])
        images = self.encode_images([pr.get("image_bytes") for pr in pairs], pairs)
        titles = self.encode_texts([pr.get("page_title") or "" for pr in pairs])
        return texts, images, titles


def label_prompts(class_names: Sequence[str]) -> list[str]:
    """The sentences MiniLM embeds for the ImageNet labels ("a photo of a golden retriever")."""
    return [f"a photo of a {name}" for name in class_names]


def feature_names(group_names: Sequence[str]) -> list[str]:
    """Names of the columns of :meth:`RelevanceFeatures.pair_features`, in order."""
    names = list(TEXT_STAT_NAMES) + ["text.english_confidence"]
    names += IMAGE_STAT_NAMES + ["image.natural_score", "image.nsfw_score",
                                 "image.top1_prob", "image.top2_prob", "image.top5_prob_sum", "image.class_entropy",
                                 "image.top1_margin", "image.max_group_prob"]
    names += [f"image.group_prob.{g}" for g in group_names]
    names += ["page.dominant_score", "page.has_figcaption", "page.has_context", "page.has_title",
              "page.title_similarity", "page.title_word_overlap", "page.text_in_title"]
    names += ["cross.label_weighted_similarity", "cross.label_expected_similarity", "cross.top1_label_similarity",
              "cross.top5_max_similarity", "cross.top5_weighted_similarity", "cross.best_label_similarity",
              "cross.top1_rank_by_text", "cross.label_similarity_logprob_corr", "cross.text_label_cross_entropy",
              "cross.top5_name_overlap", "cross.n_groups_mentioned", "cross.mentioned_group_prob_sum",
              "cross.mentioned_group_prob_max", "cross.mentioned_groups_absent"]
    names += [f"cross.mentions.{g}" for g in group_names]
    names += [f"cross.mentioned_prob.{g}" for g in group_names]
    names += ["cross.file_name.has_words", "cross.file_name.n_words", "cross.file_name.overlap",
              "cross.file_name.jaccard", "cross.file_name.coverage", "cross.file_name.label_overlap"]
    names += ["cross.colour.n_named", "cross.colour.mean_share", "cross.colour.min_share", "cross.colour.max_share",
              "cross.colour.n_absent"]
    return names

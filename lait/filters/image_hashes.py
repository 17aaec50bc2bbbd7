"""Image hashes for deduplication: SHA-1 of the bytes and a 64-bit DCT perceptual hash.

The perceptual hash is the classic pHash (Zauner 2010, as in the `imagehash` package):
grey 32x32 thumbnail, 2-D DCT-II, the 8x8 lowest frequencies compared with their median.
Re-encoding, resizing and mild colour changes keep it within a few bits; `Aggregate`
merges images whose hashes differ in at most `--phash_distance` bits.
"""

from __future__ import annotations

import hashlib

import numpy as np
from PIL import Image

_THUMB = 32
_LOW = 8
# Unnormalised DCT-II basis (what scipy.fftpack.dct computes, up to a common factor 2).
_DCT = np.cos(np.pi * np.outer(np.arange(_THUMB), 2 * np.arange(_THUMB) + 1) / (2 * _THUMB))


def sha1_hex(data: bytes) -> str:
    """SHA-1 of `data`, 40 hex digits."""
    return hashlib.sha1(data).hexdigest()


def phash(image: Image.Image) -> str:
    """64-bit DCT perceptual hash of `image` as 16 hex digits (row-major bits, MSB first)."""
    grey = image.convert("L").resize((_THUMB, _THUMB), Image.Resampling.LANCZOS)
    pixels = np.asarray(grey, dtype=np.float64)
    low = (_DCT @ pixels @ _DCT.T)[:_LOW, :_LOW]
    bits = (low > np.median(low)).ravel()
    return f"{int(''.join('1' if b else '0' for b in bits), 2):016x}"


def hamming_distance(hash_a: str, hash_b: str) -> int:
    """Number of differing bits between two hex hashes of the same length."""
    return (int(hash_a, 16) ^ int(hash_b, 16)).bit_count()

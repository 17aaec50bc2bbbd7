"""A GPU's peak dense bf16 throughput, the denominator of model FLOPs utilisation (MFU).

MFU divides the FLOP/s a training run achieves by what the device could do at most, so the
peak must be the one of the device the run is on: an A100 run divided by an H100's peak
reads three times too low. The peaks are NVIDIA's datasheet figures for dense bf16 tensor
math (without structured sparsity, which doubles the datasheet's headline figure).

>>> peak_flops("NVIDIA A100-SXM4-80GB")
312000000000000.0
>>> peak_flops("NVIDIA GeForce GTX 1080") is None
True
"""

from __future__ import annotations

import re

# (words of the device name, peak FLOP/s): the first entry whose words the name all holds wins,
# so the PCIe and NVL cards of a family come before its SXM part.
PEAKS: tuple[tuple[tuple[str, ...], float], ...] = (
    (("h100", "pcie"), 756e12),
    (("h100", "nvl"), 835e12),
    (("h200", "nvl"), 835e12),
    (("h100",), 989e12),  # SXM5
    (("h200",), 989e12),
    (("gh200",), 989e12),
    (("a100",), 312e12),
    (("l40s",), 362e12),
    (("l40",), 181e12),
    (("l4",), 121e12),
)


def peak_flops(device_name: str) -> float | None:
    """Peak dense bf16 FLOP/s of a GPU from its name (``torch.cuda.get_device_name()``), None when unknown."""
    words = set(re.findall(r"[a-z0-9]+", device_name.lower()))
    return next((peak for needed, peak in PEAKS if words.issuperset(needed)), None)

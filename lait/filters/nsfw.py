"""NSFW score with NudeNet's `320n.onnx` detector, run by onnxruntime in batches.

NudeNet is a YOLOv8 detector of 18 body-part classes; most of them (faces, feet, covered
parts, belly, a bare male chest) are ordinary in photos of people. The score of an image
is the highest confidence of any box among the explicit classes only: exposed genitalia,
female breasts, buttocks and anus. Preprocessing follows NudeNet's own code: pad the image
to a square at the bottom/right with black, resize to 320x320, RGB in [0, 1].
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np
from PIL import Image

# Output class order of 320n.onnx (from the nudenet package source).
NUDENET_CLASSES = [
    "FEMALE_GENITALIA_COVERED", "FACE_FEMALE", "BUTTOCKS_EXPOSED", "FEMALE_BREAST_EXPOSED",
    "FEMALE_GENITALIA_EXPOSED", "MALE_BREAST_EXPOSED", "ANUS_EXPOSED", "FEET_EXPOSED",
    "BELLY_COVERED", "FEET_COVERED", "ARMPITS_COVERED", "ARMPITS_EXPOSED", "FACE_MALE",
    "BELLY_EXPOSED", "MALE_GENITALIA_EXPOSED", "ANUS_COVERED", "FEMALE_BREAST_COVERED",
    "BUTTOCKS_COVERED",
]
EXPLICIT_CLASSES = ("BUTTOCKS_EXPOSED", "FEMALE_BREAST_EXPOSED", "FEMALE_GENITALIA_EXPOSED",
                    "ANUS_EXPOSED", "MALE_GENITALIA_EXPOSED")
_EXPLICIT_ROWS = np.array([4 + NUDENET_CLASSES.index(name) for name in EXPLICIT_CLASSES])
INPUT_SIDE = 320


def nudenet_model_path() -> str:
    """Path of `320n.onnx` inside the installed `nudenet` package (installed with --no-deps)."""
    spec = importlib.util.find_spec("nudenet")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("nudenet is not installed: pip install --no-deps nudenet==3.4.2")
    return os.path.join(spec.submodule_search_locations[0], "320n.onnx")


class NsfwScorer:
    """`score(images) -> np.ndarray` of NSFW scores in [0, 1], one per image.

    Parameters
    ----------
    model_path : str or None, default=None
        The ONNX file; None uses the one in the `nudenet` package.
    threads : int, default=1
        onnxruntime intra-op threads. One per Beam worker process is the efficient choice.
    batch_size : int, default=16
        Images per onnxruntime call.
    """

    def __init__(self, model_path: str | None = None, threads: int = 1, batch_size: int = 16) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(model_path or nudenet_model_path(), options,
                                                    providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.batch_size = batch_size

    def score(self, images: list[Image.Image]) -> np.ndarray:
        """NSFW score per image: the best explicit-class detection confidence."""
        scores = np.zeros(len(images), dtype=np.float32)
        for start in range(0, len(images), self.batch_size):
            chunk = images[start:start + self.batch_size]
            batch = np.zeros((len(chunk), 3, INPUT_SIDE, INPUT_SIDE), dtype=np.float32)
            for row, image in zip(batch, chunk):
                _square_input(image, out=row)
            (output,) = self.session.run(None, {self.input_name: batch})
            # output: [B, 4 box values + 18 class scores, anchors]
            scores[start:start + len(chunk)] = output[:, _EXPLICIT_ROWS, :].max(axis=(1, 2))
        return np.clip(scores, 0.0, 1.0)


def _square_input(image: Image.Image, out: np.ndarray | None = None) -> np.ndarray:
    """[3, 320, 320] float32 RGB in [0, 1]: padded bottom/right to a square, then resized.

    Written into `out` (zeros, [3, 320, 320] float32: a row of the batch) when given.
    """
    if image.mode != "RGB":
        image = image.convert("RGB")
    side = max(image.size)
    scale = INPUT_SIDE / side
    resized = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                           Image.Resampling.BILINEAR, reducing_gap=2.0)
    if out is None:
        out = np.zeros((3, INPUT_SIDE, INPUT_SIDE), dtype=np.float32)
    pixels = np.asarray(resized).transpose(2, 0, 1)  # [3, h, w] uint8
    np.divide(pixels, np.float32(255.0), out=out[:, :pixels.shape[1], :pixels.shape[2]])
    return out

"""NSFW score with NudeNet's `320n.onnx` detector, run by onnxruntime in batches.

NudeNet is a YOLOv8 detector of 18 body-part classes; most of them (faces, feet, covered
parts, belly, a bare male chest) are ordinary in photos of people. The score of an image
is the highest confidence of any box among the explicit classes only: exposed genitalia,
female breasts, buttocks and anus. Preprocessing follows NudeNet's own code: pad the image
to a square at the bottom/right with black, resize to 320x320, RGB in [0, 1].

The scorer runs `320n.onnx` cut down to that score (:func:`class_scores_model`): the box
regression branch of the detection head and the decoding of boxes are left out, and the
last convolution of the class branch computes only the explicit classes. The score is the
same number the full detector gives (the same convolutions compute it), for less work.
The same cut model gives the face score, the best confidence of a face box, for the texts
that are trusted only where the photo shows a person (:mod:`lait.filters.person_names`).
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np
from PIL import Image

from lait.encoders.image_resize import resized_planes
from lait.encoders.onnx_sessions import cpu_session

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
FACE_CLASSES = ("FACE_FEMALE", "FACE_MALE")
# The cut model's outputs (:func:`class_scores_model`) and the classes each is the best of.
SCORE_CLASSES = {"nsfw_score": EXPLICIT_CLASSES, "face_score": FACE_CLASSES}
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
        self.session = cpu_session(class_scores_model(model_path or nudenet_model_path()), threads)
        self.input_name = self.session.get_inputs()[0].name
        self.batch_size = batch_size

    def score(self, images: list[Image.Image]) -> np.ndarray:
        """NSFW score per image: the best explicit-class detection confidence."""
        return self.scores(images)[0]

    def scores(self, images: list[Image.Image]) -> tuple[np.ndarray, np.ndarray]:
        """`(nsfw, face)` per image: the best explicit-class and the best face detection confidence."""
        nsfw, face = (np.zeros(len(images), dtype=np.float32) for _ in SCORE_CLASSES)
        for start in range(0, len(images), self.batch_size):
            chunk = images[start:start + self.batch_size]
            batch = np.zeros((len(chunk), 3, INPUT_SIDE, INPUT_SIDE), dtype=np.float32)
            for row, image in zip(batch, chunk):
                _square_input(image, out=row)
            nsfw[start:start + len(chunk)], face[start:start + len(chunk)] = self.session.run(
                list(SCORE_CLASSES), {self.input_name: batch})
        return np.clip(nsfw, 0.0, 1.0), np.clip(face, 0.0, 1.0)


def class_score_of_detections(output: np.ndarray, classes: tuple[str, ...] = EXPLICIT_CLASSES) -> np.ndarray:
    """[B] scores from the full detector's output [B, 4 box values + 18 class scores, anchors]:
    the best confidence of any box among `classes`.

    What :func:`class_scores_model` computes inside the network; the tests and the bench
    compare the two.
    """
    rows = [4 + NUDENET_CLASSES.index(name) for name in classes]
    return output[:, rows, :].max(axis=(1, 2))


# The last convolution of the class branch at each of the three detection scales (strides 8,
# 16, 32) in NudeNet's YOLOv8 export: [B, 18 classes, H, W] logits before the sigmoid.
_CLASS_CONVS = tuple(f"/model.22/cv3.{level}/cv3.{level}.2/Conv" for level in range(3))


def class_scores_model(model_path: str) -> bytes:
    """`320n.onnx` as a serialised model from images [B, 3, H, W] to two scores [B]: `nsfw_score`
    and `face_score`.

    Keeps the nodes the class branch needs, slices its last convolution at each scale to the
    explicit classes (and, for `face_score`, to the two face classes), and takes sigmoid(max of
    their logits), which is the max of the sigmoid outputs the full detector reports for them
    (sigmoid is increasing). The box branch, the box decoding and the other classes are not
    computed.
    """
    import onnx
    from onnx import TensorProto, helper

    full = onnx.load(model_path)
    producers = {output: node for node in full.graph.node for output in node.output}
    by_name = {node.name: node for node in full.graph.node}
    weights = {tensor.name: tensor for tensor in full.graph.initializer}
    missing = [name for name in _CLASS_CONVS if name not in by_name]
    if missing:
        raise RuntimeError(f"{model_path} is not NudeNet's YOLOv8 export: no node {missing[0]}")
    head = []
    for output, classes in SCORE_CLASSES.items():
        head += _class_score_nodes(output, [NUDENET_CLASSES.index(name) for name in classes], by_name, weights)
    body = _nodes_computing([node.input[0] for node in head if node.op_type == "Conv"], producers, full.graph.node)
    used = {name for node in body + head for name in node.input}
    outputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch"]) for name in SCORE_CLASSES]
    graph = helper.make_graph(body + head, "nudenet_class_scores", list(full.graph.input), outputs,
                              [tensor for name, tensor in weights.items() if name in used])
    model = helper.make_model(graph, opset_imports=full.opset_import, ir_version=full.ir_version)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _class_score_nodes(output: str, classes: list[int], by_name: dict, weights: dict) -> list:
    """Nodes computing `output` [B] = sigmoid(max logit of `classes` over the three scales); the
    sliced convolution weights they use are added to `weights`."""
    from onnx import helper, numpy_helper

    nodes, level_maxima = [], []
    for level, name in enumerate(_CLASS_CONVS):
        conv = by_name[name]
        features, weight, bias = conv.input
        sliced = [numpy_helper.from_array(numpy_helper.to_array(weights[weight])[classes], f"{output}_weight_{level}"),
                  numpy_helper.from_array(numpy_helper.to_array(weights[bias])[classes], f"{output}_bias_{level}")]
        weights.update({tensor.name: tensor for tensor in sliced})
        nodes += [helper.make_node("Conv", [features, sliced[0].name, sliced[1].name], [f"{output}_logits_{level}"],
                                   **{attribute.name: helper.get_attribute_value(attribute) for attribute in conv.attribute}),
                  helper.make_node("ReduceMax", [f"{output}_logits_{level}"], [f"{output}_max_{level}"],
                                   axes=[1, 2, 3], keepdims=1)]
        level_maxima.append(f"{output}_max_{level}")
    return nodes + [helper.make_node("Concat", level_maxima, [f"{output}_maxima"], axis=1),
                    helper.make_node("ReduceMax", [f"{output}_maxima"], [f"{output}_max"], axes=[1, 2, 3], keepdims=0),
                    helper.make_node("Sigmoid", [f"{output}_max"], [output])]


def _nodes_computing(outputs: list[str], producers: dict, nodes) -> list:
    """The nodes (in their graph order, which is topological) that `outputs` depend on."""
    needed, pending = set(), list(outputs)
    while pending:
        node = producers.get(pending.pop())
        if node is not None and id(node) not in needed:
            needed.add(id(node))
            pending.extend(node.input)
    return [node for node in nodes if id(node) in needed]


def _square_input(image: Image.Image, out: np.ndarray | None = None) -> np.ndarray:
    """[3, 320, 320] float32 RGB in [0, 1]: padded bottom/right to a square, then resized.

    Written into `out` (zeros, [3, 320, 320] float32: a row of the batch) when given.
    """
    scale = INPUT_SIDE / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    planes = resized_planes(image, size, Image.Resampling.BILINEAR, reducing_gap=2.0)  # [3, h, w] uint8
    if out is None:
        out = np.zeros((3, INPUT_SIDE, INPUT_SIDE), dtype=np.float32)
    np.divide(planes, np.float32(255.0), out=out[:, :size[1], :size[0]])
    return out

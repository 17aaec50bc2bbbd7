"""EfficientNet-Lite0 run by ONNX Runtime on CPU: pooled embeddings, ImageNet probabilities, detail.

The ONNX graph is written here, in memory, from the shipped PyTorch weights (nothing is
downloaded or exported to disk): each BatchNorm folded into its convolution
(:func:`lait.encoders.efficientnet.folded_weights`), TF "same" padding as the convolutions'
``SAME_UPPER`` padding, ReLU6 as ``Clip``. ONNX Runtime fuses each convolution with its
activation and runs depthwise convolutions in its blocked channel layout, which PyTorch's
CPU kernels do not; the outputs equal :class:`~lait.encoders.efficientnet.EfficientNetLite0`'s
up to float rounding (about 5e-6 on embeddings of about 1).

Example
-------
>>> from PIL import Image
>>> net = OnnxEfficientNetLite0(threads=1)
>>> embeddings, probs = net.embed_and_classify([Image.open("dog.jpg")])
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from lait.encoders.efficientnet import (
    _PIXEL_CENTRE,
    _PIXEL_SCALE,
    DETAIL_BLOCKS,
    DETAIL_DIM,
    EMBEDDING_DIM,
    INPUT_SIZE,
    NUM_CLASSES,
    EfficientNetLite0,
    NetworkOutputs,
    _square_crop,
    default_device,
    folded_weights,
)
from lait.encoders.onnx_sessions import cpu_session

INPUT_NAME, OUTPUT_NAMES = "images", ("embedding", "probs", "detail")


class OnnxEfficientNetLite0:
    """`encode(images)` and `embed_and_classify(images)` as :class:`~lait.encoders.efficientnet.EfficientNetLite0`'s,
    on ONNX Runtime.

    Parameters
    ----------
    threads : int, default=1
        ONNX Runtime intra-op threads: one per worker process where a process runs per core.
    network : EfficientNetLite0 or None, default=None
        Where the weights come from; None loads the shipped ones (the PyTorch copy is not kept).
    """

    def __init__(self, threads: int = 1, network: EfficientNetLite0 | None = None) -> None:
        model = (network or EfficientNetLite0(device="cpu")).model
        self.session = cpu_session(efficientnet_onnx_model(model), threads)

    def preprocess(self, images: list[Image.Image], size: int = INPUT_SIZE) -> np.ndarray:
        """[B, 3, size, size] float32, contiguous: the same values as EfficientNetLite0.preprocess."""
        batch = np.empty((len(images), 3, size, size), dtype=np.float32)
        for row, image in zip(batch, images):
            np.subtract(_square_crop(image, size), np.float32(_PIXEL_CENTRE), out=row)
        batch /= np.float32(_PIXEL_SCALE)
        return batch

    def embed_and_classify(self, images: list[Image.Image]) -> tuple[np.ndarray, np.ndarray]:
        """Pooled embeddings [B, 1280] and softmax class probabilities [B, 1000], both float32."""
        return self.encode(images)[:2]

    def encode(self, images: list[Image.Image], size: int = INPUT_SIZE) -> NetworkOutputs:
        """Pooled embeddings [B, 1280], class probabilities [B, 1000] and detail [B, 512], float32,
        of the images scaled to `size`."""
        if not images:
            return NetworkOutputs.empty()
        return NetworkOutputs(*self.session.run(list(OUTPUT_NAMES), {INPUT_NAME: self.preprocess(images, size)}))


def load_efficientnet(device: str | None = None, threads: int = 1) -> OnnxEfficientNetLite0 | EfficientNetLite0:
    """EfficientNet-Lite0 on ONNX Runtime for the CPU (`threads` intra-op threads), on PyTorch for
    another device (None: CUDA when available)."""
    if torch.device(device or default_device()).type == "cpu":
        return OnnxEfficientNetLite0(threads=threads)
    return EfficientNetLite0(device=device)


def efficientnet_onnx_model(model: torch.nn.Module) -> bytes:
    """The serialised ONNX model of an EfficientNet-Lite (eval mode): images -> (embedding, probs, detail)."""
    import onnx
    from onnx import TensorProto, helper

    graph = _GraphWriter()
    x = graph.conv(INPUT_NAME, model._conv_stem, model._bn0, relu6=True)
    block_outputs = []
    for index, block in enumerate(model._blocks):
        if block.has_se:
            raise ValueError("squeeze-and-excitation blocks are not EfficientNet-Lite")
        args, inputs = block._block_args, x
        if args.expand_ratio != 1:
            x = graph.conv(x, block._expand_conv, block._bn0, relu6=True)
        x = graph.conv(x, block._depthwise_conv, block._bn1, relu6=True)
        x = graph.conv(x, block._project_conv, block._bn2, relu6=False)
        if block.id_skip and args.stride == 1 and args.input_filters == args.output_filters:
            x = graph.node("Add", [x, inputs])
        if index in DETAIL_BLOCKS:
            block_outputs.append(graph.node("GlobalAveragePool", [x]))
    x = graph.conv(x, model._conv_head, model._bn1, relu6=True)
    pooled = graph.node("GlobalAveragePool", [x])
    graph.node("Flatten", [pooled], OUTPUT_NAMES[0], axis=1)
    logits = graph.node("Gemm", [OUTPUT_NAMES[0], graph.constant(model._fc.weight), graph.constant(model._fc.bias)],
                        transB=1)
    graph.node("Softmax", [logits], OUTPUT_NAMES[1], axis=1)
    graph.node("Flatten", [graph.node("Concat", block_outputs, axis=1)], OUTPUT_NAMES[2], axis=1)
    outputs = [helper.make_tensor_value_info(OUTPUT_NAMES[0], TensorProto.FLOAT, ["batch", EMBEDDING_DIM]),
               helper.make_tensor_value_info(OUTPUT_NAMES[1], TensorProto.FLOAT, ["batch", NUM_CLASSES]),
               helper.make_tensor_value_info(OUTPUT_NAMES[2], TensorProto.FLOAT, ["batch", DETAIL_DIM])]
    inputs = [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", 3, "height", "width"])]
    onnx_model = helper.make_model(helper.make_graph(graph.nodes, "efficientnet_lite0", inputs, outputs,
                                                     graph.initializers),
                                   opset_imports=[helper.make_opsetid("", 17)])
    onnx_model.ir_version = 8  # opset 17's; older ONNX Runtime builds reject newer IR versions
    onnx.checker.check_model(onnx_model)
    return onnx_model.SerializeToString()


class _GraphWriter:
    """Nodes and weights of an ONNX graph under generated names."""

    def __init__(self) -> None:
        self.nodes, self.initializers = [], []

    def _name(self, kind: str) -> str:
        return f"{kind}_{len(self.nodes) + len(self.initializers)}"

    def constant(self, tensor: torch.Tensor) -> str:
        from onnx import numpy_helper

        name = self._name("weight")
        self.initializers.append(numpy_helper.from_array(tensor.detach().float().numpy(), name))
        return name

    def node(self, op_type: str, inputs: list[str], output: str | None = None, **attributes) -> str:
        from onnx import helper

        output = output or self._name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [output], **attributes))
        return output

    def conv(self, x: str, conv: torch.nn.Conv2d, norm: torch.nn.BatchNorm2d, relu6: bool) -> str:
        """``norm(conv(x))`` (then ReLU6) as one Conv with TF "same" padding (the extra row/column at the end)."""
        weight, bias = folded_weights(conv, norm)
        y = self.node("Conv", [x, self.constant(weight), self.constant(bias)], auto_pad="SAME_UPPER",
                      strides=list(conv.stride), dilations=list(conv.dilation), group=conv.groups,
                      kernel_shape=list(conv.kernel_size))
        if not relu6:
            return y
        return self.node("Clip", [y, self.constant(torch.tensor(0.0)), self.constant(torch.tensor(6.0))])

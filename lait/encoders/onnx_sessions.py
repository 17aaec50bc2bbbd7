"""ONNX Runtime sessions on CPU, set up for Beam workers that run one process per core."""

from __future__ import annotations


def cpu_session(model: bytes | str, threads: int = 1):
    """An ``onnxruntime.InferenceSession`` on the CPU for a serialised model or a model file.

    Every graph optimisation on (ONNX Runtime's default, stated so that it stays on): constant
    folding, convolution + activation fusion and the blocked channel layout for convolutions.
    `threads` intra-op threads, one inter-op thread, nodes run in sequence; idle intra-op
    threads sleep instead of spinning, so that a session never takes CPU time from the other
    worker processes on the same cores.
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])

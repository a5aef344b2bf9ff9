"""fixed_softmax: the ONNX voices' Softmax, summed in AVX-512's lane order on
every CPU. test_speech_engines checks what it is for (Piper's longer takes
the same on AVX2 and AVX-512 CPUs); these check the rewrite itself."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from keyspot.data import tts
from keyspot.data.tts.fixed_softmax import LANES, LOWER_RANGE, fixed_order_softmax


def _model(nodes, opset: int, outputs=("y",)) -> bytes:
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
                              [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]).SerializeToString()


def _softmax(opset: int, **attributes) -> bytes:
    return _model([helper.make_node("Softmax", ["x"], ["y"], **attributes)], opset)


def _run(model: bytes, x: np.ndarray, optimize: bool = False) -> np.ndarray:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    if not optimize:   # Piper's sessions run unoptimised, Kokoro's optimised
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def _rows(length: int, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal((2, 3, 5, length)) * 6).astype(np.float32)


def _lane_order(exps: np.ndarray) -> np.ndarray:
    """The softmax of rows whose exponentials are `exps`, summed as
    fixed_softmax documents it, in numpy's float32: each of 16 lanes in
    order, the upper 8 lanes onto the lower, then pairwise twice, then the
    last two; each exponential times the reciprocal."""
    padded = np.concatenate([exps, np.zeros(exps.shape[:-1] + (-exps.shape[-1] % LANES,), np.float32)], -1)
    chunks = padded.reshape(exps.shape[:-1] + (-1, LANES))
    lanes = chunks[..., 0, :].copy()
    for i in range(1, chunks.shape[-2]):
        lanes = lanes + chunks[..., i, :]
    lanes = lanes[..., 8:] + lanes[..., :8]
    for _ in range(2):
        lanes = lanes[..., 0::2] + lanes[..., 1::2]
    total = lanes[..., :1] + lanes[..., 1:2]
    return exps * (np.float32(1.0) / total)


def _exps(x: np.ndarray) -> np.ndarray:
    """ONNX Runtime's exponentials of the clamped differences from each row's maximum."""
    clamped = np.maximum(x - x.max(-1, keepdims=True), np.float32(LOWER_RANGE))
    return _run(_model([helper.make_node("Exp", ["x"], ["y"])], 17), clamped)


@pytest.mark.parametrize("opset", [15, 20])     # Piper's and Kokoro's: ReduceMax's axes moved to an input at 18
@pytest.mark.parametrize("optimize", [False, True])
@pytest.mark.parametrize("length", [1, 7, 8, 9, 16, 17, 24, 25, 47, 48, 49, 130])
def test_sums_in_sixteen_lanes_whatever_the_row_length(opset, optimize, length):
    x = _rows(length)
    got = _run(fixed_order_softmax(_softmax(opset, axis=-1)), x, optimize)
    np.testing.assert_array_equal(got, _lane_order(_exps(x)))
    np.testing.assert_allclose(got, _run(_softmax(opset, axis=-1), x), rtol=2e-6, atol=1e-9)


@pytest.mark.parametrize("length", [1, 5, 8, 9, 16])
def test_a_row_of_up_to_sixteen_is_onnx_runtimes_own_softmax(length):
    """Up to 16 values, the AVX2 and AVX-512 kernels add in the same order,
    and so does the rewrite: bit for bit what ONNX Runtime computes."""
    x = _rows(length, seed=length)
    np.testing.assert_array_equal(_run(fixed_order_softmax(_softmax(15)), x), _run(_softmax(15), x))


def test_far_below_the_maximum_counts_as_nothing():
    x = np.array([[0.0, -50.0, -200.0, -1e30, -np.inf] + [-3.0] * 20], np.float32)
    got = _run(fixed_order_softmax(_softmax(20)), x)
    assert np.isfinite(got).all() and got[0, 2:5].max() < 1e-37
    np.testing.assert_allclose(got.sum(), 1.0, rtol=1e-6)


def test_every_other_node_keeps_its_index():
    """ONNX Runtime seeds VITS's noise from the session's seed plus the
    node's index: the model's own nodes must not move."""
    nodes = [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Softmax", ["a"], ["b"]),
             helper.make_node("Neg", ["b"], ["c"]), helper.make_node("Softmax", ["c"], ["y"])]
    rewritten = onnx.load_from_string(fixed_order_softmax(_model(nodes, 15))).graph.node
    assert [n.op_type for n in rewritten[:4]] == ["Relu", "ReduceMax", "Neg", "ReduceMax"]
    assert "Softmax" not in {n.op_type for n in rewritten}
    x = _rows(30)
    original = _run(_model(nodes, 15), x)
    np.testing.assert_allclose(_run(fixed_order_softmax(_model(nodes, 15)), x), original, rtol=2e-6, atol=1e-9)


def test_a_softmax_over_another_axis_is_named():
    with pytest.raises(ValueError, match=r"Softmax 'attention' normalises axis 1; only .* last axis"):
        fixed_order_softmax(_model([helper.make_node("Softmax", ["x"], ["y"], axis=1, name="attention")], 15))


def test_takes_spoken_before_the_fix_are_not_taken_from_the_cache():
    for engine in ("piper", "kokoro"):
        assert tts.take_key(engine) == f"{tts.program(engine)}; Softmax summed in 16 lanes"
    assert tts.take_key("espeak") == tts.program("espeak")

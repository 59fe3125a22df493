"""TensorRT without TensorRT: every op and attribute of sg3rt's exported graphs is one TensorRT's ONNX
parser documents as supported, and the engine builder uses only TensorRT 10/11 APIs (a fake module)."""

from __future__ import annotations

from types import SimpleNamespace
from unittest.mock import MagicMock

import onnx
import pytest
from refdata import REFERENCES, reference_file

from sg3rt.export import EngineBuildError, export_onnx
from sg3rt.export import tensorrt_build
from sg3rt.export.contract import DEFAULT_OPSET

# Source: onnx/onnx-tensorrt, docs/operators.md ("Supported ONNX Operators", the edition for opset 17 -- our
# DEFAULT_OPSET -- at commit 6d0ab7be324d02c7feb3a306b6fdbeae84f71ddc), rows marked Y. Later parsers (TensorRT
# 10, 11) only added rows. Restrictions below are the ones that edition (and the 8.4 one) state for ops we emit.
TRT_MAX_OPSET = 17  # "supports operators up to Opset 17"
TRT_SUPPORTED_OPS = set("""
Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization Cast Ceil Celu Clip
Concat Constant ConstantOfShape Conv ConvTranspose Cos Cosh CumSum DepthToSpace DequantizeLinear Div Dropout
Einsum Elu Equal Erf Exp Expand EyeLike Flatten Floor Gather GatherElements GatherND Gemm GlobalAveragePool
GlobalLpPool GlobalMaxPool Greater GreaterOrEqual GridSample GRU HardSwish HardSigmoid Identity If ImageScaler
InstanceNormalization IsNaN LeakyRelu Less LessOrEqual Log LogSoftmax Loop LRN LSTM LpNormalization LpPool MatMul
Max MaxPool Mean MeanVarianceNormalization Min Mod Mul Neg NonMaxSuppression NonZero Not OneHot Or Pad
ParametricSoftplus Pow PRelu QuantizeLinear RandomNormal RandomNormalLike RandomUniform RandomUniformLike Range
Reciprocal ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum
ReduceSumSquare Relu Reshape Resize ReverseSequence RNN RoiAlign Round ScaledTanh Scan Scatter ScatterElements
ScatterND Selu Shape Shrink Sigmoid Sign Sin Sinh Size Slice Softmax Softplus Softsign SpaceToDepth Split Sqrt
Squeeze Sub Sum Tan Tanh ThresholdedRelu Tile TopK Transpose Trilu Unsqueeze Upsample Where Xor
""".split())
# Restrictions (same source): input index that must be a constant (an initializer or a Constant node's output).
# Conv/ConvTranspose weights need not be (the 8.4 edition said "W must be an initializer"; the opset-17 edition
# dropped it): StyleGAN's modulated convolutions compute their weights per sample.
CONSTANT_INPUTS = {
    "Slice": [3],  # "`axes` must be an initializer"
    "Squeeze": [1],  # "`axes` must be an initializer"
    "Unsqueeze": [1],  # "`axes` must be a constant tensor"
    "CumSum": [1], "TopK": [1],
}
SPATIAL_DIMS = {"Conv": (2, 3), "ConvTranspose": (2, 3), "AveragePool": (2, 3), "MaxPool": (2, 3)}  # "2D or 3D only"
PAD_MODES = {b"constant", b"reflect", b"edge"}  # Pad: constant (every edition), reflect and edge (newer parsers)
TRT_TYPES = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.INT32, onnx.TensorProto.INT8,
             onnx.TensorProto.BOOL, onnx.TensorProto.UINT8,
             onnx.TensorProto.INT64}  # INT64: "limited support ... cast down to INT32", what shapes and indices need


def constants(model: onnx.ModelProto) -> dict[str, onnx.TensorProto]:
    found = {t.name: t for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            found[node.output[0]] = node.attribute[0].t
    return found


def tensorrt_problems(model: onnx.ModelProto) -> list[str]:
    """Every use of an op, attribute or type outside the table above, as readable lines."""
    problems = []
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    if opset > TRT_MAX_OPSET:
        problems.append(f"opset {opset} > {TRT_MAX_OPSET}")
    consts = constants(model)
    for node in model.graph.node:
        where = f"{node.op_type} {node.name}"
        if node.domain not in ("", "ai.onnx"):
            problems.append(f"{where}: custom domain {node.domain}")
        if node.op_type not in TRT_SUPPORTED_OPS:
            problems.append(f"{where}: not a supported op")
        for i in CONSTANT_INPUTS.get(node.op_type, []):
            if i < len(node.input) and node.input[i] and node.input[i] not in consts:
                problems.append(f"{where}: input {i} is not a constant")
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type in SPATIAL_DIMS and "kernel_shape" in attrs and len(attrs["kernel_shape"]) not in SPATIAL_DIMS[node.op_type]:
            problems.append(f"{where}: {len(attrs['kernel_shape'])}-D")
        if node.op_type == "Pad" and attrs.get("mode", b"constant") not in PAD_MODES:
            problems.append(f"{where}: pad mode {attrs['mode']}")
        if node.op_type == "Cast" and attrs["to"] not in TRT_TYPES:
            problems.append(f"{where}: cast to {onnx.TensorProto.DataType.Name(attrs['to'])}")
    for name, t in consts.items():
        if t.data_type not in TRT_TYPES:
            problems.append(f"constant {name}: {onnx.TensorProto.DataType.Name(t.data_type)}")
    return problems


def used_ops(model: onnx.ModelProto) -> dict[str, set[str]]:
    """op -> attribute names used (what the table is checked against)."""
    ops: dict[str, set[str]] = {}
    for node in model.graph.node:
        ops.setdefault(node.op_type, set()).update(a.name for a in node.attribute)
    return ops


def test_checker_finds_what_tensorrt_rejects():
    """The check is not empty: ops, attributes and types TensorRT's parser does not take are reported."""
    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4, 8, 8])
    y = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)
    w = onnx.helper.make_tensor_value_info("w", onnx.TensorProto.FLOAT, [4, 1, 3, 3])
    nodes = [onnx.helper.make_node("Conv", ["x", "w"], ["a"], kernel_shape=[3], group=4),  # 1-D
             onnx.helper.make_node("Pad", ["a", "p"], ["b"], mode="wrap"),
             onnx.helper.make_node("Hardmax", ["b"], ["c"]),  # an N row
             onnx.helper.make_node("Unsqueeze", ["c", "w"], ["d"]),  # axes not constant
             onnx.helper.make_node("Cast", ["d"], ["y"], to=onnx.TensorProto.DOUBLE)]
    p = onnx.helper.make_tensor("p", onnx.TensorProto.INT64, [8], [0] * 8)
    graph = onnx.helper.make_graph(nodes, "g", [x, w], [y], [p])
    problems = tensorrt_problems(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 19)]))
    text = "\n".join(problems)
    for expected in ("opset 19", "Conv : 1-D", "Unsqueeze : input 1 is not a constant", "pad mode", "Hardmax",
                     "cast to DOUBLE"):
        assert expected in text, (expected, text)


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
@pytest.mark.parametrize("name", REFERENCES)
def test_exported_graphs_use_only_what_tensorrt_parses(name, precision, load_reference, tmp_path):
    """Both graphs of every reference network, fp32 and fp16, in the TensorRT form and the ORT-CPU form."""
    targets = ["tensorrt", "onnxruntime-cpu"] if precision == "fp32" else ["tensorrt"]
    for target in targets:
        out = export_onnx(load_reference(name), tmp_path / target, precision=precision, target=target,
                          verify=False, source=reference_file(f"{name}.pkl"))
        for graph in ("mapping", "synthesis"):
            model = onnx.load(str(out.out_dir / f"{graph}.onnx"))
            assert model.opset_import[0].version == DEFAULT_OPSET
            assert tensorrt_problems(model) == [], (target, graph, used_ops(model))


# ------------------------------------------------------------------------------------------------
# TensorRT 10/11 APIs, with a fake tensorrt module (MagicMock accepts any call; BuilderFlag is real-ish).


def fake_trt(major: int) -> MagicMock:
    trt = MagicMock()
    trt.__version__ = f"{major}.0.0"
    flags = {"TF32": "TF32"}
    if major == 10:  # weak typing: removed in 11 (TensorRT 10.x -> 11.x Python migration guide)
        flags.update(FP16="FP16", BF16="BF16", OBEY_PRECISION_CONSTRAINTS="OBEY")
    trt.BuilderFlag = SimpleNamespace(**flags)
    builder = trt.Builder.return_value
    builder.build_serialized_network.return_value = b"engine"
    builder.create_network.return_value.num_layers = 0
    builder.create_builder_config.return_value.get_timing_cache.return_value.serialize.return_value = b"timing"
    trt.OnnxParser.return_value.parse_from_file.return_value = True
    return trt


# TensorRT 11 is asked for strongly typed reduced-precision builds only (load_or_build_engines).
@pytest.mark.parametrize("major, precision, strongly_typed", [
    (10, "fp32", False), (10, "fp16", True), (10, "fp16", False), (11, "fp32", True), (11, "fp16", True)])
def test_build_engine_uses_available_apis(major, precision, strongly_typed, tmp_path):
    trt = fake_trt(major)
    data = tensorrt_build.build_engine(trt, MagicMock(), tmp_path / "g.onnx", {"ws": ["batch", 16, 512]}, precision,
                                       tensorrt_build.BatchProfile(1, 2, 4), tmp_path / "timing.cache", strongly_typed)
    assert data == b"engine" and (tmp_path / "timing.cache").read_bytes() == b"timing"
    config = trt.Builder.return_value.create_builder_config.return_value
    set_flags = [c.args[0] for c in config.set_flag.call_args_list]
    assert set_flags == (["FP16", "OBEY"] if precision == "fp16" and not strongly_typed else [])
    assert [c.args[0] for c in config.clear_flag.call_args_list] == (["TF32"] if precision == "fp32" else [])
    assert tensorrt_build.strong_typing_only(trt) == (major >= 11)


def test_tensorrt_11_needs_a_graph_in_the_engine_precision(tmp_path, load_reference, monkeypatch):
    out = export_onnx(load_reference("sg2_64"), tmp_path / "e", verify=False)
    monkeypatch.setattr(tensorrt_build, "import_tensorrt", lambda: fake_trt(11))
    monkeypatch.setattr(tensorrt_build, "require_cuda_device", lambda device=None: "fake GPU")
    with pytest.raises(EngineBuildError, match="strongly typed engines only.*--precision fp16"):
        tensorrt_build.load_or_build_engines(out.out_dir, "fp16", cache_dir=tmp_path / "cache")
    records = tensorrt_build.load_or_build_engines(out.out_dir, "fp32", cache_dir=tmp_path / "cache")
    assert set(records) == {"mapping", "synthesis"} and all(r.key["strongly_typed"] for r in records.values())

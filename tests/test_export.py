"""Every export route of DAttention: TorchScript by tracing, ONNX by both exporters, run by onnxruntime.

The exported graphs are checked against the eager module at the batch they were exported with and at
another one (the batch stays free; the map size is fixed in the graph, and another size fails loudly).
"""

import io
import warnings

import onnx
import onnxruntime as ort
import pytest
import torch

from dattn.attention import DAttention

from .test_attention import randomized

SHAPE = (8, 6)
ROUTES_VARIANTS = {  # every position encoding, and strides > 1
    "dwc": dict(),
    "table": dict(dwc_pe=False),
    "log_cpb": dict(dwc_pe=False, log_cpb=True),
    "fixed": dict(dwc_pe=False, fixed_pe=True),
    "none": dict(use_pe=False),
    "no_off": dict(no_off=True),
    "stride2_dwc": dict(stride=2),
    "stride3_fixed": dict(stride=3, dwc_pe=False, fixed_pe=True),  # 3 does not divide 8: a 3x2 key grid
}


def build(name: str) -> DAttention:
    torch.manual_seed(0)
    return randomized(DAttention(16, SHAPE, n_heads=4, n_groups=2, **ROUTES_VARIANTS[name]))


def inputs(batch: int) -> torch.Tensor:
    return torch.randn(batch, 16, *SHAPE, generator=torch.Generator().manual_seed(batch))


def eager(m: DAttention, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return m(x)


def run_onnx(data: bytes, x: torch.Tensor) -> torch.Tensor:
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    (name,) = [i.name for i in session.get_inputs()]
    return torch.from_numpy(session.run(None, {name: x.numpy()})[0])


@pytest.fixture(autouse=True)
def quiet_exporters():
    """torch.jit.trace is deprecated in favour of torch.export (a FutureWarning); the export still works."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        yield


@pytest.mark.parametrize("name", list(ROUTES_VARIANTS))
def test_torchscript_trace_saves_loads_and_runs_any_batch(name):
    m = build(name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", torch.jit.TracerWarning)
        traced = torch.jit.trace(m, inputs(2))  # check_trace reruns it and compares the graphs
    assert [str(w.message) for w in caught if issubclass(w.category, torch.jit.TracerWarning)] == []
    buffer = io.BytesIO()
    torch.jit.save(traced, buffer)
    buffer.seek(0)
    loaded = torch.jit.load(buffer)
    for batch in (2, 3, 1):
        x = inputs(batch)
        assert torch.allclose(loaded(x), eager(m, x), atol=1e-5), batch


@pytest.mark.parametrize("opset", [16, 20])
@pytest.mark.parametrize("name", list(ROUTES_VARIANTS))
def test_onnx_torchscript_exporter_agrees_with_torch_in_onnxruntime(name, opset):
    m = build(name)
    buffer = io.BytesIO()
    torch.onnx.export(m, (inputs(2),), buffer, dynamo=False, opset_version=opset, input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
    model = onnx.load_from_string(buffer.getvalue())
    assert model.opset_import[0].version == opset
    if name != "no_off":  # no_off reads average-pooled cells, not sampled points
        assert "GridSample" in {node.op_type for node in model.graph.node}
    for batch in (2, 3):
        x = inputs(batch)
        assert (run_onnx(buffer.getvalue(), x) - eager(m, x)).abs().max() < 1e-4, batch


@pytest.mark.parametrize("name", list(ROUTES_VARIANTS))
def test_onnx_dynamo_exporter_agrees_with_torch_in_onnxruntime(name):
    m = build(name)
    batch = torch.export.Dim("batch", min=1, max=64)
    program = torch.onnx.export(m, (inputs(2),), dynamo=True, opset_version=18, dynamic_shapes=({0: batch},),
                                verbose=False)
    data = program.model_proto.SerializeToString()
    assert {o.domain: o.version for o in program.model_proto.opset_import}[""] == 18
    for b in (2, 3):
        x = inputs(b)
        assert (run_onnx(data, x) - eager(m, x)).abs().max() < 1e-4, b


def test_an_exported_graph_refuses_another_map_size_instead_of_answering_wrong():
    m = build("dwc")
    traced = torch.jit.trace(m, inputs(1))
    with pytest.raises(RuntimeError, match="must match the size"):
        traced(torch.randn(1, 16, 10, 6))


def test_torchscript_script_does_not_apply_because_einops_cannot_be_compiled():
    with pytest.raises(torch.jit.frontend.NotSupportedError, match="variable number of arguments"):
        torch.jit.script(build("dwc"))

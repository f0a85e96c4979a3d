"""The Table IV peers (DANv1, DANv2, DCLS): their counts against Table IV, their building blocks, their ONNX export
and their deployability."""
from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from gldfn_model.network.complexity import TABLE_IV
from gldfn_model.peers import PeerError, build_network, parse_models
from gldfn_model.peers.blocks import SlicedAdaptiveAvgPool2d, pixel_shuffle_upsampler
from gldfn_model.peers.dan import DANV1, DANV2, DANv1, DANv2, cosine_basis
from gldfn_model.peers.dcls import DCLS, DCLSConfig, KernelEstimator
from gldfn_model.peers.deconvolution import cls_deconvolution, psf_to_otf
from gldfn_model.peers.table_iv import MACS_TOLERANCE, PARAMS_TOLERANCE, table_iv_row

PEERS = ("dcls", "danv1", "danv2")


def small_peers() -> dict[str, nn.Module]:
    """The peers with fewer blocks and iterations: same layer kinds, seconds to export."""
    torch.manual_seed(0)
    return {
        "dcls": DCLS(DCLSConfig(nb=1, ng=1)).eval(),
        "danv1": DANv1(replace(DANV1, nb=2, loop=2)).eval(),
        "danv2": DANv2(replace(DANV2, nb=1, ng=1, loop=2)).eval(),
    }


@pytest.mark.parametrize("name", PEERS)
def test_counts_are_within_the_targets_of_table_iv(name):
    row = table_iv_row(name)
    paper_params, paper_gmacs = TABLE_IV[row.to_dict()["table_iv"]["name"]]
    assert abs(row.count.params / (paper_params * 1e6) - 1) <= PARAMS_TOLERANCE
    assert abs(row.authors_convention_macs / (paper_gmacs * 1e9) - 1) <= MACS_TOLERANCE
    assert row.within_targets


@pytest.mark.parametrize("name", ["danv1", "danv2"])
def test_dan_adjustment_is_one_estimator_pass(name):
    row = table_iv_row(name)
    (adjustment,) = row.adjustments
    estimator = sum(v for c, values in row.count.components.items() if c.startswith("estimator.")
                    for k, v in values.items() if k != "params")
    assert adjustment.macs == estimator // (DANV1 if name == "danv1" else DANV2).estimator_passes


def test_the_peers_upscale_by_four_with_finite_output():
    for name, model in small_peers().items():
        with torch.no_grad():
            out = model(torch.rand(2, 3, 20, 23))
        assert out.shape == (2, 3, 80, 92), name
        assert torch.isfinite(out).all(), name


def test_names_are_checked():
    assert parse_models("DCLS, gldfn,dcls") == ["dcls", "gldfn"]
    with pytest.raises(PeerError, match="choose from"):
        parse_models("gldfn,ikc")
    with pytest.raises(PeerError):
        build_network("rcan")


@pytest.mark.parametrize("size", [(26, 34), (31, 39), (3, 3), (5, 100)])
def test_sliced_adaptive_pool_equals_torchs(size):
    x = torch.rand(2, 4, *size)
    assert torch.allclose(SlicedAdaptiveAvgPool2d((3, 3))(x), nn.AdaptiveAvgPool2d((3, 3))(x), atol=1e-6)


def test_upsampler_layouts():
    x4 = pixel_shuffle_upsampler(8, 3, 4)
    assert [m.out_channels for m in x4 if isinstance(m, nn.Conv2d)] == [32, 32, 3]
    assert pixel_shuffle_upsampler(8, 3, 3)(torch.rand(1, 8, 5, 6)).shape == (1, 3, 15, 18)


def test_cosine_basis_is_orthonormal():
    basis = cosine_basis(441, 10)
    assert torch.allclose(basis.T @ basis, torch.eye(10), atol=1e-5)


def test_deconvolution_with_a_delta_kernel_and_no_smoothness_is_the_identity():
    features = torch.rand(2, 3, 17, 19)
    delta = torch.zeros(2, 1, 21, 21)
    delta[:, :, 10, 10] = 1
    assert torch.allclose(cls_deconvolution(features, delta, torch.zeros(2, 3, 3, 3)), features, atol=1e-5)


def test_deconvolution_matches_numpy():
    """The CLS formula computed independently with NumPy's FFT on the edge-padded features."""
    rng = np.random.default_rng(1)
    features, kernel, smooth = rng.random((1, 2, 9, 11)), rng.random((1, 1, 5, 5)), rng.standard_normal((1, 2, 3, 3))
    ours = cls_deconvolution(*(torch.from_numpy(a).float() for a in (features, kernel, smooth))).numpy()
    padded = np.pad(features, ((0, 0), (0, 0), (5, 5), (5, 5)), mode="edge")

    def otf(psf):
        """The reference's psf -> otf: the kernel's four quadrants copied to the grid's corners."""
        grid = np.zeros((*psf.shape[:2], *padded.shape[2:]))
        c = psf.shape[2] // 2 + 1
        grid[..., :c, :c] = psf[..., c - 1 :, c - 1 :]
        grid[..., :c, -(c - 1) :] = psf[..., c - 1 :, : c - 1]
        grid[..., -(c - 1) :, :c] = psf[..., : c - 1, c - 1 :]
        grid[..., -(c - 1) :, -(c - 1) :] = psf[..., : c - 1, : c - 1]
        return np.fft.fft2(grid)

    k, p = otf(kernel), otf(smooth)
    clear = np.fft.ifft2(np.fft.fft2(padded) * np.conj(k) / (np.abs(k) ** 2 + np.abs(p) ** 2)).real
    assert np.allclose(ours, clear[..., 5:14, 5:16], atol=1e-4)


def test_psf_to_otf_puts_the_centre_tap_at_the_origin():
    kernel = torch.zeros(1, 1, 5, 5)
    kernel[0, 0, 2, 2] = 1  # a centred delta: flat, real spectrum
    spectrum = psf_to_otf(kernel, 8, 10)
    assert torch.allclose(spectrum, torch.ones_like(spectrum))


def test_kernel_estimates_are_normalised_and_batch_independent():
    torch.manual_seed(0)
    estimator = KernelEstimator(DCLSConfig(nb=1, ng=1)).eval()
    lr = torch.rand(2, 3, 24, 24)
    with torch.no_grad():
        both = estimator(lr)
        apart = torch.cat([estimator(lr[:1]), estimator(lr[1:])])
    assert both.shape == (2, 1, 21, 21)
    assert torch.allclose(both.sum(dim=(2, 3)), torch.ones(2, 1), atol=1e-5)
    assert torch.allclose(both, apart, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("name", PEERS)
def test_export_runs_in_onnx_runtime_at_two_sizes(name, tmp_path):
    from gldfn_export.peers import check_onnx_parity, export_peer

    model = small_peers()[name]
    result = export_peer(model, tmp_path / f"{name}.onnx", name)
    assert result.op_types.get("DFT", 0) == (8 if name == "dcls" else 0)
    for size in [(32, 40), (37, 45)]:
        check = check_onnx_parity(model, result.path, size)
        assert check.passed, check.describe()


def test_small_danv2_exports_runs_and_reads_as_a_runner(tmp_path):
    from gldfn_export.peers import check_onnx_parity, export_peer
    from gldfn_model.inference.onnxruntime_runner import OnnxRuntimeRunner

    model = small_peers()["danv2"]
    result = export_peer(model, tmp_path / "danv2.onnx", "danv2")
    assert check_onnx_parity(model, result.path, (19, 23)).passed
    runner = OnnxRuntimeRunner(result.path)
    assert runner.scale == 4 and runner.infer(np.zeros((1, 3, 16, 17), np.float32)).shape == (1, 3, 64, 68)


TRT_PARSE = r"""
import sys, tensorrt_rtx as trt
logger = trt.Logger(trt.Logger.ERROR)
network = trt.Builder(logger).create_network(0)
parser = trt.OnnxParser(network, logger)
ok = parser.parse_from_file(sys.argv[1])
print("parsed" if ok else "; ".join(parser.get_error(i).desc() for i in range(parser.num_errors)))
"""


def test_tensorrt_rtx_has_no_dft_importer(tmp_path):
    """What keeps DCLS out of TensorRT-RTX (docs/table_iv.md): a one-node DFT model does not parse."""
    pytest.importorskip("tensorrt_rtx", reason="tensorrt-rtx is not installed (pip install -e '.[rtx]')")
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("DFT", ["x", "", "axis"], ["y"], onesided=0)
    graph = helper.make_graph(
        [node], "dft", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 8, 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 8, 2])],
        initializer=[helper.make_tensor("axis", TensorProto.INT64, [], [1])],
    )
    path = tmp_path / "dft.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)]), path)
    done = subprocess.run([sys.executable, "-c", TRT_PARSE, str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "parsed" not in done.stdout and "DFT" in done.stdout


def test_small_danv2_builds_in_tensorrt_rtx(tmp_path):
    pytest.importorskip("tensorrt_rtx", reason="tensorrt-rtx is not installed (pip install -e '.[rtx]')")
    from gldfn_export.peers import export_peer
    from gldfn_runtime.engine.build import BuildOptions, build_engine

    path = export_peer(small_peers()["danv2"], tmp_path / "danv2.onnx", "danv2").path
    options = BuildOptions(backend="tensorrt-rtx", min_size=(16, 16), opt_size=(32, 40), max_size=(64, 64))
    result = build_engine(path, tmp_path / "danv2.engine", options, cache_dir=tmp_path / "cache")
    assert result.engine_path.stat().st_size == result.sidecar.engine_bytes > 0

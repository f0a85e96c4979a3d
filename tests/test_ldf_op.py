import pytest
import torch

from gldfn_model.network.filter_norm import filter_norm
from gldfn_model.ops.contract import load_contract
from gldfn_model.ops.ldf_op import local_dynamic_filter_reference, tap_offsets


def direct_loop(x, spatial, channel, k, d):
    """The formula of the design notes, one output element at a time."""
    n, c, h, w = x.shape
    out = torch.zeros_like(x)
    offsets = tap_offsets(k, d)
    for b in range(n):
        for ch in range(c):
            for y in range(h):
                for xx in range(w):
                    acc = 0.0
                    for t, (dy, dx) in enumerate(offsets):
                        yy, xs = y + dy, xx + dx
                        if 0 <= yy < h and 0 <= xs < w:
                            acc += spatial[b, t, y, xx] * channel[b, ch, t] * x[b, ch, yy, xs]
                    out[b, ch, y, xx] = acc
    return out


def random_inputs(n, c, h, w, k, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, h, w, generator=g, dtype=dtype)
    spatial = torch.randn(n, k * k, h, w, generator=g, dtype=dtype)
    channel = torch.randn(n, c, k * k, generator=g, dtype=dtype)
    return x, spatial, channel


@pytest.mark.parametrize("k,d", [(3, 1), (3, 2), (5, 1), (5, 2)])
def test_op_matches_direct_loop(k, d):
    x, spatial, channel = random_inputs(2, 3, 7, 5, k)
    expected = direct_loop(x, spatial, channel, k, d)
    got = torch.ops.gldfn.local_dynamic_filter(x, spatial, channel, k, d)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


def test_dilation_larger_than_image_uses_centre_tap_only():
    x, spatial, channel = random_inputs(1, 2, 3, 3, 3)
    got = local_dynamic_filter_reference(x, spatial, channel, 3, 5)
    expected = x * spatial[:, 4:5] * channel[:, :, 4, None, None]
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("k,d", [(3, 1), (5, 2)])
def test_gradcheck_float64(k, d):
    inputs = [t.requires_grad_() for t in random_inputs(2, 2, 5, 6, k, seed=1)]
    assert torch.autograd.gradcheck(lambda a, b, c: torch.ops.gldfn.local_dynamic_filter(a, b, c, k, d), inputs)


def test_bad_shapes_are_reported():
    x, spatial, channel = random_inputs(1, 2, 4, 4, 3)
    with pytest.raises(ValueError, match="spatial filter"):
        local_dynamic_filter_reference(x, spatial[:, :4], channel, 3, 1)
    with pytest.raises(ValueError, match=r"kernel_size=2 is not supported; use one of \[1, 3, 5, 7\]"):
        local_dynamic_filter_reference(x, spatial, channel, 2, 1)


@pytest.mark.parametrize("k,d,match", [(9, 1, "kernel_size=9 is not supported"),
                                       (3, 0, r"dilation=0 is outside \[1, 16\]"),
                                       (3, 17, r"dilation=17 is outside \[1, 16\]"),
                                       (3, 2**31 - 1, "dilation=2147483647 is outside")])
def test_attributes_outside_the_contract_are_refused_on_every_path(k, d, match):
    """The CPU op accepts exactly the plugin's ranges (the contract's), not whatever its arithmetic could do."""
    from gldfn_model.common.errors import GldfnError

    x, spatial, channel = random_inputs(1, 2, 4, 4, k)
    for call in (torch.ops.gldfn.local_dynamic_filter, local_dynamic_filter_reference):
        with pytest.raises(GldfnError, match=match):
            call(x, spatial, channel, k, d)


def test_fake_kernel_supports_meta_tensors():
    x, spatial, channel = (t.to("meta") for t in random_inputs(1, 4, 9, 11, 3))
    out = torch.ops.gldfn.local_dynamic_filter(x, spatial, channel, 3, 1)
    assert out.shape == x.shape and out.device.type == "meta"


def test_outputs_are_contiguous_and_the_fake_kernel_agrees_for_channels_last_input():
    x, spatial, channel = random_inputs(1, 4, 9, 11, 3)
    x = x.to(memory_format=torch.channels_last)
    out = torch.ops.gldfn.local_dynamic_filter(x, spatial, channel, 3, 1)
    assert out.is_contiguous()
    fake = torch.ops.gldfn.local_dynamic_filter(x.to("meta"), spatial.to("meta"), channel.to("meta"), 3, 1)
    assert fake.stride() == out.stride()
    torch.library.opcheck(torch.ops.gldfn.local_dynamic_filter, (x, spatial, channel, 3, 1))


def test_filter_norm_finite_in_float16_on_constant_input():
    flat = torch.full((2, 9, 8, 8), 0.37, dtype=torch.float16)
    out = filter_norm(flat, dim=1)
    assert out.dtype == torch.float16
    assert torch.isfinite(out).all()
    assert (out == 0).all()


def test_filter_norm_standardizes_taps():
    f = torch.randn(3, 9, 4, 4)
    out = filter_norm(f, dim=1)
    torch.testing.assert_close(out.mean(dim=1), torch.zeros(3, 4, 4), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.std(dim=1, unbiased=False), torch.ones(3, 4, 4), atol=1e-3, rtol=0)


def test_contract_accepts_supported_and_rejects_other_attributes():
    contract = load_contract()
    assert contract.name == "GLDFN_LocalDynamicFilter" and contract.domain == "gldfn"
    contract.validate_attributes(3, 1)
    with pytest.raises(ValueError):
        contract.validate_attributes(4, 1)
    with pytest.raises(ValueError):
        contract.validate_attributes(3, 0)


def test_contract_states_the_plugin_lookup_once():
    """The JSON file names the domain and version once; the plugin namespace and version are derived from them."""
    contract = load_contract()
    own = [a["name"] for a in contract.raw["attributes"]]
    assert not set(own) & set(contract.plugin_lookup_attributes), "plugin_version/plugin_namespace are derived"
    assert contract.plugin_lookup_attributes == {"plugin_version": str(contract.raw["version"]),
                                                 "plugin_namespace": contract.raw["domain"]}
    assert contract.attribute_names == [*own, "plugin_version", "plugin_namespace"]

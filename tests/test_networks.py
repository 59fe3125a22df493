"""Our generators against the official implementation's float32 CPU outputs (tests/data)."""

from __future__ import annotations

import pytest
import torch

from refdata import PARITY_TOL, REFERENCES, STYLEGAN3_REFERENCES, labels, reference_config, reference_io
from sg3rt import InputError, input_transform
from sg3rt.networks.layers import set_fir_impl


def max_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


@pytest.mark.parametrize("name", REFERENCES)
@pytest.mark.parametrize(
    ("key", "psi", "cutoff"),
    [("ws_psi1.0", 1.0, None), ("ws_psi0.7", 0.7, None), ("ws_psi0.7_cutoff8", 0.7, 8)],
)
def test_mapping_matches_official(load_reference, name, key, psi, cutoff):
    G, io = load_reference(name), reference_io(name)
    with torch.no_grad():
        ws = G.mapping(io["z"], labels(io), truncation_psi=psi, truncation_cutoff=cutoff)
    assert ws.shape == io[key].shape
    assert max_err(ws, io[key]) <= PARITY_TOL


@pytest.mark.parametrize("name", REFERENCES)
def test_synthesis_matches_official(load_reference, name):
    G, io = load_reference(name), reference_io(name)
    with torch.no_grad():
        img = G.synthesis(io["ws_psi0.7"])
    assert img.dtype == torch.float32 and img.shape == io["img"].shape
    assert max_err(img, io["img"]) <= PARITY_TOL


@pytest.mark.parametrize("name", STYLEGAN3_REFERENCES)
def test_transformed_synthesis_matches_official(load_reference, name):
    G, io = load_reference(name), reference_io(name)
    with torch.no_grad():
        img = G.synthesis(io["ws_psi0.7"], io["input_transform"])
    assert max_err(img, io["img_transformed"]) <= PARITY_TOL
    # ... and the transform really moved the picture.
    assert max_err(img, io["img"]) > 0.1


@pytest.mark.parametrize("name", STYLEGAN3_REFERENCES)
def test_input_transform_helper_matches_official_matrix(name):
    io = reference_io(name)
    t = input_transform(float(io["user_rotate_deg"]), tuple(io["user_translate"].tolist()))
    assert max_err(t, io["input_transform"]) < 1e-6


def test_input_transform_batched():
    t = input_transform(torch.tensor([0.0, 90.0]), torch.tensor([[0.0, 0.0], [0.1, 0.0]]))
    assert t.shape == (2, 3, 3)
    assert torch.allclose(t[0], torch.eye(3))
    assert torch.allclose(t[1], input_transform(90.0, (0.1, 0.0)))


def test_per_sample_transforms_in_one_batch(load_reference):
    """Sample i of a mixed batch equals that sample rendered alone with its own transform."""
    name = "sg3t_64_cond"
    G, io = load_reference(name), reference_io(name)
    transforms = torch.stack([torch.eye(3), io["input_transform"], input_transform(-45.0, (0.05, 0.1))])
    with torch.no_grad():
        batch = G.synthesis(io["ws_psi0.7"], transforms)
        assert max_err(batch[0], io["img"][0]) <= PARITY_TOL
        assert max_err(batch[1], io["img_transformed"][1]) <= PARITY_TOL
        alone = G.synthesis(io["ws_psi0.7"][2:3], transforms[2])
    assert max_err(batch[2:3], alone) <= PARITY_TOL


@pytest.mark.parametrize("name", ["sg3r_64", "sg2_64"])
def test_batch_independence(load_reference, name):
    """A sample's image does not depend on what else is in the batch (no cross-batch statistics)."""
    G, io = load_reference(name), reference_io(name)
    with torch.no_grad():
        together = G.synthesis(io["ws_psi0.7"])
        singles = torch.cat([G.synthesis(io["ws_psi0.7"][i : i + 1]) for i in range(3)])
    assert max_err(together, singles) <= 1e-5


def test_stylegan2_noise_modes(load_reference):
    G, io = load_reference("sg2_64"), reference_io("sg2_64")
    with torch.no_grad():
        assert max_err(G.synthesis(io["ws_psi0.7"], noise_mode="none"), io["img_noise_none"]) <= PARITY_TOL
        same = io["ws_psi0.7"][:1].expand(2, -1, -1)
        const = G.synthesis(same, noise_mode="const")
        torch.manual_seed(0)
        a = G.synthesis(same, noise_mode="random")
        torch.manual_seed(0)
        b = G.synthesis(same, noise_mode="random")
    assert max_err(const[0], const[1]) == 0  # const noise: the same w gives the same image
    assert max_err(a[0], a[1]) > 1e-3  # random noise: fresh per sample ...
    assert torch.equal(a, b)  # ... and reproducible under torch's seed
    with pytest.raises(InputError, match="noise_mode"):
        G.synthesis(io["ws_psi0.7"], noise_mode="loud")


def test_full_generator_call(load_reference):
    name = "sg3t_64_cond"
    G, io = load_reference(name), reference_io(name)
    with torch.no_grad():
        img = G(io["z"], io["c"], truncation_psi=0.7)
    assert max_err(img, io["img"]) <= PARITY_TOL


def test_attributes(load_reference):
    for name in REFERENCES:
        G, cfg = load_reference(name), reference_config(name)
        kw = cfg["init_kwargs"]
        assert (G.z_dim, G.c_dim, G.w_dim) == (kw["z_dim"], kw["c_dim"], kw["w_dim"])
        assert (G.img_resolution, G.img_channels, G.num_ws) == (kw["img_resolution"], kw["img_channels"], cfg["num_ws"])
        assert G.w_avg.shape == (G.w_dim,)
    assert [load_reference(n).kind for n in REFERENCES] == ["stylegan3-t", "stylegan3-r", "stylegan3-r", "stylegan2"]


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda G, io: G.mapping(io["z"][:, :5]), r"z must have shape \[\?, 32\]"),
        (lambda G, io: G.mapping(io["z"]), "conditional"),
        (lambda G, io: G.mapping(io["z"], io["c"], truncation_psi=0.5, truncation_cutoff=99), "cutoff"),
        (lambda G, io: G.synthesis(io["ws_psi0.7"][:, :3]), r"ws must have shape"),
        (lambda G, io: G.synthesis(io["ws_psi0.7"], torch.eye(2)), "transforms"),
    ],
)
def test_bad_inputs_raise_input_error(load_reference, call, match):
    G, io = load_reference("sg3t_64_cond"), reference_io("sg3t_64_cond")
    with pytest.raises(InputError, match=match):
        call(G, io)


def test_stylegan2_refuses_transforms(load_reference):
    G, io = load_reference("sg2_64"), reference_io("sg2_64")
    with pytest.raises(InputError, match="no input transform"):
        G.synthesis(io["ws_psi0.7"], torch.eye(3))


@pytest.mark.filterwarnings("ignore:`torch.jit.trace` is deprecated")
def test_no_grouped_convolutions_with_batch_weights(load_reference):
    """Every conv weight is a parameter or a fixed filter, so the traced batch stays dynamic."""
    G = load_reference("sg3r_64")
    traced = torch.jit.trace(lambda ws: G.synthesis(ws), (reference_io("sg3r_64")["ws_psi0.7"][:1],), check_trace=False)
    io = reference_io("sg3r_64")
    with torch.no_grad():
        assert max_err(traced(io["ws_psi0.7"]), io["img"]) <= PARITY_TOL  # traced at batch 1, run at 3


def test_fp16_stays_close_to_fp32(load_reference):
    """fp16 (high-resolution layers, clamped) against the fp32 reference; CPU fp16 is slow, so SG2 only."""
    G, io = load_reference("sg2_64"), reference_io("sg2_64")
    with torch.no_grad():
        img = G.synthesis(io["ws_psi0.7"], precision="fp16")
    assert img.dtype == torch.float32
    assert max_err(img, io["img"]) < 0.02
    assert (img - io["img"]).abs().mean().item() < 2e-3


@pytest.mark.parametrize("taps,separable,up,down,padding", [
    (12, True, 2, 1, (11, 10, 11, 10)),  # StyleGAN3 up x2
    (24, True, 4, 1, (-2, -5, -2, -5)),  # up x4 with crops
    (12, False, 1, 2, (0, 0, 0, 0)),  # radial-like 2-D down: a random filter keeps every SVD term
    (4, False, 2, 1, (2, 1, 2, 1)),  # StyleGAN2-like 2-D up
    (12, True, 1, 2, (3, -1, 0, 2)),  # uneven pads and crops per axis
])
def test_fir_matmul_equals_conv(taps, separable, up, down, padding):
    """Both FIR forms on a non-square input, so rows and columns cannot be confused."""
    from sg3rt.networks.layers import FirFilter

    gen = torch.Generator().manual_seed(taps + up)
    f = torch.randn([taps] if separable else [taps, taps], generator=gen)
    x = torch.randn(2, 3, 20, 23, generator=gen)
    fir = FirFilter(taps, separable, 3, up=up, down=down, padding=padding, gain=up**2)
    fir.impl = "conv"
    conv = fir(x, f)
    fir.impl = "matmul"
    matmul = fir(x, f)
    assert matmul.shape == conv.shape and conv.shape[2] != conv.shape[3]
    assert max_err(matmul, conv) <= 1e-5 * conv.abs().max().item()


@pytest.mark.parametrize("name", REFERENCES)
def test_fir_matmul_matches_official(load_reference, name):
    """The GPU's FIR form (tiled matrix products, radial filters split by SVD), run here on the CPU."""
    import copy

    G, io = set_fir_impl(copy.deepcopy(load_reference(name)), "matmul"), reference_io(name)
    with torch.no_grad():
        assert max_err(G.synthesis(io["ws_psi0.7"]), io["img"]) <= PARITY_TOL
        if "img_transformed" in io:
            assert max_err(G.synthesis(io["ws_psi0.7"], io["input_transform"]), io["img_transformed"]) <= PARITY_TOL
    with pytest.raises(InputError, match="unknown FIR implementation 'fft'"):
        set_fir_impl(G, "fft")


@pytest.mark.gpu
def test_a_captured_cuda_graph_follows_weights_changed_in_place(load_reference):
    """While a CUDA graph is captured the weight terms are computed in it (not the kept ones), so a replay after
    load_state_dict (in place) renders the new weights, as it did before terms were kept."""
    import copy

    G = copy.deepcopy(load_reference("sg3r_64")).cuda()
    ws = reference_io("sg3r_64")["ws_psi0.7"][:1].cuda()
    with torch.no_grad():
        other = copy.deepcopy(G)
        for p in other.parameters():
            p.mul_(1.1).add_(0.01)
        expected = other.synthesis(ws)
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(2):
                G.synthesis(ws)  # warm-up: kernels chosen, weight terms kept
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = G.synthesis(ws)
        G.load_state_dict(other.state_dict())
        graph.replay()
        torch.cuda.synchronize()
    assert max_err(out, expected) <= 1e-5


@pytest.mark.gpu
@pytest.mark.parametrize("name", REFERENCES)
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_cuda_matches_official(load_reference, name, precision):
    import copy

    from sg3rt.runtime.torch_backend import ieee_fp32

    G = copy.deepcopy(load_reference(name)).cuda()
    io = reference_io(name)
    with torch.no_grad(), ieee_fp32():
        img = G.synthesis(io["ws_psi0.7"].cuda(), precision=precision).cpu()
        conv = set_fir_impl(G, "conv").synthesis(io["ws_psi0.7"].cuda(), precision=precision).cpu()  # the form that exports
    tol = PARITY_TOL if precision == "fp32" else 0.05  # fp16: half precision in the high-resolution layers
    assert max_err(img, io["img"]) < tol and max_err(conv, io["img"]) < tol


@pytest.mark.parametrize("name", ["sg3r_64", "sg2_64"])
def test_weight_terms_follow_the_weights(load_reference, name):
    """Weight-only terms are kept between calls (layers.weight_term); new weights loaded in place (a state dict,
    as a training loop or an edit would) give the new network's output, and gradients reach the weights."""
    import copy

    G, io = copy.deepcopy(load_reference(name)), reference_io(name)
    ws = io["ws_psi0.7"][:1]
    with torch.no_grad():
        first = G.synthesis(ws)
        other = copy.deepcopy(G)
        for p in other.parameters():
            p.mul_(1.1).add_(0.01)
        expected = other.synthesis(ws)  # a fresh copy: nothing kept from G's calls
        G.load_state_dict(other.state_dict())  # in place: same storage, new version
        again = G.synthesis(ws)
    assert max_err(first, io["img"][:1]) <= PARITY_TOL
    assert max_err(again, expected) == 0 and max_err(again, first) > 1e-3


def test_weight_terms_are_computed_afresh_for_gradients():
    from sg3rt.networks.layers import FullyConnected

    fc = FullyConnected(8, 4)
    x = torch.randn(2, 8)
    with torch.no_grad():
        kept = fc(x)
    out = fc(x)  # gradients wanted: the scaled weight is part of the graph, not the kept copy
    out.sum().backward()
    assert torch.equal(out.detach(), kept) and fc.weight.grad is not None and fc.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("impl", ["conv", "matmul", "auto"])
@pytest.mark.parametrize("name", ["sg3r_64", "sg2_64"])
def test_torch_compile_takes_the_whole_synthesis_in_one_graph(load_reference, name, impl, monkeypatch):
    """Kept weight terms and filter tables must not break torch.compile's graph (weight terms are computed in the
    graph while compiling; the matmul form's matrices, fixed by the config, are the ones the eager call made), and
    on a CPU "auto" compiles the plain path (the numba kernels, which the eager call ran, are opaque to dynamo)."""
    import copy

    if not torch.cuda.is_available():  # torch.compile imports triton, which reads TRITON_INTERPRET once, at its
        monkeypatch.setenv("TRITON_INTERPRET", "1")  # import: the interpreter tests (triton_cpu.py) need it on
    G, io = copy.deepcopy(load_reference(name)), reference_io(name)
    set_fir_impl(G, impl)
    ws = io["ws_psi0.7"]
    torch._dynamo.reset()
    with torch.no_grad():
        eager = G.synthesis(ws)  # eager first: the layers keep their weight terms
        explained = torch._dynamo.explain(G.synthesis)(ws)
        compiled = torch.compile(G.synthesis, backend="eager")(ws)
    assert explained.graph_break_count == 0 and explained.graph_count == 1
    assert max_err(compiled, eager) <= (1e-5 if impl == "auto" and name.startswith("sg3") else 0)

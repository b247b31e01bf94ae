"""The scene model: pixel mapping, each variant reads where it says, config checks name the option."""

import pytest
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from dattn.train import Config, ConfigError, SceneDAT, build_model, conv_geometry, feature_to_image_px

SMALL = dict(size=24, channels=16, n_heads=2, n_groups=2, heldout_n=16, batch_size=8)


# ----------------------------------------------------------------------------------------------------------
# Feature-map pixel -> image pixel
# ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "layers, formula",
    [
        ([(4, 4, 0)], lambda f: (f + 0.5) * 4 - 0.5),  # patchify: centre of each 4 x 4 patch
        ([(4, 4, 0), (3, 1, 1)], lambda f: (f + 0.5) * 4 - 0.5),  # a padded 3 x 3 keeps the centres
        ([(1, 1, 0), (1, 1, 0)], lambda f: f),  # the per-pixel stem: feature pixel = image pixel
        ([(3, 2, 1), (3, 2, 1)], lambda f: 4 * f),  # "same"-padded stride-2 convs: pixel 0 stays at 0
        ([(2, 2, 0), (2, 2, 0), (3, 1, 0)], lambda f: 4 * f + 5.5),
    ],
)
def test_conv_geometry_matches_the_formula(layers, formula):
    convs = [nn.Conv2d(1, 1, k, s, p) for k, s, p in layers]
    scale, shift = conv_geometry(convs)
    f = torch.tensor([0.0, 1.0, 2.5, 7.0])
    assert torch.allclose(feature_to_image_px(f, scale, shift), formula(f))


def test_conv_geometry_is_the_receptive_field_centre():
    """With all-ones kernels, an interior output pixel's gradient on the input is centred on its mapped pixel."""
    convs = [nn.Conv2d(1, 1, 4, 4, 0, bias=False), nn.Conv2d(1, 1, 3, 1, 1, bias=False)]
    for c in convs:
        nn.init.ones_(c.weight)
    scale, shift = conv_geometry(convs)
    x = torch.zeros(1, 1, 40, 40, requires_grad=True)
    out = nn.Sequential(*convs)(x)  # (1, 1, 10, 10)
    out[0, 0, 4, 6].backward()
    w = x.grad[0, 0]
    ys, xs = torch.meshgrid(torch.arange(40.0), torch.arange(40.0), indexing="ij")
    centre = torch.stack([(w * ys).sum() / w.sum(), (w * xs).sum() / w.sum()])
    assert torch.allclose(centre, torch.tensor([4 * scale + shift, 6 * scale + shift]))


def test_per_pixel_stem_keeps_features_local():
    """Changing one image pixel changes only that feature pixel: a key knows only the pixel it reads."""
    model = build_model(Config(**SMALL)).eval()
    x = torch.rand(1, 3, 24, 24)
    y = x.clone()
    y[0, :, 5, 7] = 1 - y[0, :, 5, 7]
    diff = (model.attention_input(x) - model.attention_input(y)).abs().sum(1)[0]  # (24, 24)
    assert diff[5, 7] > 0
    diff[5, 7] = 0
    assert diff.max() == 0


# ----------------------------------------------------------------------------------------------------------
# Where each variant reads its keys
# ----------------------------------------------------------------------------------------------------------
def test_reference_points_sit_on_key_cell_centres():
    """Stride 6 on a 24 x 24 map: key (i, j) sits at the centre of image cell (i, j), (6 i + 2.5, 6 j + 2.5)."""
    model = build_model(Config(**SMALL, variant="fixed")).eval()
    pos, ref = model.sampling_points(torch.rand(2, 3, 24, 24))  # (2, 1, g, 4, 4, 2), (1, 4, 4, 2)
    centres = torch.arange(4.0) * 6 + 2.5
    assert torch.allclose(ref[0, ..., 0], centres[:, None].expand(4, 4))
    assert torch.allclose(ref[0, ..., 1], centres[None, :].expand(4, 4))
    assert torch.equal(pos, ref[None, :, None].expand_as(pos))  # fixed: the keys never leave them


def test_fixed_keys_are_bilinear_point_reads_of_four_pixels():
    """At (6 i + 2.5, 6 j + 2.5) a bilinear read is the mean of the 2 x 2 pixels around it, by hand."""
    model = build_model(Config(**SMALL, variant="fixed")).eval()
    images = torch.rand(1, 3, 24, 24)
    t = model.trace(images)[0]
    x = model.attention_input(images)  # (1, C, 24, 24)
    by_hand = rearrange(x, "b c (i a) (j e) -> b c i j a e", a=6, e=6)[..., 2:4, 2:4].mean((-1, -2))  # (1, C, 4, 4)
    assert torch.allclose(rearrange(t.sampled, "b g c h w -> b (g c) h w"), by_hand, atol=1e-6)


def test_deformable_starts_on_its_reference_grid_then_moves():
    cfg = Config(**SMALL)
    model = build_model(cfg).eval()
    pos, ref = model.sampling_points(torch.rand(2, 3, 24, 24))
    assert torch.allclose(pos, ref[None, :, None].expand_as(pos))  # zero-initialised last conv: no offsets yet
    assert (model.blocks[0].conv_offset[-1].weight == 0).all()
    default = build_model(Config(**SMALL, offset_init="default")).eval()
    pos, ref = default.sampling_points(torch.rand(2, 3, 24, 24))
    assert (pos - ref[None, :, None]).abs().max() > 0.01


def test_sampling_points_equal_the_trace_positions():
    model = build_model(Config(**SMALL, offset_init="default")).eval()
    images = torch.rand(3, 3, 24, 24)
    pos, ref = model.sampling_points(images)
    t = model.trace(images)[0]
    assert torch.allclose(pos[:, 0], model.to_image_px(t.positions_px), atol=1e-5)
    assert torch.allclose(ref[0], model.to_image_px(t.reference_px))


def test_dense_variant_is_plain_attention_over_every_position():
    """Dense = softmax(q k^T / sqrt(c)) v over all 576 positions, computed here with the block's own weights."""
    model = build_model(Config(**SMALL, variant="dense")).eval()
    block = model.blocks[0]
    x = model.attention_input(torch.rand(2, 3, 24, 24))  # (2, C, 24, 24)
    assert block.trace(x).Hk * block.trace(x).Wk == 24 * 24
    q, k, v = (rearrange(p(x), "b (h c) y x -> b h (y x) c", h=2) for p in (block.proj_q, block.proj_k, block.proj_v))
    w = torch.softmax(q @ k.transpose(-1, -2) / 8**0.5, -1)  # (B, heads, HW, HW)
    out = block.proj_out(rearrange(w @ v, "b h (y x) c -> b (h c) y x", y=24))
    assert torch.allclose(block(x), out, atol=1e-5)


@pytest.mark.parametrize("variant", ["deformable", "fixed", "dense"])
def test_each_variant_forward_and_backward(variant):
    model = build_model(Config(**SMALL, variant=variant))
    logits = model(torch.rand(2, 3, 24, 24))
    assert logits.shape == (2, 6)
    F.cross_entropy(logits, torch.tensor([0, 1])).backward()
    offset_grad = model.blocks[0].conv_offset[-1].weight.grad
    if variant == "deformable":
        assert offset_grad.abs().sum() > 0  # the offsets learn
    else:
        assert offset_grad is None or offset_grad.abs().sum() == 0  # fixed: tanh(.) * 0; dense: no offsets


def test_build_model_leaves_the_global_generator_alone():
    torch.manual_seed(5)
    want = torch.rand(3)
    torch.manual_seed(5)
    a = build_model(Config(**SMALL, seed=1))
    got = torch.rand(3)
    assert torch.equal(want, got)
    b = build_model(Config(**SMALL, seed=1))
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


# ----------------------------------------------------------------------------------------------------------
# Config checks
# ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "changes, option, words",
    [
        (dict(steps=0), "steps", "at least 1"),
        (dict(batch_size=-2), "batch_size", "at least 1"),
        (dict(heldout_n=0), "heldout_n", "at least 1"),
        (dict(n_blocks=0), "n_blocks", "at least 1"),
        (dict(patch=0), "patch", "at least 1"),
        (dict(patch=5), "patch", "divide"),
        (dict(variant="sparse"), "variant", "deformable, fixed, dense"),
        (dict(task="count"), "n_objects", "two counts"),
        (dict(task="colour", n_objects=(1, 3)), "n_objects", "1 1"),
        (dict(radius=(0, 1)), "radius", "MIN"),
        (dict(radius=(1, 20)), "radius", "does not fit"),
        (dict(channels=30, n_heads=4), "channels", "divisible"),
        (dict(lr=float("nan")), "lr", "finite"),
        (dict(lr=0.0), "lr", "positive"),
        (dict(stride=30), "stride", "larger"),
        (dict(stem_kernel=2), "stem_kernel", "odd"),
        (dict(steps=2.5), "steps", "integer"),
    ],
)
def test_config_errors_name_the_option(changes, option, words):
    with pytest.raises(ConfigError, match=words) as e:
        Config(**{**SMALL, **changes})
    assert e.value.option == option
    assert str(e.value).startswith(f"--{option.replace('_', '-')} ")


def test_count_task_sets_the_number_of_objects():
    cfg = Config(**SMALL, task="count", n_objects=(1, 4))
    assert cfg.n_classes == 4
    assert SceneDAT(cfg).head[-1].out_features == 4

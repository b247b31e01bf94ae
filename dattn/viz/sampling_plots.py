"""Figures for bilinear sampling at the border and gradients on positions (notebook 3)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from ..geometry import norm_to_pixel, pixel_to_norm
from ..sampling import bilinear_sample
from . import style
from .features import resize_image


def border_profile(W: int = 6, n: int = 241) -> tuple[torch.Tensor, torch.Tensor]:
    """Values of a 1 x W map of ones read at x pixels from -1.5 to W + 0.5 (zero padding): (n,), (n,)."""
    px = torch.linspace(-1.5, W + 0.5, n, dtype=torch.float64)
    grid = torch.stack((pixel_to_norm(px, W), torch.zeros_like(px)), -1).reshape(1, 1, n, 2)  # (x, y)
    values = bilinear_sample(torch.ones(1, 1, 1, W, dtype=torch.float64), grid, align_corners=True)
    return px, values.reshape(n)


def plot_border_profile(W: int = 6) -> Figure:
    """The value read from a map of ones along a line that leaves it on both sides."""
    px, values = border_profile(W)
    fig, ax = plt.subplots(figsize=(7, 2.8), layout="constrained")
    ax.axvspan(-0.5, W - 0.5, color="#EEEEEE", label="the map's pixels")
    ax.plot(px, values, color=style.OFFSET_COLOR, lw=2, label="value read (zero padding)")
    ax.scatter(np.arange(W), np.ones(W), **style.GRID_STYLE, label="pixel centres")
    ax.set_xlabel("sampling position x (pixels)")
    ax.set_ylabel("value")
    ax.set_title("A map of ones, read across its border: the value fades over the last pixel")
    ax.legend(fontsize=8, loc="lower center")
    return fig


def gradient_walk(
    image, size: int = 48, steps: int = 40, lr: float = 0.02, n_points: int = 6, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Follow the gradient of the brightness read by grid_sample with respect to the sampling positions.

    Returns the luminance map (size, size) and the paths (steps + 1, n_points, 2) as (y, x) map pixels.
    """
    lum = resize_image(image, size)[0].mean(0)  # (S, S)
    g = torch.Generator().manual_seed(seed)
    pos = (torch.rand(n_points, 2, generator=g) * 1.2 - 0.6).requires_grad_()  # normalized (y, x)
    opt = torch.optim.Adam([pos], lr=lr)  # steps of about lr normalized units, whatever the slope
    path = [pos.detach().clone()]
    for _ in range(steps):
        opt.zero_grad()
        read = bilinear_sample(lum[None, None], pos.flip(-1).reshape(1, 1, n_points, 2), align_corners=True)
        (-read.sum()).backward()  # climb the brightness
        opt.step()
        with torch.no_grad():
            pos.clamp_(-1, 1)
        path.append(pos.detach().clone())
    paths = torch.stack(path)  # (steps + 1, n, 2) normalized
    return lum, norm_to_pixel(paths, size)


def plot_gradient_walk(image, size: int = 48, steps: int = 40, lr: float = 0.02, n_points: int = 6,
                       seed: int = 0) -> Figure:
    """Sampling points that climb the image's brightness by gradient ascent through bilinear sampling."""
    lum, paths = gradient_walk(image, size, steps, lr, n_points, seed)
    fig, ax = style.show_image(lum.numpy(), None, title=f"{steps} gradient steps on the sampling positions:\n"
                                                        "points climb toward brighter pixels")
    for i in range(paths.shape[1]):
        p = style.xy(paths[:, i])
        ax.plot(p[:, 0], p[:, 1], color=style.OFFSET_COLOR, lw=1.5)
    ax.scatter(*style.xy(paths[0]).T, **dict(style.REFERENCE_STYLE, s=50), label="start")
    ax.scatter(*style.xy(paths[-1]).T, **dict(style.SAMPLING_STYLE, s=50), label="after the steps")
    style.legend(ax)
    return fig

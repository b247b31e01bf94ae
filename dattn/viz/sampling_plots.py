"""Figures for bilinear sampling at the border, its slope along a line, and gradients on positions (notebook 3)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
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


def read_and_slope(row, xs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The bilinear read of a 1 x W map ``row`` at pixel positions ``xs`` (zero padding), and its slope
    d(read)/dx per pixel as autograd through ``F.grid_sample`` gives it: (n,), (n,)."""
    f = torch.as_tensor(row, dtype=torch.float64).reshape(1, 1, 1, -1)  # (1, 1, 1, W)
    W = f.shape[-1]
    u = pixel_to_norm(torch.as_tensor(xs, dtype=torch.float64), W).detach().requires_grad_()  # (n,) normalized
    grid = torch.stack((u, torch.zeros_like(u)), -1).reshape(1, 1, -1, 2)  # (x, y)
    values = F.grid_sample(f, grid, mode="bilinear", padding_mode="zeros", align_corners=True).reshape(-1)
    (du,) = torch.autograd.grad(values.sum(), u)
    return values.detach(), du * (2.0 / (W - 1))  # d/dx = d/du * du/dx


def plot_read_and_slope(row, n: int = 801, margin: float = 2.0) -> Figure:
    """The read along a 1 x W map and its slope, from ``margin`` pixels before the map to ``margin`` after:
    a broken line whose slope is a staircase, jumping at every pixel centre, 0 beyond a pixel outside."""
    f = np.asarray(row, dtype=float)
    W = len(f)
    xs = torch.linspace(-margin, W - 1 + margin, n, dtype=torch.float64)
    centres = torch.arange(W, dtype=torch.float64)
    values, slopes = read_and_slope(f, xs)
    c_values, c_slopes = read_and_slope(f, centres)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 5.2), sharex=True, layout="constrained")
    for ax in (top, bottom):
        ax.axvspan(-0.5, W - 0.5, color="#EEEEEE", zorder=0)
        ax.axvspan(-margin, -1, color="#DDEEFF", zorder=0)
        ax.axvspan(W, W - 1 + margin, color="#DDEEFF", zorder=0)
        ax.axhline(0, color=style.GRID_COLOR, lw=0.6)
    top.plot(xs, values, color=style.OFFSET_COLOR, lw=2, label="read (zero padding)")
    top.scatter(centres, f, **dict(style.GRID_STYLE, s=60), label="pixel values")
    top.set_ylabel("value read")
    top.set_title("A 1-pixel-high map read along x: the value, and its slope d/dx")
    bottom.plot(xs, slopes, color=style.QUERY_COLOR, lw=2, label="d read / dx (autograd)")
    bottom.scatter(centres, c_slopes, marker="o", s=36, c=style.QUERY_COLOR, edgecolors="black", zorder=5,
                   label="at a pixel centre: the cell to the right")
    bottom.set_ylabel("slope per pixel")
    bottom.set_xlabel("sampling position x (pixels); grey: the map's pixels, blue: more than a pixel outside")
    top.legend(fontsize=8, loc="upper right")
    bottom.legend(fontsize=8, loc="upper right")
    return fig

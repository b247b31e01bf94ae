"""Coordinates of deformable attention: reference points and the normalized <-> pixel conversions.

``F.grid_sample`` reads positions in normalized coordinates, ``-1`` and ``+1`` being the two ends of an axis.
What "the end" means depends on ``align_corners``:

* ``align_corners=True``: -1 and +1 are the *centres* of the first and last pixel, so pixel ``i`` of an
  ``n``-long axis sits at ``2 i / (n - 1) - 1``.
* ``align_corners=False``: -1 and +1 are the outer *edges* of the first and last pixel, so pixel ``i`` sits
  at ``(2 i + 1) / n - 1``.

All positions in this package are stored as ``(y, x)`` pairs in the last dimension, like the seed's code;
``grid_sample`` wants ``(x, y)``, so callers flip them with ``pos.flip(-1)`` at the sampling call.

A singleton axis (``n == 1``) has no second pixel to measure by; on such an axis every position is the
map's centre, normalized ``0``. The seed divides by ``n - 1`` there and fails with ``ZeroDivisionError``.
"""

from __future__ import annotations

import numbers
import warnings
from typing import Literal

import numpy as np
import torch

RefConvention = Literal["seed", "centered"]
REF_CONVENTIONS: tuple[str, ...] = ("seed", "centered")


def _check_size(n: int, name: str) -> int:
    """``n`` as a Python int if it is a positive integer, else ValueError naming ``name`` and the value.

    Accepts ints and numpy integers (not bools), and the 0-d integer tensors (or SymInts) that sizes are while
    ``torch.jit.trace`` or ``torch.export`` runs: an exported graph holds such a size as a constant.
    """
    if isinstance(n, torch.SymInt) or (
        isinstance(n, torch.Tensor) and n.dim() == 0 and not (n.is_floating_point() or n.is_complex())
        and n.dtype != torch.bool
    ):
        with warnings.catch_warnings():  # map sizes are fixed in a traced graph by design (see DAttention)
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            n = int(n)
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"{name} must be a positive int, got {n!r}")
    return int(n)


def _check_float_dtype(dtype: torch.dtype) -> None:
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating-point torch.dtype (coordinates are fractions), got {dtype!r}")


def _as_coordinates(p):
    """Numbers and tensors pass unchanged; lists, tuples and numpy arrays become a floating tensor."""
    if isinstance(p, (list, tuple, np.ndarray)):
        return torch.as_tensor(p, dtype=torch.get_default_dtype())
    return p


def pixel_to_norm(p: torch.Tensor, n: int, align_corners: bool = True) -> torch.Tensor:
    """Pixel coordinate ``p`` on an ``n``-long axis -> normalized coordinate in grid_sample's convention."""
    n, p = _check_size(n, "n"), _as_coordinates(p)
    if align_corners:
        return p * 0.0 if n == 1 else p * (2.0 / (n - 1)) - 1.0
    return (2.0 * p + 1.0) / n - 1.0


def norm_to_pixel(u: torch.Tensor, n: int, align_corners: bool = True) -> torch.Tensor:
    """Normalized coordinate ``u`` -> pixel coordinate on an ``n``-long axis (inverse of pixel_to_norm)."""
    n, u = _check_size(n, "n"), _as_coordinates(u)
    if align_corners:
        return (u + 1.0) * ((n - 1) / 2.0)
    return ((u + 1.0) * n - 1.0) / 2.0


def query_grid(
    H: int, W: int, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
) -> torch.Tensor:
    """Normalized (y, x) of every query pixel for ``align_corners=True``: shape (H, W, 2)."""
    H, W = _check_size(H, "H"), _check_size(W, "W")
    _check_float_dtype(dtype)
    ys = pixel_to_norm(torch.arange(H, dtype=dtype, device=device), H)
    xs = pixel_to_norm(torch.arange(W, dtype=dtype, device=device), W)
    return torch.stack(torch.meshgrid(ys, xs, indexing="ij"), dim=-1)  # (H, W, 2)


def reference_points(
    Hk: int,
    Wk: int,
    H: int | None = None,
    W: int | None = None,
    convention: RefConvention = "seed",
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Normalized (y, x) reference points of an ``Hk x Wk`` key grid laid over an ``H x W`` map: (Hk, Wk, 2).

    The positions are meant for ``grid_sample(..., align_corners=True)`` on the ``H x W`` map.

    * ``"seed"``: the convention of the seed post and of the official DAT code, ``(i + 0.5) / (Hk - 1)``
      rescaled to [-1, 1]. It ignores ``H``; at stride 1 every point lands half a pixel below and to the
      right of its query pixel, and the last row and column lie half outside the map. Kept so that weights
      trained with it behave identically.
    * ``"centered"``: the centre of each of the ``Hk`` equal cells that tile the map, in pixels
      ``(i + 0.5) * H / Hk - 0.5``; at stride 1 this is exactly the query pixel ``i``.

    A singleton axis (``Hk == 1`` or ``Wk == 1``) puts its one point at the centre of the map (0).
    """
    Hk, Wk = _check_size(Hk, "Hk"), _check_size(Wk, "Wk")
    H = Hk if H is None else _check_size(H, "H")
    W = Wk if W is None else _check_size(W, "W")
    _check_float_dtype(dtype)
    if convention == "seed":
        axes = [_seed_axis(n, dtype, device) for n in (Hk, Wk)]
    elif convention == "centered":
        axes = [_centered_axis(n, m, dtype, device) for n, m in ((Hk, H), (Wk, W))]
    else:
        raise ValueError(f"convention must be one of {REF_CONVENTIONS}, got {convention!r}")
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)  # (Hk, Wk, 2)


def _seed_axis(n: int, dtype: torch.dtype, device) -> torch.Tensor:
    if n == 1:
        return torch.zeros(1, dtype=dtype, device=device)
    centres = torch.linspace(0.5, n - 0.5, n, dtype=dtype, device=device)
    return centres / (n - 1.0) * 2.0 - 1.0


def _centered_axis(n: int, m: int, dtype: torch.dtype, device) -> torch.Tensor:
    pixels = (torch.arange(n, dtype=dtype, device=device) + 0.5) * (m / n) - 0.5
    return pixel_to_norm(pixels, m)

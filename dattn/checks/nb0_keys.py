"""Notebook 0: how many keys each query attends to."""

from __future__ import annotations

from ..offsets import key_grid_size, offset_padding
from .core import BadAnswer, Verdict, as_number, garbage, register, verdict

register(
    "key_count", "00",
    hint="the key grid is the output of the offset network's first convolution (kernel 3, padding 1 (0 when "
         "the stride is 3), the layer's stride): it has (H + 2*padding - kernel) // stride + 1 rows, and as many "
         "columns by W. Every head of every query attends to all of its keys.",
    solution="""\
# The offset network's first conv (kernel k = 3, padding p = k // 2 = 1, stride s) makes the key grid:
H = W = 30; s = 4; k = 3; p = 1
Hk = (H + 2 * p - k) // s + 1      # 8 rows: the conv rounds up where H // s (= 7) rounds down
Wk = (W + 2 * p - k) // s + 1      # 8 columns
print(Hk * Wk)                     # 64 keys, the same 64 for every query (each query only weighs them)""",
)


def check_key_count(
    answer, H: int, W: int, stride: int, ksize: int = 3, n_heads: int = 8, n_groups: int = 4, *,
    show_solution: bool = False,
) -> Verdict:
    """Exercise ``key_count``: how many keys each query attends to on an H x W map at this stride."""
    key = "key_count"
    try:
        got = as_number(answer, "one whole number of keys")
    except BadAnswer as err:
        return garbage(key, str(err), show_solution)
    Hk, Wk = key_grid_size(H, W, ksize, stride)
    want = Hk * Wk
    if got == want:
        return verdict(key, True, f"the key grid is {Hk}x{Wk}: {want} keys, the same keys for each of the "
                                  f"{H * W} queries.", show_solution=show_solution)
    if not float(got).is_integer():
        return verdict(key, False, "a number of keys is a whole number; yours has a fraction (was H divided by "
                                   "the stride without the conv's rounding?).", "fraction", show_solution)
    got = int(got)
    pad = offset_padding(ksize, stride)
    mistakes = [
        ("floor", (H // stride) * (W // stride),
         "H // stride rounds down, but the conv keeps a partial last window: it makes "
         "(H + 2*padding - kernel) // stride + 1 rows."),
        ("no_padding", ((H - ksize) // stride + 1) * ((W - ksize) // stride + 1),
         f"that is the conv without padding; the offset network pads by {pad}."),
        ("queries", H * W, "that is the number of queries (every pixel); the keys live on the smaller key grid."),
        ("one_side", Hk, "that is the number of key rows; the keys form a rows x columns grid."),
        ("one_side", Wk, "that is the number of key columns; the keys form a rows x columns grid."),
        ("per_head", want * n_heads, "heads do not multiply the keys: every head of a query attends to the same grid."),
        ("per_group", want * n_groups, "groups do not multiply the keys a query's head sees: each head attends to one "
                                "grid of keys."),
    ]
    for name, value, text in mistakes:
        if value != want and got == value:
            return verdict(key, False, text, name, show_solution)
    side = "many" if got > want else "few"
    return verdict(key, False, f"{got} is too {side}.", "other", show_solution)

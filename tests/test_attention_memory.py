"""When DAttention holds an HW x Ns matrix: peak tensor memory (TensorMemory) against hand counts."""

import pytest
import torch

from dattn.attention import DAttention
from dattn.profiling import peak_memory

B, C, HEADS, GROUPS, H, W = 2, 16, 8, 4, 12, 12  # few channels, many keys: an HW x Ns matrix dwarfs the maps
HW = NS = H * W  # stride 1: one key per query pixel
FLOAT = 4  # bytes
ONE_HEAD = B * HW * NS * FLOAT  # one head's HW x Ns matrix, for the whole batch
BIAS = HEADS * ONE_HEAD  # the additive bias, B x heads x HW x Ns
DISPLACEMENTS = B * GROUPS * HW * NS * 2 * FLOAT  # (dy, dx) from every key of a group to every query
HIDDEN = B * GROUPS * HW * NS * 32 * FLOAT  # log_cpb's MLP: 32 hidden numbers per (group, query, key)
KINDS = {
    "dwc": dict(),
    "none": dict(use_pe=False),
    "no_off": dict(no_off=True),
    "fixed": dict(dwc_pe=False, fixed_pe=True),
    "table": dict(dwc_pe=False),
    "log_cpb": dict(dwc_pe=False, log_cpb=True),
}


def peak(kind: str, fused: bool, grad: bool = False) -> int:
    m = DAttention(C, (H, W), n_heads=HEADS, n_groups=GROUPS, **KINDS[kind]).eval()
    m.fused = fused
    x = torch.randn(B, C, H, W)
    with torch.set_grad_enabled(grad):
        return peak_memory(m, x)


def test_the_explicit_path_holds_the_scores_and_the_weights():
    assert peak("dwc", fused=False) >= 2 * BIAS  # what the measurement sees when the matrices are there


@pytest.mark.parametrize("kind", ["dwc", "none", "no_off", "fixed"])
def test_without_a_computed_bias_the_fused_path_holds_no_hw_by_ns_matrix_not_even_one_heads(kind):
    assert peak(kind, fused=True) < ONE_HEAD


def test_with_a_table_the_fused_path_holds_the_bias_and_the_displacements():
    assert BIAS + DISPLACEMENTS <= peak("table", fused=True) < BIAS + DISPLACEMENTS + ONE_HEAD
    assert peak("table", fused=False) >= 3 * BIAS  # the explicit path: bias, scores and weights at once


def test_with_log_cpb_the_fused_path_holds_the_bias_and_the_mlps_hidden_layer():
    assert BIAS + HIDDEN <= peak("log_cpb", fused=True) < BIAS + HIDDEN + 2 * DISPLACEMENTS + ONE_HEAD


@pytest.mark.parametrize("kind", ["fixed", "table"])
def test_while_autograd_records_a_bias_sends_the_kernel_to_its_math_path(kind):
    assert peak(kind, fused=True, grad=True) >= 2 * BIAS  # scores and weights, kept for the backward pass
    assert peak("dwc", fused=True, grad=True) < BIAS / 2  # without a bias: only maps saved for the backward

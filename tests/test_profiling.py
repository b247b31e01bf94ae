"""The cost measurements against allocations and FLOPs counted by hand."""

import platform
import subprocess
import sys

import pytest
import torch

from dattn.cost import DenseAttention, cost_table
from dattn.profiling import TensorMemory, count_flops, interleaved_medians, keep_freed_memory, peak_memory


def test_tensor_memory_follows_allocations_and_frees():
    x = torch.randn(256, 256)  # made outside: not counted
    mib = 256 * 256 * 4

    def f():
        a = x * 2  # +1 block
        b = a + 1  # +1 block: peak 2 blocks
        del a  # -1
        c = b.view(-1)  # a view adds nothing
        return c.sum()

    with TensorMemory() as mem:
        f()
    assert mem.peak == 2 * mib + 0  # the scalar sum has 4 bytes, freed after a
    assert mem.live == 0
    assert peak_memory(lambda: torch.empty(1000, 10)) == 40_000


def test_tensor_memory_sees_the_attention_matrix():
    q = torch.randn(1, 2, 300, 8)
    # explicit: scores (1, 2, 300, 300) and softmax of it, both alive at once
    explicit = peak_memory(lambda: torch.softmax(q @ q.transpose(-1, -2), -1) @ q)
    assert explicit >= 2 * 2 * 300 * 300 * 4


def test_count_flops_of_a_matmul_and_a_conv():
    a, b = torch.randn(30, 40), torch.randn(40, 50)
    assert count_flops(lambda: a @ b) == 2 * 30 * 40 * 50
    conv = torch.nn.Conv2d(6, 4, 3, padding=1)
    assert count_flops(lambda: conv(torch.randn(2, 6, 5, 7))) == 2 * 2 * 4 * 5 * 7 * 6 * 9


def test_count_flops_of_cpu_attention_equals_its_two_matmuls():
    b, h, s_q, s_k, d = 2, 3, 10, 7, 4
    q, k, v = torch.randn(b, h, s_q, d), torch.randn(b, h, s_k, d), torch.randn(b, h, s_k, 5)
    fused = count_flops(lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v))
    explicit = count_flops(lambda: (q @ k.transpose(-1, -2)).softmax(-1) @ v)  # torch's own bmm formula
    assert fused == explicit == 2 * b * h * s_q * s_k * (d + 5)


def test_count_flops_of_cpu_attention_backward():
    b, h, s_q, s_k, d = 1, 2, 6, 5, 4
    q, k, v = (torch.randn(b, h, n, d, requires_grad=True) for n in (s_q, s_k, s_k))
    out = torch.nn.functional.scaled_dot_product_attention(q, k, v)
    # backward: scores recomputed, then the four gradient products (torch's convention for CUDA kernels)
    assert count_flops(lambda: out.sum().backward()) == 5 * 2 * b * h * s_q * s_k * d


def test_interleaved_medians_calls_each_function_in_turn():
    calls = []
    out = interleaved_medians({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, reps=3, budget_s=0)
    assert set(out) == {"a", "b"} and all(v >= 0 for v in out.values())
    assert calls[:6] == ["a", "b", "a", "b", "a", "b"]


def test_dense_attention_is_softmax_attention_over_all_pixels():
    torch.manual_seed(0)
    m = DenseAttention(16, n_heads=2).eval()
    x = torch.randn(1, 16, 3, 4)
    q, k, v = (p(x).reshape(2, 8, 12) for p in (m.proj_q, m.proj_k, m.proj_v))  # (heads, c, HW)
    w = torch.softmax(torch.einsum("hcm,hcn->hmn", q, k) / 8**0.5, -1)
    out = m.proj_out(torch.einsum("hmn,hcn->hcm", w, v).reshape(1, 16, 3, 4))
    assert torch.allclose(m(x), out, atol=1e-6)


def test_cost_table_rows():
    rows = cost_table(channel=16, size=8, strides=(1, 2), n_heads=2, n_groups=2, runs=1)
    assert [r["name"] for r in rows] == ["dense", "stride 1", "stride 2"]
    assert [r["keys"] for r in rows] == [64, 64, 16]
    # the two attention matmuls of dense attention: 2 * 2 * heads * HW * HW * head_dim
    proj = 4 * 2 * 16 * 16 * 64
    assert rows[0]["gflops"] * 1e9 == proj + 2 * 2 * 2 * 64 * 64 * 8
    assert rows[1]["peak_mib_explicit"] > rows[1]["peak_mib_fused"]


FAULTS_SCRIPT = """
import resource, sys, torch
from dattn.profiling import keep_freed_memory

def faults_per_round():
    def one_round():  # four 13 MB tensors alive together, then all freed, as in one forward pass
        xs = [torch.ones(13 << 18) for _ in range(4)]
        del xs
    for _ in range(3):
        one_round()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        one_round()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10

# glibc's starting thresholds, fixed (its dynamic ones depend on the history of the process)
import ctypes, ctypes.util
try:
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.mallopt(-1, 128 << 10), libc.mallopt(-3, 128 << 10)
except (OSError, AttributeError, TypeError):
    pass  # not glibc: keep_freed_memory must say False
default = faults_per_round()
took = keep_freed_memory()
print(default, faults_per_round(), took)
"""


def test_keep_freed_memory_stops_the_page_faults_of_reallocation():
    # in a child process: the setting is process-wide and must not leak into the other tests
    done = subprocess.run([sys.executable, "-c", FAULTS_SCRIPT], capture_output=True, text=True, check=True)
    default, kept, took = done.stdout.split()
    if platform.libc_ver()[0] != "glibc":
        assert took == "False"
        return
    pages = 4 * (13 << 20) // 4096  # what one round touches
    assert took == "True"
    assert float(default) > pages / 2  # glibc gave the memory back and faults it in again
    # kept: reused without faulting it in again. Not zero: under load the OpenMP workers that fill the tensors
    # may touch a few fresh pages of their own (seen: 0 alone, 333 of 13,316 beside a full test run)
    assert float(kept) < float(default) / 10


def test_keep_freed_memory_rejects_a_negative_size():
    with pytest.raises(ValueError, match="-1"):
        keep_freed_memory(-1)

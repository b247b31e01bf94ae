"""The cost measurements against allocations and FLOPs counted by hand."""

import torch

from dattn.cost import DenseAttention, cost_table
from dattn.profiling import TensorMemory, count_flops, interleaved_medians, peak_memory


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
    rows = cost_table(channel=16, size=8, strides=(1, 2), n_heads=2, n_groups=2, reps=1, budget_s=0)
    assert [r["name"] for r in rows] == ["dense", "stride 1", "stride 2"]
    assert [r["keys"] for r in rows] == [64, 64, 16]
    # the two attention matmuls of dense attention: 2 * 2 * heads * HW * HW * head_dim
    proj = 4 * 2 * 16 * 16 * 64
    assert rows[0]["gflops"] * 1e9 == proj + 2 * 2 * 2 * 64 * 64 * 8
    assert rows[1]["peak_mib_explicit"] > rows[1]["peak_mib_fused"]

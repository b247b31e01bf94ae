"""The checker of notebook 6 accepts the prediction at printed precision, diagnoses the likely mistakes, never
prints the expected value, shows its solution only on request, and answers garbage in one line."""

import math

import pytest
import torch

from dattn.checks_trained import SOLUTION, check_fixed_accuracy, fixed_accuracy_solution, reference_grid_px
from dattn.data import make_scenes
from dattn.train import read_from_masks
from dattn.train.metrics import TOUCH

SIZE = 18


@pytest.fixture(scope="module")
def scenes():
    return make_scenes(300, size=SIZE, seed=[5, 5], radius=(1, 1))


def predicted(scenes, stride: int, nearest: bool = False) -> tuple[float, float]:
    """(p, p + (1 - p) / 6), computed with grid_sample on the masks (not the checker's pixel loop)."""
    ref = reference_grid_px(SIZE, stride)
    if nearest:
        ref = torch.floor(ref + 0.5)  # a point on its nearest pixel's centre reads that pixel only
    reads = read_from_masks(ref[None].expand(len(scenes), -1, -1).float(), scenes.masks)  # (N, K)
    p = (reads > TOUCH).any(1).float().mean().item()
    return p, p + (1 - p) / 6


def test_reference_grid_by_hand():
    for stride, centres in ((6, (2.5, 8.5, 14.5)), (9, (4.0, 13.0))):  # the key cells' centres
        want = torch.tensor([[y, x] for y in centres for x in centres], dtype=torch.float64)
        assert torch.equal(reference_grid_px(18, stride), want)


@pytest.mark.parametrize("stride", [3, 6, 9])  # 3 and 9: the reference points sit on pixel centres
def test_accepts_the_prediction_at_printed_precision(stride, scenes, capsys):
    _, want = predicted(scenes, stride)
    assert check_fixed_accuracy(round(want, 3), stride, scenes)
    assert check_fixed_accuracy(torch.tensor(want), stride, scenes)
    assert capsys.readouterr().out.startswith("Correct!")
    assert not check_fixed_accuracy(want + 0.01, stride, scenes)


def test_diagnoses_the_likely_mistakes_without_the_answer(scenes, capsys):
    p, want = predicted(scenes, 6)
    p_near, want_near = predicted(scenes, 6, nearest=True)
    assert want_near < want - 0.05  # the nearest pixel misses many reads, so the mistake is visible
    cases = [(p, "guesses right one time in 6"), (want_near, "nearest pixel"),
             (predicted(scenes, 9)[1], "another stride"), (1 - p, "swapped"), (0.99, "too high"),
             (1.5, "between 0 and 1")]
    for answer, words in cases:
        assert not check_fixed_accuracy(answer, 6, scenes)
        out = capsys.readouterr().out
        assert out.startswith("Not yet") and words in out, (answer, out)
        for digits in (2, 3, 4):
            assert f"{want:.{digits}f}" not in out and f"{p:.{digits}f}" not in out


@pytest.mark.parametrize("garbage", [None, float("nan"), float("inf"), "0.6", [0.6], True, {"a": 1},
                                     torch.tensor([0.5, 0.6])])
def test_garbage_gets_one_line(garbage, scenes, capsys):
    assert check_fixed_accuracy(garbage, 6, scenes) is False
    out = capsys.readouterr().out
    assert len(out.strip().splitlines()) == 1 and out.startswith("Not yet")


def test_solution_only_on_request_and_it_is_right(scenes, capsys):
    check_fixed_accuracy(0.3, 6, scenes)
    assert "touched |=" not in capsys.readouterr().out
    fixed_accuracy_solution()
    assert capsys.readouterr().out.strip() == SOLUTION.strip()
    check_fixed_accuracy(None, 6, scenes, show_solution=True)
    assert "touched |=" in capsys.readouterr().out
    for stride in (3, 6, 9):
        env = dict(torch=torch, reference_grid_px=reference_grid_px, masks=scenes.masks, size=SIZE, stride=stride,
                   n_classes=6)
        exec(SOLUTION, env)
        assert math.isclose(env["predicted"], predicted(scenes, stride)[1], abs_tol=1e-9)
        assert check_fixed_accuracy(env["predicted"], stride, scenes)

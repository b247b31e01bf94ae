"""Notebook 7's checkers: right answers pass (also at the displayed precision), each diagnosed mistake is named,
a cheat and garbage are refused in one line, the expected value is never printed."""

import numpy as np
import pytest
import torch

from dattn import checks_detector as cd


def right(p, map_hw, image_hw):
    s = torch.tensor([image_hw[0] / map_hw[0], image_hw[1] / map_hw[1]])
    return s * (p + 0.5) - 0.5


def right_numpy(p, map_hw, image_hw):  # another correct way: numpy, per axis, a list back
    p = np.asarray(p)
    ys = (p[:, 0] + 0.5) * image_hw[0] / map_hw[0] - 0.5
    xs = (p[:, 1] * image_hw[1] + 0.5 * image_hw[1]) / map_hw[1] - 0.5
    return np.stack([ys, xs], 1).tolist()


def one_line(capsys) -> str:
    out = capsys.readouterr().out
    assert out.count("\n") == 1, out
    return out


@pytest.mark.parametrize("fn", [right, right_numpy])
def test_to_image_right(fn, capsys):
    assert cd.check_to_image(fn)
    assert one_line(capsys).startswith("Correct!")


@pytest.mark.parametrize("fn, says", [
    (lambda p, m, i: torch.tensor([i[0] / m[0], i[1] / m[1]]) * p, "cell 0 on image pixel 0"),
    (lambda p, m, i: torch.tensor([i[0] / m[0], i[1] / m[1]]) * (p + 0.5), "half a pixel off"),
    (lambda p, m, i: torch.tensor([(i[0] - 1) / (m[0] - 1), (i[1] - 1) / (m[1] - 1)]) * p, "align_corners stretch"),
    (lambda p, m, i: right(p, m, i).flip(-1), "y and x are swapped"),
    (lambda p, m, i: (i[0] / m[0]) * (p + 0.5) - 0.5, "one stride for both axes"),
    (lambda p, m, i: right(p, m, i) + 0.3, "off by up to 0.3 pixels"),
])
def test_to_image_mistakes_are_diagnosed(fn, says, capsys):
    assert not cd.check_to_image(fn)
    out = one_line(capsys)
    assert out.startswith("Not yet:") and says in out


def test_to_image_cheat_that_knows_the_notebooks_example(capsys):
    shown = {((0.0, 0.0), (7.0, 7.0)): [[15.5, 15.5], [239.5, 239.5]]}  # the notebook's example, hard-coded

    def cheat(p, map_hw, image_hw):
        return torch.tensor(shown.get(tuple(map(tuple, p.tolist())), [[15.5, 15.5]] * len(p)))

    assert not cd.check_to_image(cheat)
    assert "Not yet" in one_line(capsys)


@pytest.mark.parametrize("fn, says", [
    (None, "replace None"),
    (42, "expected a function"),
    ("s * (p + 0.5) - 0.5", "expected a function"),
    (lambda p, m, i: 1 / 0, "raised ZeroDivisionError"),
    (lambda p, m, i: None, "returned None"),
    (lambda p, m, i: p[:, 0], "expected one (y, x) pair per point"),
    (lambda p, m, i: p * float("nan"), "NaN or inf"),
    (lambda p, m, i: [["a", "b"]] * len(p), "raised ValueError"),
])
def test_to_image_garbage_gets_one_line(fn, says, capsys):
    assert not cd.check_to_image(fn)
    assert says in one_line(capsys)


RECORDS = [
    {"kind": "stock", "seed": 0, "metrics": {"mAP50": 0.6247, "mAP50-95": 0.4523}},
    {"kind": "stock", "seed": 1, "metrics": {"mAP50": 0.6101, "mAP50-95": 0.4400}},
    {"kind": "c3_dattention", "seed": 0, "metrics": {"mAP50": 0.6302, "mAP50-95": 0.4611}},
    {"kind": "c3_dattention", "seed": 1, "metrics": {"mAP50": 0.6001, "mAP50-95": 0.4301}},
]
# means: stock 0.6174, c3 0.61515 -> difference -0.00225; mAP50-95 difference -0.00055


def test_difference_right_and_at_displayed_precision(capsys):
    assert cd.check_map_difference(-0.00225, RECORDS)
    assert cd.check_map_difference(np.float32(-0.00225), RECORDS)
    assert cd.check_map_difference(torch.tensor(-0.00225), RECORDS)
    # from the table's rounded means: 0.615 - 0.617
    assert cd.check_map_difference(0.615 - 0.617, RECORDS)
    out = capsys.readouterr().out
    assert out.count("Correct!") == 4 and "0.00225" not in out


@pytest.mark.parametrize("answer, says", [
    (0.00225, "sign is flipped"),
    (0.6302 - 0.6247, "seed 0 alone"),
    (0.6001 - 0.6101, "seed 1 alone"),
    (-0.0045, "sums over seeds"),
    (0.02, "not the difference of the two means"),
])
def test_difference_mistakes_are_diagnosed(answer, says, capsys):
    assert not cd.check_map_difference(answer, RECORDS)
    out = one_line(capsys)
    assert says in out and "0.00225" not in out and "0.0022" not in out


def test_difference_other_metric_is_named(capsys):
    recs = [dict(r, metrics={"mAP50": r["metrics"]["mAP50"], "mAP50-95": r["metrics"]["mAP50-95"] + 0.05 * (
        r["kind"] == "stock")}) for r in RECORDS]  # make the two metrics' differences far apart
    want_other = cd.verdict(recs, "mAP50-95")["difference"]
    assert not cd.check_map_difference(want_other, recs)
    assert "difference in mAP50-95" in one_line(capsys)


class AlwaysEqual(float):
    """A cheat: equal to everything."""

    def __eq__(self, other):
        return True

    __hash__ = float.__hash__


def test_difference_cheat_and_garbage(capsys):
    assert not cd.check_map_difference(AlwaysEqual(0.5), RECORDS)  # compared by value, not by ==
    capsys.readouterr()
    for garbage, says in [(None, "replace None"), (float("nan"), "finite"), (float("inf"), "finite"),
                          ("-0.002", "expected a number"), ([-0.002], "expected a number"), (True, "expected a number"),
                          (np.array([1.0, 2.0]), "expected a number")]:
        assert not cd.check_map_difference(garbage, RECORDS)
        assert says in one_line(capsys)


def test_solutions_on_request(capsys):
    cd.solution("to_image")
    code = capsys.readouterr().out
    ns = {"torch": torch}
    exec(code, ns)
    assert cd.check_to_image(ns["to_image"])
    capsys.readouterr()
    cd.solution("nope")
    assert "No exercise called 'nope'" in capsys.readouterr().out

import math

import numpy as np
import pytest

from janus.metrics import backward_transfer, forgetting, mean_over_all_tasks, pooled_curve, summarize

NAN = math.nan
# a[t][j]: accuracy on task j after task t (percent)
MATRIX = [[90.0, NAN, NAN],
          [70.0, 80.0, NAN],
          [60.0, 85.0, 50.0]]


def test_equal_task_sizes_pooled_equals_task_averaged():
    result = summarize(MATRIX, [100, 100, 100])
    assert result["acc"] == pytest.approx((60 + 85 + 50) / 3)
    assert result["acc_task"] == pytest.approx(result["acc"])
    assert result["maa"] == pytest.approx((90 + 75 + 65) / 3)
    assert result["bwt"] == pytest.approx(((60 - 90) + (85 - 80)) / 2)
    # Chaudhry forgetting: max over earlier steps l < T only: task0 max(90,70)=90 -> 30; task1 80 -> -5
    assert result["fgt"] == pytest.approx((30 + (80 - 85)) / 2)


def test_unequal_task_sizes_pooled_and_task_averaged_differ():
    sizes = [100, 300, 100]
    result = summarize(MATRIX, sizes)
    a1 = (70 * 100 + 80 * 300) / 400
    a2 = (60 * 100 + 85 * 300 + 50 * 100) / 500
    assert result["acc"] == pytest.approx(a2)
    assert result["maa"] == pytest.approx((90 + a1 + a2) / 3)
    assert result["acc_task"] == pytest.approx(65.0)
    assert result["maa_task"] == pytest.approx((90 + 75 + 65) / 3)
    assert result["acc"] != pytest.approx(result["acc_task"])


def test_metrics_do_not_modify_their_input_and_handle_partial_matrices():
    matrix = np.array(MATRIX)
    copy = matrix.copy()
    summarize(matrix, [1, 1, 1])
    np.testing.assert_array_equal(np.isnan(matrix), np.isnan(copy))
    partial = summarize(MATRIX[:2], [10, 10, 10])
    assert partial["acc"] == pytest.approx(75.0) and partial["bwt"] == pytest.approx(-20.0)
    assert math.isnan(backward_transfer(MATRIX[:1])) and math.isnan(forgetting(MATRIX[:1]))


def test_search_objective_counts_unseen_tasks_as_zero():
    curve = pooled_curve(MATRIX[:2], [1, 1, 1])
    assert mean_over_all_tasks(MATRIX[:2], [1, 1, 1], num_tasks=3) == pytest.approx(curve.sum() / 3)
    stopped_early = [[95.0, NAN, NAN], [90.0, 90.0, NAN]]  # better on what it saw, but only 2 of 3 tasks
    assert pooled_curve(stopped_early, [1, 1, 1]).mean() > pooled_curve(MATRIX, [1, 1, 1]).mean()
    assert mean_over_all_tasks(stopped_early, [1, 1, 1], 3) < mean_over_all_tasks(MATRIX, [1, 1, 1], 3)


def test_bad_shapes_fail():
    with pytest.raises(ValueError):
        summarize([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], [1, 1])

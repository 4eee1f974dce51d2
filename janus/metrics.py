"""Continual-learning metrics from the accuracy matrix (docs/protocol.md §6.9).

``acc_matrix[t][j]`` is the accuracy (percent) on task j's test set after training task t, NaN for j > t;
``n_test[j]`` is the size of task j's test set. All functions are pure (the input is never modified) and
return percent. T = number of rows (tasks trained so far).

* pooled A_t = Σ_j n_j a[t][j] / Σ_j n_j (j ≤ t), the InfLoRA / LoRA-CL convention; ``acc`` = A_T,
  ``maa`` = mean_t A_t (Ā, "MAA" in Janus-LoRA).
* task-averaged A_t = mean_j a[t][j], the prompt papers' convention: ``acc_task``, ``maa_task``.
* ``bwt`` = mean_{j<T} (a[T][j] − a[j][j]) (Lopez-Paz & Ranzato; negative = forgetting, higher is better).
* ``fgt`` = mean_{j<T} (max_{j ≤ l < T} a[l][j] − a[T][j]) (Chaudhry; max over earlier steps only, so it
  can be negative when an old task improves at the last step; docs/protocol.md §6.8 item 5).
"""

from __future__ import annotations

import math

import numpy as np

METRIC_NAMES = ("acc", "maa", "acc_task", "maa_task", "bwt", "fgt")


def _as_matrix(acc_matrix) -> np.ndarray:
    matrix = np.array(acc_matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] > matrix.shape[1]:
        raise ValueError(f"acc_matrix must be T x N with T <= N, got shape {matrix.shape}")
    return matrix


def pooled_curve(acc_matrix, n_test) -> np.ndarray:
    """A_t^pool for every row t: sample-weighted accuracy on the union of the seen tasks' test sets."""
    matrix, sizes = _as_matrix(acc_matrix), np.asarray(n_test, dtype=np.float64)
    curve = []
    for t in range(matrix.shape[0]):
        weights = sizes[: t + 1]
        curve.append(float(np.dot(matrix[t, : t + 1], weights) / weights.sum()))
    return np.array(curve)


def task_curve(acc_matrix) -> np.ndarray:
    """A_t^task for every row t: the plain mean over seen tasks."""
    matrix = _as_matrix(acc_matrix)
    return np.array([float(matrix[t, : t + 1].mean()) for t in range(matrix.shape[0])])


def backward_transfer(acc_matrix) -> float:
    matrix = _as_matrix(acc_matrix)
    last = matrix.shape[0] - 1
    if last == 0:
        return math.nan
    return float(np.mean([matrix[last, j] - matrix[j, j] for j in range(last)]))


def forgetting(acc_matrix) -> float:
    matrix = _as_matrix(acc_matrix)
    last = matrix.shape[0] - 1
    if last == 0:
        return math.nan
    return float(np.mean([matrix[j:last, j].max() - matrix[last, j] for j in range(last)]))


def summarize(acc_matrix, n_test) -> dict[str, float]:
    """All metrics of the (possibly partial) matrix: acc, maa, acc_task, maa_task, bwt, fgt (percent)."""
    pooled, averaged = pooled_curve(acc_matrix, n_test), task_curve(acc_matrix)
    return {
        "acc": float(pooled[-1]),
        "maa": float(pooled.mean()),
        "acc_task": float(averaged[-1]),
        "maa_task": float(averaged.mean()),
        "bwt": backward_transfer(acc_matrix),
        "fgt": forgetting(acc_matrix),
    }


def mean_over_all_tasks(acc_matrix, n_test, num_tasks: int) -> float:
    """Search objective comparable at every task: Σ_t A_t^pool / T with unseen tasks counted as 0.

    A trial stopped after k tasks is not favoured over a finished one (docs/architecture.md §5.2).
    """
    return float(pooled_curve(acc_matrix, n_test).sum() / num_tasks)

"""Stage plans: what each Ray Tune experiment of a study runs.

* grid: every cell (method x dataset x backbone) x every seed, one `tune.grid_search` over override dicts.
* search-<method>-<dataset>-<backbone>: one Optuna search per cell on the first seed; the search space's
  domains sit beside the cell's constant overrides in `param_space` (OptunaSearch converts them).
* replicate-<method>-<dataset>-<backbone>: the K best completed configs of that search x every seed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import ModuleType

from ray import tune

from study.cells import CELL, Cell, trial_overrides


@dataclass(frozen=True)
class StagePlan:
    name: str            # the Tune experiment's folder under <study>/ray
    stage: str           # grid | search | replicate (the results' `stage` column)
    param_space: dict
    num_tasks: int       # the longest scenario of the stage (ASHA's max_t)
    num_samples: int = 1


def grid_plan(cells: list[Cell], seeds: tuple[int, ...], extra: dict) -> StagePlan:
    entries = [{**cell.with_seed(seed), **extra} for cell in cells for seed in seeds]
    return StagePlan("grid", "grid", {CELL: tune.grid_search(entries)}, _tasks(entries))


def search_plan(cell: Cell, space: ModuleType, seed: int, extra: dict, num_samples: int) -> StagePlan:
    constants = {**cell.with_seed(seed), **extra}
    return StagePlan(f"search-{_slug(cell)}", "search", {**constants, **space.SPACE}, _tasks([constants]),
                     num_samples=num_samples)


def replicate_plan(search: StagePlan, best: list[dict], seeds: tuple[int, ...]) -> StagePlan:
    entries = [{**overrides, "seed": seed} for overrides in best for seed in seeds]
    name = "replicate-" + search.name.removeprefix("search-")
    return StagePlan(name, "replicate", {CELL: tune.grid_search(entries)}, search.num_tasks)


def best_configs(grid, objective: str, top: int, num_tasks: int) -> list[dict]:
    """The overrides of the `top` completed trials with the highest objective (all tasks done only; ties go
    to the lower trial id, so a resumed study picks the same configs)."""
    done = [r for r in grid if r.error is None and r.metrics.get("tasks_done") == num_tasks
            and r.metrics.get(objective) is not None]
    done.sort(key=lambda r: (-r.metrics[objective], r.metrics["trial_id"]))
    return [trial_overrides(r.config) for r in done[:top]]


def _tasks(entries: list[dict]) -> int:
    return max(int(entry.get("data.tasks", 5)) for entry in entries)


def _slug(cell: Cell) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", f"{cell.method}-{cell.dataset}-{cell.backbone}")

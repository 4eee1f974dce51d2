"""`StudySettings`: one study's choices, validated once from the command line, and its on-disk layout.

    <studies_dir>/
      mlflow.db                    default MLflow store, shared by the studies in this directory
      <study>/
        study.json                 name, tracking_uri, experiment_id, parent_run_id, created, argv
        results.parquet            one row per finished trial (study/results.py holds the schema)
        summary.md                 the mean ± std table printed at the end
        ray/<stage experiment>/    Ray Tune state and task-boundary checkpoints (for --resume; with
                                   --storage-path, at <storage-path>/<study>/<stage experiment> instead)
        mlartifacts/               MLflow artifacts of the study's runs (with a local tracking store)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from janus.errors import UserError

STUDY_JSON_KEYS = ("name", "tracking_uri", "experiment_id", "parent_run_id", "created", "argv")


@dataclass(frozen=True)
class StudySettings:
    name: str
    studies_dir: Path
    backbones: tuple[str, ...] = ("test",)
    datasets: tuple[str, ...] = ("digits",)
    methods: tuple[str, ...] = ("seq-lora",)
    tasks: int | None = None              # None -> the data set's usual split (cells.DATASET_TASKS)
    seeds: tuple[int, ...] = (0, 1)
    search: str = "none"                  # none | optuna
    num_samples: int = 16
    search_spaces: tuple[str, ...] = ()   # search_spaces modules; default: each method's own
    replicate_top: int = 0
    scheduler: str = "fifo"               # fifo | asha (search stages only)
    objective: str = "val_acc_all"
    search_seed: int = 0
    gpus_per_trial: float | None = None   # None -> 1 when the cluster has GPUs, else 0
    cpus_per_trial: float = 1.0
    max_concurrent: int | None = None
    max_failures: int = 0
    address: str | None = None
    tracking_uri: str = ""
    storage_path: str | None = None       # Tune's storage (a URI or a shared folder); None -> <study>/ray
    resume: bool = False
    retry_failed: bool = False
    data_root: str | None = None
    weights: str | None = None
    preset: str | None = None
    ablation: bool = False                # Janus as its ablation rows ①-⑦ (OE/GR/DML on and off)
    overrides: dict = field(default_factory=dict)
    argv: tuple[str, ...] = ()
    quiet: bool = False                   # no progress output (the summary is still printed)

    @property
    def study_dir(self) -> Path:
        return self.studies_dir / self.name

    @property
    def progress_dir(self) -> Path:
        """Each running trial's last epoch event (study/progress.py); local trials only."""
        return self.study_dir / "progress"

    @property
    def ray_dir(self) -> Path:
        return self.study_dir / "ray"

    @property
    def tune_storage(self) -> str:
        """Where Tune keeps the stages' state and checkpoints: shared by every node of a cluster."""
        if self.storage_path:
            return f"{self.storage_path.rstrip('/')}/{self.name}"
        return str(self.ray_dir)

    @property
    def results_path(self) -> Path:
        return self.study_dir / "results.parquet"

    @property
    def study_json(self) -> Path:
        return self.study_dir / "study.json"

    @property
    def artifacts_dir(self) -> Path:
        return self.study_dir / "mlartifacts"


def write_study_json(settings: StudySettings, experiment_id: str, parent_run_id: str) -> dict:
    from study.tracking import mask_uri, mask_words

    record = {"name": settings.name, "tracking_uri": mask_uri(settings.tracking_uri), "experiment_id": experiment_id,
              "parent_run_id": parent_run_id, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "argv": mask_words(settings.argv)}
    settings.study_dir.mkdir(parents=True, exist_ok=True)
    temporary = settings.study_json.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(record, indent=2) + "\n")
    temporary.replace(settings.study_json)
    return record


def read_study_json(study_dir: Path) -> dict:
    path = study_dir / "study.json"
    if not path.is_file():
        raise UserError(f"{study_dir} is not a study (no study.json); start it without --resume")
    try:
        saved = json.loads(path.read_text())
    except (ValueError, OSError) as error:
        raise UserError(f"{path} is damaged ({error}); restore it from a backup or start a new study") from None
    missing = [key for key in STUDY_JSON_KEYS if key not in saved] if isinstance(saved, dict) else STUDY_JSON_KEYS
    if missing:
        raise UserError(f"{path} is damaged (no {', '.join(missing)}); restore it or start a new study")
    return saved


def latest_study(studies_dir: Path) -> Path:
    """The most recently created study in `studies_dir` (what a bare `--resume` continues)."""
    found = sorted(studies_dir.glob("*/study.json"), key=lambda p: json.loads(p.read_text()).get("created", ""))
    if not found:
        raise UserError(f"no study to resume in {studies_dir}; pass --study NAME (and --studies-dir)")
    return found[-1].parent

"""Command-line flags of `python -m study.run` -> `StudySettings` (no Ray, no MLflow here)."""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from janus import recipes
from janus.config import parse_overrides
from janus.errors import DEBUG_HELP, UserError
from janus.offline import ONLINE_FLAG, ONLINE_HELP
from study.settings import StudySettings, latest_study, read_study_json
from study.tracking import default_tracking_uri

# The embedded default (janus/recipes.py): Janus-LoRA, its subspace-protecting rivals and the sequential
# baselines; methods that are not registered drop out of the default list.
DEFAULT_METHODS = recipes.METHODS
OBJECTIVES = ("val_acc_all", "val_acc", "val_maa")  # validation split only: never a test metric
# Flags that may differ on a --resume command line; every other choice comes from the saved study.
RESUME_FLAGS = {"resume", "study", "studies_dir", "address", "retry_failed", "tracking_uri", "debug", "online",
                "quiet"}

EPILOG = """examples:
  python -m study.run                                              # embedded default (CPU, minutes)
  python -m study.run --backbone dino --dataset imagenet-r --preset paper --method janus,seq-lora --seeds 5
  python -m study.run --method janus --search optuna --num-samples 64 --replicate-top 3 --seeds 5
  python -m study.run --study NAME --resume                        # finish an interrupted study
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line and exit 2 (main prints UserError), not usage + message
        raise UserError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m study.run", epilog=EPILOG, allow_abbrev=False,
                     formatter_class=argparse.RawDescriptionHelpFormatter,
                     description="Run a study: methods x datasets x backbones x seeds (or an Optuna search) as "
                                 "Ray Tune trials, each the full sequential protocol; every trial in MLflow, "
                                 "every finished trial a row of <studies-dir>/<study>/results.parquet.")
    _what_flags(parser.add_argument_group("what to run"))
    _search_flags(parser.add_argument_group("searches"))
    _resource_flags(parser.add_argument_group("resources and faults"))
    _store_flags(parser.add_argument_group("where things go"))
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    parser.add_argument("--quiet", action="store_true", help="no progress output; the summary still prints")
    parser.add_argument(ONLINE_FLAG, action="store_true", help=ONLINE_HELP)
    return parser


def _what_flags(group) -> None:
    add = group.add_argument
    add("--backbone", default=recipes.BACKBONE, help="vit, vit-in1k, dino, sam, tiny-fmnist, test or a timm name; "
                                                     f"comma list (default: {recipes.BACKBONE})")
    add("--dataset", default=recipes.DATASET, help="cifar100, imagenet-r, imagenet100, domainnet, digits, "
                                                   "fashion-mnist, synthetic; "
                                            "comma list (default: digits)")
    add("--tasks", type=int, default=None, help="tasks per scenario (default: the data set's usual split: "
                                                "10 cifar100/imagenet-r/imagenet100, 5 domainnet/digits)")
    add("--method", default=None, help=f"registered methods, comma list (default: {','.join(recipes.METHODS)})")
    add("--seeds", default=str(recipes.SEEDS), help="a count N (seeds 0..N-1) or a comma list such as 0,3,7 "
                                                    f"(default: {recipes.SEEDS})")
    add("--preset", choices=("smoke", "paper"), default=None,
        help="paper: the protocol's per-data-set recipe (epochs, lr, batch, rank); smoke: 1 epoch of 2 steps "
             "(default: none: the embedded CPU recipe on the test backbone, config defaults otherwise)")
    add("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
        help="config override, e.g. optim.epochs=3 or method.lambda_dml=0.2; repeatable (default: none)")
    add("--ablation", choices=("auto", "on", "off"), default="auto",
        help="on: run Janus-LoRA as its seven ablation rows (OE, GR, DML each on/off) beside the other methods; "
             "auto: on for the default method list without --search (default: auto)")
    add("--data-root", default=None, help="data root (default: $JANUS_DATA, else ./data)")
    add("--weights", default=None, help="local checkpoint for the (single) pretrained backbone "
                                        "(default: the Hugging Face cache)")


def _search_flags(group) -> None:
    add = group.add_argument
    add("--search", choices=("none", "optuna"), default="none",
        help="none: the grid of methods x datasets x backbones x seeds; optuna: a seeded TPE search per "
             "method, dataset and backbone on the first seed (default: none)")
    add("--num-samples", type=int, default=16, help="configs tried by each search (default: 16)")
    add("--search-space", default=None, help="search_spaces module(s), comma list (default: each method's own, "
                                             "search_spaces/<method>.py)")
    add("--replicate-top", type=int, default=0, help="after a search, re-run its K best configs over all "
                                                     "--seeds (default: 0, off)")
    add("--scheduler", choices=("fifo", "asha"), default="fifo",
        help="search trials: fifo runs every trial to the end; asha stops weak ones after at least half "
             "the tasks (default: fifo)")
    add("--objective", choices=OBJECTIVES, default="val_acc_all",
        help="search objective, on the validation split (default: val_acc_all, unseen tasks count 0)")
    add("--search-seed", type=int, default=0, help="seed of the TPE sampler (default: 0)")


def _resource_flags(group) -> None:
    add = group.add_argument
    add("--gpus-per-trial", type=float, default=None,
        help="GPUs per trial, a fraction such as 0.25 shares a GPU (default: 1 if the cluster has GPUs, else 0)")
    add("--cpus-per-trial", type=float, default=1.0, help="CPUs per trial (default: 1)")
    add("--max-concurrent", type=int, default=None,
        help="trials at once (default: as many as resources allow; searches: at most 4)")
    add("--max-failures", type=int, default=0, help="retries of a trial that crashed, from its last "
                                                    "task checkpoint (default: 0)")
    add("--address", default=None, help="an existing Ray cluster, e.g. auto or ray://host:10001 "
                                        "(default: start a local one)")


def _store_flags(group) -> None:
    add = group.add_argument
    add("--study", default=None, help="study name (default: <datasets>-<backbones>-<date-time>)")
    add("--studies-dir", default="studies", help="where studies are kept (default: ./studies)")
    add("--resume", action="store_true", help="continue the study named by --study (default: the latest "
                                              "one) with its saved flags; finishes only what is missing")
    add("--retry-failed", action="store_true", help="with --resume: run failed trials again from their "
                                                    "last checkpoint")
    add("--tracking-uri", default=None, help="MLflow store (default: $MLFLOW_TRACKING_URI, else "
                                             "sqlite:////<abs studies-dir>/mlflow.db)")
    add("--storage-path", default=None,
        help="Tune state and task checkpoints: a folder or an s3:// / gs:// URI that every node of a "
             "multi-node cluster shares (default: <studies-dir>/<study>/ray)")


def parse_settings(argv: list[str]) -> StudySettings:
    """Flags -> settings; `--resume` reloads the study's saved flags instead."""
    args = build_parser().parse_args(argv)
    studies_dir = Path(args.studies_dir).expanduser().resolve()
    settings = _resumed(args, studies_dir) if args.resume else _settings(args, studies_dir, tuple(argv))
    return dataclasses.replace(settings, quiet=args.quiet)


def _settings(args, studies_dir: Path, argv: tuple[str, ...]) -> StudySettings:
    datasets, backbones = split_list(args.dataset, "--dataset"), split_list(args.backbone, "--backbone")
    _check_counts(args)
    if args.study and not re.fullmatch(r"[A-Za-z0-9_.+-]+", args.study):
        raise UserError(f"--study {args.study!r}: use letters, digits and _ . + - only (it names a folder)")
    return StudySettings(
        name=args.study or default_name(datasets, backbones), studies_dir=studies_dir,
        backbones=backbones, datasets=datasets, methods=methods(args.method), tasks=args.tasks,
        seeds=parse_seeds(args.seeds), search=args.search, num_samples=args.num_samples,
        search_spaces=split_list(args.search_space, "--search-space") if args.search_space else (),
        replicate_top=args.replicate_top, scheduler=args.scheduler, objective=args.objective,
        search_seed=args.search_seed, gpus_per_trial=args.gpus_per_trial, cpus_per_trial=args.cpus_per_trial,
        max_concurrent=args.max_concurrent, max_failures=args.max_failures, address=args.address,
        tracking_uri=args.tracking_uri or default_tracking_uri(studies_dir), retry_failed=args.retry_failed,
        storage_path=_storage(args.storage_path),
        data_root=_absolute(args.data_root), weights=_absolute(args.weights), preset=args.preset,
        ablation=_ablation(args), overrides=parse_overrides(args.overrides), argv=argv)


def _ablation(args) -> bool:
    if args.ablation == "auto":
        return args.method is None and args.search == "none"
    return args.ablation == "on"


def _resumed(args, studies_dir: Path) -> StudySettings:
    defaults = vars(build_parser().parse_args([]))
    extra = sorted(k for k, v in vars(args).items() if k not in RESUME_FLAGS and v != defaults[k])
    if extra:
        flags = ", ".join("--" + k.replace("_", "-").replace("overrides", "set") for k in extra)
        raise UserError(f"--resume continues a study with its saved flags; drop {flags}")
    study_dir = studies_dir / args.study if args.study else latest_study(studies_dir)
    saved = read_study_json(study_dir)
    stored = build_parser().parse_args(saved["argv"])
    settings = _settings(stored, studies_dir, tuple(saved["argv"]))
    return replace(settings, name=saved["name"], tracking_uri=resumed_uri(saved["tracking_uri"], args.tracking_uri),
                   resume=True,
                   address=args.address or settings.address, retry_failed=args.retry_failed)


def resumed_uri(saved: str, given: str | None) -> str:
    """The tracking URI of a resumed study: study.json's, unless its secret was masked when it was saved;
    then --tracking-uri or $MLFLOW_TRACKING_URI must give the full one (the same store)."""
    from study.tracking import is_masked, mask_uri

    full = given or os.environ.get("MLFLOW_TRACKING_URI")
    if not is_masked(saved):
        return given or saved
    if not full or mask_uri(full) != saved:
        raise UserError(f"study.json keeps the tracking URI without its secret ({saved}); pass the full URI "
                        "with --tracking-uri (or $MLFLOW_TRACKING_URI) to resume")
    return full


def _check_counts(args) -> None:
    for flag, value in (("--num-samples", args.num_samples), ("--max-concurrent", args.max_concurrent),
                        ("--tasks", args.tasks)):
        if value is not None and value < 1:
            raise UserError(f"{flag} must be at least 1, got {value}")
    if args.replicate_top < 0 or args.max_failures < 0:
        raise UserError("--replicate-top and --max-failures cannot be negative")
    if args.retry_failed:
        raise UserError("--retry-failed re-runs the failed trials of a study being resumed; add --resume")
    if args.replicate_top and args.search == "none":
        raise UserError("--replicate-top re-runs searched configs; add --search optuna")
    if args.cpus_per_trial <= 0 or (args.gpus_per_trial is not None and args.gpus_per_trial < 0):
        raise UserError("--cpus-per-trial must be positive and --gpus-per-trial non-negative")


def split_list(text: str, flag: str) -> tuple[str, ...]:
    items = tuple(item.strip() for item in text.split(",") if item.strip())
    if not items:
        raise UserError(f"{flag} needs at least one name")
    if len(set(items)) != len(items):
        raise UserError(f"{flag} lists a name twice: {text}")
    return items


def methods(text: str | None) -> tuple[str, ...]:
    from janus.methods import METHODS

    if text is None:
        return tuple(m for m in DEFAULT_METHODS if m in METHODS)
    names = split_list(text, "--method")
    for name in names:
        if name not in METHODS:
            raise UserError(f"unknown method {name!r}; choose from {', '.join(sorted(METHODS))}")
    return names


def parse_seeds(text: str) -> tuple[int, ...]:
    """'3' -> (0, 1, 2); '0,3,7' -> (0, 3, 7)."""
    try:
        if "," not in text:
            count = int(text)
            if count < 1:
                raise UserError(f"--seeds needs a positive count or a comma list, got {text!r}")
            return tuple(range(count))
        return split_ints(text)
    except ValueError:
        raise UserError(f"--seeds takes a count (3) or a comma list of integers (0,3,7), got {text!r}") from None


def split_ints(text: str) -> tuple[int, ...]:
    seeds = tuple(int(s) for s in text.split(",") if s.strip())
    if len(set(seeds)) != len(seeds):
        raise UserError(f"--seeds lists a seed twice: {text}")
    return seeds


def default_name(datasets: tuple[str, ...], backbones: tuple[str, ...]) -> str:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S") + f"-{os.urandom(2).hex()}"  # unique within a second
    return re.sub(r"[^A-Za-z0-9_.-]", "_", f"{'+'.join(datasets)}-{'+'.join(backbones)}-{stamp}")[:100]


def _absolute(path: str | None) -> str | None:
    return str(Path(path).expanduser().resolve()) if path else None


def _storage(path: str | None) -> str | None:
    return path if path is None or "://" in path else _absolute(path)


def argv_or_sys(argv: list[str] | None) -> list[str]:
    return list(sys.argv[1:] if argv is None else argv)

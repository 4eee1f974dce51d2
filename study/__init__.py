"""Studies: Ray Tune trials of the full protocol, Optuna searches, MLflow tracking, a Parquet results store.

The only package that knows Ray Tune, Optuna and MLflow (`janus/` stays free of them).

    run.py        `python -m study.run`: flags -> settings -> driver
    cli.py        the flags -> StudySettings (settings.py: the study's choices and its folder layout)
    cells.py      what each trial runs: method x dataset x backbone cells, the presets' recipes, trial configs
    checks.py     everything a user can get wrong, checked before Ray starts (one line, exit 2)
    driver.py     the study: MLflow parent run, Ray session, stages, summary
    stages.py     the Tune experiments of a study: grid, search, replicate
    tuner.py      Tuner / restore, OptunaSearch, ASHA, resources, failures
    trainable.py  one trial = one full protocol run; tune.report + checkpoint per task
    tracking.py   MLflow experiment, parent and child runs; credentials masked in URIs
    recorder.py   the driver-side callback that writes each finished trial's row
    results.py    results.parquet: the schema and an atomic, locked upsert
    summary.py    the end-of-study mean ± std table (analysis.aggregate)
    progress.py   the live status area (and each trial's progress file)
    cluster.py    the Ray session: local or an existing cluster, trial resources
"""

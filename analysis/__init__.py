"""Study results -> paper tables and figures (Polars, matplotlib).

    python -m analysis.tables --study NAME     # mean ± std tables in the Janus-LoRA paper's layouts
    python -m analysis.plots --study NAME      # accuracy curves, heatmaps, bars, search, Janus diagnostics

`analysis.load` reads `results.parquet` (or the study's MLflow runs), `analysis.aggregate` and
`analysis.layouts` are pure frame -> frame steps, `analysis.format` renders Markdown, LaTeX, CSV and HTML,
and `analysis.report.study_report` is what `python -m study.run` calls at its end.
"""

"""CODA-Prompt search space (docs/baselines.md §5; docs/protocol.md §5).

    python -m study.run --method coda-prompt --search optuna --search-space coda_prompt --num-samples 32

A single run with the CODA-Prompt recipe (`--prompt_param 100 8 0.0`, Adam 1e-3, cosine) instead of the
protocol's default lr 5e-4: `python -m study.run --method coda-prompt --set optim.lr=1e-3`.

The domains bracket the published settings: M = 100 components (50 and 200 around it; M is split evenly
over the tasks), prompt length 8 (key + value rows, even), orthogonality weight μ = 0 (README) or 1e-6
(the largest value its issue #12 suggests), lr around 1e-3. Compare with the papers on `acc_task`
(task-averaged, their convention); the search objective is the harness's `val_maa`.
"""

from ray import tune

METHOD = "coda-prompt"
SPACE = {
    "optim.lr": tune.loguniform(3e-4, 1e-2),
    "method.num_components": tune.choice([50, 100, 200]),
    "method.prompt_length": tune.choice([4, 8, 16]),
    "method.ortho_mu": tune.choice([0.0, 1e-6]),
}

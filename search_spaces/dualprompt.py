"""DualPrompt search space (docs/baselines.md §4; docs/protocol.md §5).

    python -m study.run --method dualprompt --search optuna --search-space dualprompt --num-samples 32

A single run with the CODA-Prompt recipe (Adam 1e-3, cosine) instead of the protocol's default lr 5e-4:
`python -m study.run --method dualprompt --set optim.lr=1e-3`. PILOT's variant is `--set method.g_length=10
--set method.e_length=10 --set method.pull_coeff=0.1 --set method.e_init_from_previous=true
--set optim.schedule=constant --set optim.lr=1e-3`.

The domains bracket the published settings: E-prompt length 20 (CODA-Prompt; key + value rows) and 10
(PILOT's 5 per half), G-prompt length 6 (CODA-Prompt) and 10 (PILOT), pull coefficient 1 (CODA-Prompt)
and 0.1 (PILOT), lr around 1e-3. Prompt lengths count key and value rows together and must be even.
Compare with the papers on `acc_task` (task-averaged, their convention); the search objective is the
harness's `val_maa`.
"""

from ray import tune

METHOD = "dualprompt"
SPACE = {
    "optim.lr": tune.loguniform(3e-4, 1e-2),
    "method.e_length": tune.choice([10, 20, 40]),
    "method.g_length": tune.choice([6, 10]),
    "method.pull_coeff": tune.choice([0.1, 1.0]),
}

"""Janus-LoRA search space (docs/method.md §9.2, widened to continuous ranges for TPE).

    python -m study.run --method janus --dataset imagenet-r --tasks 10 --backbone dino --preset paper --search optuna --num-samples 64 --replicate-top 3 --seeds 5

Searched: λ_DML (log 1e-2..1, default 0.1-0.2), the old-class margin m_old (0..0.6, default 0.3), the start
ε of the OE energy-threshold schedule (0.90..0.995; InfLoRA's 0.95 / 0.98 and the Janus 0.97 lie inside),
the LoRA rank and the learning rate (log range around the protocol's 5e-4). The objective is the study's
`--objective` (default `val_acc_all`, on the validation split). `search_spaces/seq_lora.py` searches the
same lr and rank for the unprotected baseline, so both methods get the same budget.
"""

from ray import tune

METHOD = "janus"
SPACE = {
    "method.lambda_dml": tune.loguniform(1e-2, 1.0),
    "method.margin": tune.uniform(0.0, 0.6),
    "method.threshold": tune.uniform(0.90, 0.995),
    "lora.rank": tune.choice([4, 8, 10, 16, 32]),
    "optim.lr": tune.loguniform(1e-4, 2e-3),
}

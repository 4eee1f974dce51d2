"""eval.classifier: NME on class prototypes for any method, against a dense nearest-normalised-mean reference."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from janus import run_experiment
from janus.classifier import NMEClassifier
from janus.config import ExperimentConfig
from janus.errors import UserError
from janus.testing import build_tiny, task_info, tiny_config


def _dense_reference(method, tasks, test):
    """Nearest normalised class mean, from plain loops over every training image (test transform)."""
    method.eval()
    with torch.no_grad():
        means = {}
        for task in tasks:
            feats = torch.stack([method.features(x[None])[0] for x, _ in task.train_eval])
            labels = torch.tensor([int(y) for _, y in task.train_eval])
            means.update({c: feats[labels == c].mean(0) for c in labels.unique().tolist()})
        classes = sorted(means)
        protos = F.normalize(torch.stack([means[c] for c in classes]), dim=1)
        f = F.normalize(torch.stack([method.features(x[None])[0] for x, _ in test]), dim=1)
        return torch.tensor(classes)[(f @ protos.T).argmax(1)]


@pytest.mark.parametrize("method_name", ["seq-lora", "finetune", "janus"])
def test_nme_predicts_the_nearest_normalised_class_mean(method_name):
    cfg, scenario, method = build_tiny(tiny_config(**{"method.name": method_name}))
    nme = NMEClassifier(method.context.feature_dim)
    for task in scenario.tasks:
        info = task_info(cfg, task, len(scenario.tasks))
        method.before_task(info)
        nme.add_task(method, info)
    test = scenario.tasks[0].test
    images = torch.stack([x for x, _ in test])
    with torch.no_grad():
        predicted = nme.scores(method.features(images), method.heads.num_classes).argmax(1)
    expected = _dense_reference(method, scenario.tasks, test)
    assert torch.equal(predicted, expected)
    assert nme.bank.classes.tolist() == [0, 1, 2, 3]


def test_scores_are_cosines_and_minus_inf_without_a_prototype():
    nme = NMEClassifier(2)
    nme.bank.add([0, 2], torch.tensor([[2.0, 0.0], [0.0, 3.0]]))
    scores = nme.scores(torch.tensor([[1.0, 1.0]]), num_classes=3)
    assert scores[0, 0].item() == pytest.approx(2 ** -0.5) and scores[0, 2].item() == pytest.approx(2 ** -0.5)
    assert scores[0, 1].item() == float("-inf")


def test_classifier_is_one_key_for_any_method_and_resumes():
    checkpoints = []
    config = tiny_config(**{"method.name": "seq-lora", "eval.classifier": "nme", "optim.lr": 5e-3})
    full = run_experiment(config, on_task_end=lambda r: checkpoints.append(r.checkpoint()))
    heads = run_experiment({**config, "eval.classifier": "heads"})
    assert full.config.eval.classifier == "nme"
    assert not np.array_equal(full.acc_matrix, heads.acc_matrix)
    assert checkpoints[0]["nme"]["classes"].tolist() == [0, 1]
    resumed = run_experiment(config, resume=checkpoints[0])
    np.testing.assert_array_equal(resumed.acc_matrix, full.acc_matrix)


def test_old_janus_key_means_the_protocol_classifier_and_bad_names_fail():
    cfg = ExperimentConfig.from_dict({"method.name": "janus", "method.classifier": "nme"})
    assert cfg.eval.classifier == "nme" and "classifier" not in cfg.method.params
    with pytest.raises(UserError, match="eval.classifier='knn' is not one of heads, nme"):
        run_experiment(tiny_config(**{"eval.classifier": "knn"}))

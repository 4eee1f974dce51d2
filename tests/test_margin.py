"""Decoupled margin loss, prototype bank and danger diagnostic (janus/margin.py); docs/method.md §6."""

import math

import pytest
import torch
import torch.nn.functional as F

from janus.margin import PrototypeBank, class_centres, danger, dml_loss, own_class_centres

F64 = torch.float64
R2 = math.sqrt(0.5)


def _nearest_cos(features, prototypes):
    return (F.normalize(features, dim=1) @ F.normalize(prototypes, dim=1).T).amax(1)


def test_hinge_matches_hand_computed_value():
    features = torch.tensor([[2.0, 0.0], [1.0, 1.0], [0.0, -3.0]], dtype=F64)
    prototypes = torch.tensor([[5.0, 0.0], [0.0, 2.0]], dtype=F64)  # normalised: e1, e2
    # nearest cosines: 1, √½, max(0, −1) = 0 → hinge at 0.3: 0.7, √½ − 0.3, 0
    expected = (0.7 + (R2 - 0.3) + 0.0) / 3
    assert dml_loss(features, prototypes, margin_old=0.3).item() == pytest.approx(expected)


def test_pull_term_matches_hand_computed_value():
    features = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, -1.0]], dtype=F64)
    prototypes = torch.tensor([[-1.0, 0.0]], dtype=F64)  # every cosine ≤ 0: push term 0
    labels = torch.tensor([0, 0, 1])
    # class 0 centre (½, ½) → cosines √½, √½; class 1 centre is the sample itself → cosine 1
    expected = 0.5 * (2 * (0.9 - R2) + 0.0) / 3
    loss = dml_loss(features, prototypes, 0.3, labels=labels, gamma=0.5, margin_new=0.9)
    assert loss.item() == pytest.approx(expected)
    with pytest.raises(ValueError, match="labels"):
        dml_loss(features, prototypes, 0.3, gamma=0.5)


def test_zero_loss_and_zero_gradient_below_the_margin():
    prototypes = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]])
    features = torch.tensor([[0.2, 0.1, 1.0, 0.0], [-0.3, 0.2, 0.0, 1.0]], requires_grad=True)
    loss = dml_loss(features, prototypes, margin_old=0.3)
    loss.backward()
    assert loss.item() == 0.0
    assert torch.count_nonzero(features.grad) == 0


def test_a_gradient_step_moves_features_away_from_the_nearest_old_prototype():
    gen = torch.Generator().manual_seed(0)
    prototypes = torch.randn(5, 8, generator=gen)
    features = (prototypes[[0, 3, 3]] + 0.3 * torch.randn(3, 8, generator=gen)).requires_grad_()
    before = _nearest_cos(features.detach(), prototypes)
    dml_loss(features, prototypes, margin_old=0.2).backward()
    after = _nearest_cos(features.detach() - 0.1 * features.grad, prototypes)
    assert torch.all(before > 0.2)
    assert torch.all(after < before)


@pytest.mark.parametrize("prototypes", [None, torch.zeros(0, 4)])
@pytest.mark.parametrize("form", ["hinge", "softmax"])
def test_no_prototypes_gives_a_zero_that_supports_backward(prototypes, form):
    features = torch.randn(3, 4, requires_grad=True)
    loss = dml_loss(features, prototypes, 0.3, form=form)
    loss.backward()
    assert loss.item() == 0.0 and torch.count_nonzero(features.grad) == 0


def test_softmax_form_matches_hand_computed_value():
    features = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=F64)
    head_weight = torch.tensor([[3.0, 0.0], [1.0, 1.0]], dtype=F64)  # normalised: e1, (√½, √½)
    prototypes = torch.tensor([[0.0, 1.0]], dtype=F64)
    labels = torch.tensor([0, 1])
    tau, m = 2.0, 0.1
    positives = torch.tensor([1.0, R2], dtype=F64) * tau
    negatives = torch.tensor([0.0 + m, 1.0 + m], dtype=F64) * tau
    expected = (torch.logaddexp(positives, negatives) - positives).mean()
    loss = dml_loss(features, prototypes, m, labels=labels, form="softmax", head_weight=head_weight, tau=tau)
    assert loss.item() == pytest.approx(expected.item())
    with pytest.raises(ValueError, match="head_weight"):
        dml_loss(features, prototypes, m, form="softmax")
    with pytest.raises(ValueError, match="hinge"):
        dml_loss(features, prototypes, m, form="triplet")


def test_danger_on_a_hand_made_example():
    features = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    labels = torch.tensor([0, 0, 1])
    prototypes = torch.tensor([[2.0, 0.0]])
    stats = danger(features, prototypes, labels)
    # nearest old: 1, 0, √½; own centre: class 0 centre (½, ½) → √½, √½; class 1 → 1
    assert stats["nearest_old_cos"] == pytest.approx((1 + 0 + R2) / 3)
    assert stats["own_centre_cos"] == pytest.approx((2 * R2 + 1) / 3)
    assert stats["danger_zone"] == pytest.approx(0.0)  # sample 0 has x = 1 but y = √½ ≥ 0.5
    assert stats["ideal_zone"] == pytest.approx(1 / 3)  # sample 1: y = √½ > 0.7, x = 0 < 0.5
    assert math.isnan(danger(features, None, labels)["nearest_old_cos"])


def test_class_centres_are_in_batch_means():
    features = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    labels = torch.tensor([7, 2, 7])
    classes, centres = class_centres(features, labels)
    assert classes.tolist() == [2, 7]
    assert torch.equal(centres, torch.tensor([[3.0, 4.0], [3.0, 4.0]]))
    assert torch.equal(own_class_centres(features, labels), torch.tensor([[3.0, 4.0]] * 3))


def test_prototype_bank_accumulates_batches_into_class_means():
    gen = torch.Generator().manual_seed(1)
    features, labels = torch.randn(12, 4, generator=gen), torch.tensor([3, 5, 4] * 4)
    bank = PrototypeBank(4)
    for part in range(3):
        bank.accumulate(features[4 * part : 4 * part + 4], labels[4 * part : 4 * part + 4])
    added = bank.finalize([5, 3, 4])
    expected = torch.stack([features[labels == c].mean(0) for c in (5, 3, 4)])
    assert torch.allclose(added, expected) and torch.allclose(bank.prototypes, expected)
    assert bank.classes.tolist() == [5, 3, 4]
    assert torch.allclose(bank.normalized(), F.normalize(expected, dim=1))
    assert torch.allclose(bank.normalized().norm(dim=1), torch.ones(3))


def test_prototype_bank_is_append_only_and_round_trips_its_state():
    bank = PrototypeBank(2)
    bank.add([0, 1], torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="never updated"):
        bank.add([1], torch.tensor([[5.0, 5.0]]))
    bank.accumulate(torch.tensor([[2.0, 2.0]]), torch.tensor([1]))
    with pytest.raises(ValueError, match="never updated"):
        bank.finalize()
    with pytest.raises(ValueError, match=r"\[9\]"):
        bank.finalize([9])
    bank.add([2], torch.tensor([[1.0, 1.0]]))
    copy = PrototypeBank(2)
    copy.load_state_dict(bank.state_dict())
    assert len(copy) == 3 and torch.equal(copy.prototypes, bank.prototypes)
    assert copy.classes.tolist() == [0, 1, 2]

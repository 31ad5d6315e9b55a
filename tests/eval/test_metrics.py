"""Masked losses and metrics use present labels only; missing (NaN) labels change nothing."""

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from mmsa.eval.metrics import evaluate, masked_loss, mean_roc_auc, rmse, roc_auc_per_task, undefined_reason

NAN = float("nan")


def test_masked_bce_matches_hand_computation() -> None:
    pred = torch.tensor([[0.0, 2.0], [-1.0, 0.5]])
    target = torch.tensor([[1.0, NAN], [0.0, 1.0]])
    # -log(sigmoid(0)), -log(1 - sigmoid(-1)), -log(sigmoid(0.5)) averaged over the 3 labels.
    expected = (math.log(2) + math.log1p(math.exp(-1)) + math.log1p(math.exp(-0.5))) / 3
    assert masked_loss(pred, target, "classification").item() == pytest.approx(expected)


def test_masked_mse_matches_hand_computation() -> None:
    pred = torch.tensor([[1.0, 5.0], [2.0, 0.0]])
    target = torch.tensor([[0.0, NAN], [4.0, NAN]])
    assert masked_loss(pred, target, "regression").item() == pytest.approx((1 + 4) / 2)


@pytest.mark.parametrize("task_type", ["classification", "regression"])
def test_missing_labels_affect_neither_loss_nor_gradient(task_type: str) -> None:
    target = torch.tensor([[1.0, NAN, 0.0], [NAN, 1.0, 1.0]])
    missing = torch.isnan(target)
    base = torch.tensor([[0.3, -0.2, 1.5], [0.7, -1.1, 0.4]])
    changed = base.clone()
    changed[missing] = torch.tensor([50.0, -80.0])

    losses, grads = [], []
    for values in (base, changed):
        pred = values.clone().requires_grad_(True)
        loss = masked_loss(pred, target, task_type)
        loss.backward()
        losses.append(loss.item())
        grads.append(pred.grad)
    assert losses[0] == pytest.approx(losses[1])
    assert torch.equal(grads[0], grads[1])
    assert torch.all(grads[0][missing] == 0)
    assert torch.all(grads[0][~missing] != 0)


def test_batch_without_labels_gives_zero_with_gradient() -> None:
    pred = torch.randn(3, 2, generator=torch.Generator().manual_seed(0), requires_grad=True)
    loss = masked_loss(pred, torch.full((3, 2), NAN), "classification")
    loss.backward()
    assert loss.item() == 0.0
    assert torch.equal(pred.grad, torch.zeros(3, 2))


def test_masked_loss_rejects_unknown_task_type_and_shape_mismatch() -> None:
    with pytest.raises(ValueError, match="task_type"):
        masked_loss(torch.zeros(2, 1), torch.zeros(2, 1), "ranking")
    with pytest.raises(ValueError, match="differ"):
        masked_loss(torch.zeros(2, 1), torch.zeros(2, 2), "regression")


def test_roc_auc_skips_single_class_tasks() -> None:
    y_true = np.array([[1, 1, 0], [0, 1, NAN], [1, NAN, 1], [0, 1, 0], [NAN, 1, 1], [1, 1, 0]], dtype=float)
    y_score = np.array(
        [
            [0.9, 0.2, 0.1],
            [0.4, 0.3, 0.5],
            [0.6, 0.8, 0.7],
            [0.5, 0.1, 0.6],
            [0.0, 0.5, 0.2],
            [0.3, 0.6, 0.3],
        ]
    )
    task0 = roc_auc_score([1, 0, 1, 0, 1], [0.9, 0.4, 0.6, 0.5, 0.3])
    task2 = roc_auc_score([0, 1, 0, 1, 0], [0.1, 0.7, 0.6, 0.2, 0.3])
    per_task = roc_auc_per_task(y_true, y_score)
    assert per_task[1] is None
    assert per_task[0] == pytest.approx(task0)
    assert per_task[2] == pytest.approx(task2)
    assert mean_roc_auc(y_true, y_score) == pytest.approx((task0 + task2) / 2)
    assert evaluate(y_true, y_score, "classification") == {
        "metric": "roc_auc",
        "value": pytest.approx((task0 + task2) / 2),
        "higher_is_better": True,
    }


def test_mean_roc_auc_without_any_two_class_task_raises() -> None:
    y_true = np.array([[1, 0], [1, NAN], [NAN, 0]], dtype=float)
    assert roc_auc_per_task(y_true, np.zeros((3, 2))) == [None, None]
    with pytest.raises(ValueError, match="both classes"):
        mean_roc_auc(y_true, np.zeros((3, 2)))


def test_rmse_pools_present_entries() -> None:
    y_true = np.array([[1.0, NAN], [2.0, 0.0], [NAN, 3.0]])
    y_pred = np.array([[2.0, 100.0], [0.0, 0.0], [-7.0, 1.0]])
    expected = math.sqrt((1 + 4 + 0 + 4) / 4)
    assert rmse(y_true, y_pred) == pytest.approx(expected)
    assert rmse(y_true[:, 0], y_pred[:, 0]) == pytest.approx(math.sqrt(5 / 2))
    assert evaluate(y_true, y_pred, "regression") == {
        "metric": "rmse",
        "value": pytest.approx(expected),
        "higher_is_better": False,
    }
    with pytest.raises(ValueError, match="no present labels"):
        rmse(np.full((2, 1), NAN), np.zeros((2, 1)))


def test_every_labelled_task_type_has_a_metric_and_only_those():
    from mmsa.data.registry import LABELLED_TASK_TYPES
    from mmsa.eval.metrics import METRICS, TASK_TYPES, check_task_type

    assert tuple(METRICS) == LABELLED_TASK_TYPES == TASK_TYPES
    with pytest.raises(ValueError, match="'none'"):
        check_task_type("none")  # an unlabelled corpus is a dataset type, not a scored one


def test_an_undefined_metric_names_its_cause() -> None:
    labels = np.array([[1.0], [0.0], [1.0], [np.nan]])
    assert undefined_reason(labels, np.array([[0.9], [0.1], [0.8], [0.5]]), "classification") is None
    diverged = np.array([[np.nan], [np.nan], [np.nan], [0.5]])
    expected = "its predictions are not finite numbers (training diverged; a smaller lr?)"
    assert undefined_reason(labels, diverged, "classification") == expected
    assert undefined_reason(np.array([[1.0], [1.0]]), np.array([[np.inf], [1.0]]), "regression") == expected
    one_class = np.array([[1.0], [1.0], [np.nan]])
    assert undefined_reason(one_class, np.array([[0.2], [0.3], [0.4]]), "classification") == (
        "no task has both classes among its labelled rows"
    )

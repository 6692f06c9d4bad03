"""A classification: the tutorials' three outputs with their losses, accuracy per stage and class, the best
validation accuracy kept across a resume; a prediction is the class probabilities whatever the output."""

import pytest
import torch
import torch.nn.functional as F

from mnistlab.run.build import build_datamodule, build_model
from mnistlab.tasks import Classification


@pytest.mark.parametrize("output", ["logits", "log_softmax", "softmax"])
def test_every_output_pairs_with_its_loss_and_predicts_the_same_probabilities(output):
    task = Classification(class_names=["a", "b", "c"], output=output, label_smoothing=0.0)
    z, y = torch.randn(16, 3), torch.randint(3, (16,))
    assert torch.allclose(task.loss(z, y), F.cross_entropy(z, y), atol=1e-6)
    assert torch.allclose(task.predict(z), F.softmax(z, dim=1))
    shown = task.evaluation_outputs(z)
    assert torch.equal(shown["preds"], z.argmax(dim=1)) and torch.allclose(
        shown["probs"].sum(dim=1), torch.ones(16)
    )


def test_accuracy_is_counted_per_stage_and_per_class_and_reaches_the_results():
    task = Classification(class_names=["a", "b"], output="logits", label_smoothing=0.0)
    z = torch.tensor([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0], [2.0, 0.0]])  # predicts a, b, a, a
    y = torch.tensor([0, 1, 1, 0])
    task.update("test", z, y, task.loss(z, y), torch.tensor(float(len(y))))
    assert task.metrics("test")["test/acc"].compute().item() == pytest.approx(0.75)
    assert task.metrics("val")["val/acc"].update_count == 0  # another stage's metric is untouched
    logged = {}
    task.epoch_end("test", lambda name, value, **options: logged.__setitem__(name, value))
    assert logged["test/acc_per_class/a"].item() == 1.0 and logged["test/acc_per_class/b"].item() == 0.5
    assert logged["test/acc_worst_class"].item() == 0.5
    results = task.test_results({"test/loss": 0.5, "test/acc": 0.75, **logged})
    assert results == {"test_loss": 0.5, "test_acc": 0.75, "test_acc_per_class": [1.0, 0.5]}


def test_the_best_validation_accuracy_is_kept_in_checkpoints_and_nothing_else_of_the_metrics(compose_cfg):
    cfg = compose_cfg("model=mlp", "model.hidden_sizes=[8]")
    module = build_model(cfg, build_datamodule(cfg))
    kept = [key for key in module.state_dict() if key.startswith("task.")]
    assert kept == ["task.val_accuracy_best.max_value"]
    assert all(key.startswith(("net.", "task.")) for key in module.state_dict())

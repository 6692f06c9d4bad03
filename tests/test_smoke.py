from mnistlab.train import train


def test_two_epochs_on_synthetic_digits_learn(compose_cfg):
    metrics = train(compose_cfg("model=mlp"))
    assert metrics["epochs_run"] == 2
    assert metrics["test_acc"] > 0.5

"""Pruning: the same Optuna search (hparams_search=mnist_optuna, seeded TPE) with and without a pruner.

    python benchmarks/pruning.py --data-dir ../shared/data --json docs/pruning-<date>.json   # 20 trials each
    python benchmarks/pruning.py --data-dir D --trials 3 trainer.max_epochs=2   # overrides for all three
    python benchmarks/pruning.py --data-dir D --pruner-setting n_startup_trials=1   # its pruner's

Runs three searches one after the other, each a real ``python train.py -m hparams_search=mnist_optuna`` in its
own sweep dir: without pruning with the sampler's seed S, without pruning with seed S + 1 (the spread that
chance alone gives the best val/loss), and with ``hydra/sweeper/pruner=median`` with seed S. For each: the
epochs trained by all its trials (the val/loss values they reported), its wall time, its best val/loss, and
the test accuracy of its best trial (that trial's own test of its best checkpoint). The target: the pruned
search trains at most half the epochs of the unpruned one with the same seed, for a best val/loss within the
spread of the two unpruned ones (no worse than the worse of them). Results: docs/dashboards.md.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import optuna
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
STUDY = "mnist_mlp"  # conf/hparams_search/mnist_optuna.yaml's


def search(name: str, pruner: str, seed: int, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """One search as a user runs it, and what it cost and found."""
    settings = (
        [f"hydra.sweeper.pruner.{setting}" for setting in args.pruner_setting] if pruner != "none" else []
    )
    sweep_dir = out / name
    command = [
        sys.executable,
        str(ROOT / "train.py"),
        "-m",
        "hparams_search=mnist_optuna",
        f"hydra/sweeper/pruner={pruner}",
        f"hydra.sweeper.sampler.seed={seed}",
        f"hydra.sweeper.n_trials={args.trials}",
        f"paths.data_dir={args.data_dir}",
        f"hydra.sweep.dir={sweep_dir}",
        *settings,
        *args.overrides,
    ]
    started = time.perf_counter()
    with (out / f"{name}.log").open("w") as log:
        done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, cwd=out)
    wall_s = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"error: the search {name} failed; see {out / f'{name}.log'}")
    trials = optuna.load_study(study_name=STUDY, storage=f"sqlite:///{sweep_dir}/optuna.db").get_trials()
    answer = OmegaConf.to_container(OmegaConf.load(sweep_dir / "optimization_results.yaml"))
    return {
        "pruner": pruner,
        "sampler_seed": seed,
        "trials": answer["trials"],
        "epochs": sum(len(trial.intermediate_values) for trial in trials),  # one val/loss per epoch trained
        "wall_s": round(wall_s, 1),
        "best_val_loss": answer.get("best_value"),
        "best_test_acc": answer.get("best_test", {}).get("test_acc"),
        "best_trial": answer.get("best_trial"),
        "sweep_dir": str(sweep_dir),
    }


def verdict(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    unpruned, other, pruned = results["unpruned"], results["unpruned_other_seed"], results["pruned"]
    worse = max(unpruned["best_val_loss"], other["best_val_loss"])
    return {
        "epochs_ratio": round(pruned["epochs"] / unpruned["epochs"], 3),
        "at_most_half_the_epochs": pruned["epochs"] <= unpruned["epochs"] / 2,
        "unpruned_spread": [min(unpruned["best_val_loss"], other["best_val_loss"]), worse],
        "best_val_loss_within_the_spread": pruned["best_val_loss"] <= worse,
    }


def show(results: dict[str, dict[str, Any]], target: dict[str, Any]) -> None:
    """One line per search (plain text: a log keeps it whole), then the target."""
    print(f"{'search':<20} {'pruner':<9} {'seed':>5} {'complete/pruned/failed':>23} {'epochs':>7} "
          f"{'wall s':>8} {'best val/loss':>14} {'test acc (best)':>16}")  # fmt: skip
    for name, r in results.items():
        counts = "/".join(str(r["trials"][key]) for key in ("complete", "pruned", "fail"))
        acc = "" if r["best_test_acc"] is None else f"{r['best_test_acc']:.2%}"
        print(f"{name:<20} {r['pruner']:<9} {r['sampler_seed']:>5} {counts:>23} {r['epochs']:>7} "
              f"{r['wall_s']:>8.1f} {r['best_val_loss']:>14.4f} {acc:>16}")  # fmt: skip
    low, high = target["unpruned_spread"]
    print(
        f"pruned/unpruned epochs: {target['epochs_ratio']:.2f} (target at most 0.5: "
        f"{'met' if target['at_most_half_the_epochs'] else 'missed'}); best val/loss within the unpruned "
        f"spread {low:.4f}-{high:.4f}: {'yes' if target['best_val_loss_within_the_spread'] else 'no'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", required=True, help="MNIST's folder, e.g. ../shared/data")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1234, help="the sampler's seed (conf: seeded_tpe)")
    parser.add_argument("--pruner", default="median", help="the pruner measured (hydra/sweeper/pruner)")
    parser.add_argument(
        "--pruner-setting", action="append", default=[], metavar="KEY=VALUE", help="e.g. n_startup_trials=5"
    )
    parser.add_argument("--out", type=Path, help="where the sweep dirs go (default: a temporary folder)")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every search")
    args = parser.parse_args()
    args.data_dir = os.path.abspath(args.data_dir)
    out = args.out or Path(tempfile.mkdtemp(prefix="mnistlab-pruning-"))
    out.mkdir(parents=True, exist_ok=True)
    results = {
        "unpruned": search("unpruned", "none", args.seed, args, out),
        "unpruned_other_seed": search("unpruned_other_seed", "none", args.seed + 1, args, out),
        "pruned": search("pruned", args.pruner, args.seed, args, out),
    }
    target = verdict(results)
    show(results, target)
    if args.json:
        record = {"trials": args.trials, "overrides": args.overrides, "searches": results, "target": target}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()

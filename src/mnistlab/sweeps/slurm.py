"""hydra/launcher=slurm (hydra-submitit-launcher's SLURM launcher): the cluster is checked before any job is
submitted (the job's size comes from the trainer's: core/resolvers.py)."""

import shutil
import subprocess
import sys
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from mnistlab.core.errors import MnistlabError

SUBMITIT_SLURM = "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"


class CheckSlurmCluster(Callback):
    """Without sbatch, or with a partition the cluster lacks, submitit fails on the first job with a long
    traceback; with this (conf/hydra/default.yaml) a sweep for SLURM stops before any job, with one line."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        launcher = config.hydra.launcher
        if launcher.get("_target_") != SUBMITIT_SLURM:
            return
        try:
            check_cluster(launcher.get("partition"))
        except MnistlabError as error:
            sys.exit(f"error: {error}")  # Hydra turns a callback's exception into a warning


def check_cluster(partition: str | None) -> None:
    if shutil.which("sbatch") is None:
        raise MnistlabError(
            "hydra/launcher=slurm needs SLURM, and sbatch is not on this machine's PATH: run the sweep on a "
            "cluster's login node, start a test cluster with `bash .ci/slurm/start.sh`, or use "
            "hydra/launcher=submitit_local"
        )
    try:
        shown = subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise MnistlabError(f"the SLURM cluster does not answer (sinfo: {error}); check slurmctld") from None
    if shown.returncode != 0:
        reason = (shown.stderr.strip().splitlines() or ["no output"])[0]
        raise MnistlabError(f"the SLURM cluster does not answer (sinfo: {reason}); check slurmctld")
    partitions = [name.rstrip("*") for name in shown.stdout.split()]
    if partition is not None and partition not in partitions:
        raise MnistlabError(
            f"hydra.launcher.partition={partition} is not a partition of this cluster: choose one of "
            f"{', '.join(partitions) or '(none)'}, or null for the default"
        )

"""Weights & Biases beside TensorBoard: Lightning's logger, which W&B failing to start never stops."""

import importlib.util
import os
import sys
from typing import Any

from lightning.pytorch.loggers import WandbLogger  # imports no wandb itself
from lightning.pytorch.loggers.logger import rank_zero_experiment

from mnistlab.core.errors import MnistlabError

INSTALL = "pip install -e '.[wandb]'"


class OfflineFallbackWandbLogger(WandbLogger):
    """Lightning's ``WandbLogger``; when W&B cannot start online (no API key, an unreachable server), the run
    goes on, logging offline into its run dir (``<run dir>/wandb/offline-run-*``, sent later with ``wandb
    sync``), and says so in one ``warning:`` line; should offline fail too, it goes on without W&B.

    Lightning's ``WandbLogger`` would let wandb.init's error end the run before its first epoch.
    """

    def __init__(
        self,
        project: str,
        entity: str | None,
        name: str,
        tags: list[str],
        group: str | None,
        job_type: str | None,
        offline: bool,
        save_dir: str,
        id: str,
        log_model: bool,
    ) -> None:
        if importlib.util.find_spec("wandb") is None:
            raise MnistlabError(f"logger=wandb needs the wandb package, which is not installed: {INSTALL}")
        super().__init__(
            project=project,
            entity=entity,
            name=name,
            tags=list(tags),
            group=group,
            job_type=job_type,
            offline=offline,
            save_dir=save_dir,
            id=id,
            log_model=log_model,
        )
        # Lightning passes anonymous=None, which W&B answers with a warning on every run that it is obsolete.
        if self._wandb_init.get("anonymous") is None:
            self._wandb_init.pop("anonymous", None)

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        if self._experiment is not None:
            return self._experiment
        problems = []
        for mode in self.modes_to_try():
            if mode != "as configured":
                self._wandb_init["mode"] = mode  # wandb.init's arguments (tests/test_private_uses.py)
            try:
                experiment = super().experiment
            except Exception as error:  # whatever wandb.init raised: W&B is not worth the run
                if mode == "disabled":
                    raise
                problems.append(in_one_line(error))
                import wandb

                wandb.teardown()  # the failed run's stream: W&B refuses the same id again while it lives
                continue
            if problems:
                warn_of(problems, mode, self.save_dir)
            return experiment

    def modes_to_try(self) -> list[str]:
        """The configured mode first (online, unless told otherwise), then offline, then disabled."""
        offline = self._offline or "offline" in (self._wandb_init.get("mode"), os.environ.get("WANDB_MODE"))
        return ["as configured", *([] if offline else ["offline"]), "disabled"]


def in_one_line(error: Exception) -> str:
    """The whole of W&B's message, which says what went wrong on its first line and where on the next."""
    return f"{type(error).__name__}: {' '.join(str(error).split())[:300]}"


def warn_of(problems: list[str], mode: str, save_dir: str | None) -> None:
    """One line: why W&B did not start, and where the run's numbers go instead."""
    if mode == "offline":
        runs = f"{save_dir}/wandb/offline-run-*"
        instead = f"this run logs offline into {save_dir}/wandb: send it later with `wandb sync {runs}`"
    else:
        instead = "this run goes on without W&B"
    print(f"warning: W&B did not start ({'; then '.join(problems)}); {instead}", file=sys.stderr)


def finish_wandb_run(failed: bool) -> None:
    """Ends this process's W&B run, if any: a sweep's next job in this process then starts its own
    (Lightning's logger would go on logging into a run left open). A single run's ends with the process."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        wandb.run.finish(exit_code=1 if failed else 0)

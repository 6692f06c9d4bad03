import re
import time
from pathlib import Path

import torch
from lightning import Callback, LightningModule, Trainer

from mnistlab.core.errors import ProcessDied
from mnistlab.core.results import RunResult, Status

# What a collective raises when a process on the other end is gone (gloo, NCCL) or never answers.
PEER_GONE = re.compile(r"Connection (closed|reset) by peer|Broken pipe|Timed out|timeout|NCCL error", re.I)


class EndOnDeadProcess(Callback):
    """When a DDP process dies (kill -9, out of memory, a lost node), the others' next collective fails:
    gloo and NCCL notice a closed connection at once, and the strategy's timeout bounds the rest. This turns
    that failure into one line and ``status: failed`` in metrics.json, written at once: Lightning's launcher
    SIGKILLs its main process within seconds of a child's death, before any slower clean-up could run."""

    def __init__(self, output_dir: str, seed: int) -> None:
        self.output_dir = Path(output_dir)
        self.seed = seed
        self.started = time.perf_counter()

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        if trainer.world_size == 1 or not is_peer_failure(exception):
            return
        # gloo's messages start with its source file and line ("[.../pair.cc:545] Read error ..."); the first
        # sentence after that says what happened.
        text = re.sub(r"^\[[^\]]*\]\s*", "", str(exception).strip()) or type(exception).__name__
        first_line = text.splitlines()[0].split(". ")[0]
        message = (
            f"a DDP process of this run stopped, so the run ended (process {trainer.global_rank} of "
            f"{trainer.world_size} saw: {first_line[:160]}); resume from the last finished epoch with "
            f"ckpt_path=last hydra.run.dir={self.output_dir}"
        )
        result = RunResult(
            status=Status.FAILED, error=message, seed=self.seed, epochs_run=trainer.current_epoch
        )
        result.seconds = round(time.perf_counter() - self.started, 2)
        result.write(self.output_dir)
        raise ProcessDied(message) from exception


def is_peer_failure(exception: BaseException) -> bool:
    if isinstance(exception, torch.distributed.DistError):
        return True
    return isinstance(exception, RuntimeError) and bool(PEER_GONE.search(str(exception)))

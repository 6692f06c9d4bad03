import signal
import threading
from types import FrameType
from typing import Any

from lightning import Callback, LightningModule, Trainer
from lightning.pytorch.utilities.exceptions import SIGTERMException


class StopTogetherOnSigterm(Callback):
    """A SIGTERM to any process stops every process of the run at the same point: the end of a training batch
    (the current one; under DDP one of every ``decide_every``), the start of an epoch or test, or the end of
    the test.

    Lightning's own handler runs a collective inside the signal handler, whatever the process was doing, and
    each process then stops at its own next check of its own flag: under DDP the processes leave at different
    points and break each other's collectives (a dead-peer error instead of the interruption, or a hang).
    Here the handler only notes the signal, and the processes decide together, by one reduction at each of
    those points, with Lightning's handler out of the way. Evaluation batches are not such points: the
    processes' shares of an evaluation set may differ by a batch. The reduction waits for the device (its
    answer decides on the host), so training batches ask it only every ``decide_every``; a single process
    needs none.
    """

    decide_every = 20

    def __init__(self) -> None:
        self.received = False

    def note(self, signum: int, frame: FrameType | None) -> None:
        self.received = True

    def listen(self) -> None:
        # Lightning registers its handler at the start of each fit and test (and restores the one before it
        # at their end), after the setup hooks: these hooks come after that.
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self.note)

    def stop_if_received(self, trainer: Trainer) -> None:
        if trainer.world_size == 1:
            stop = self.received
        else:
            stop = trainer.strategy.reduce_boolean_decision(self.received, all=False)
        if stop:
            raise SIGTERMException

    def on_sanity_check_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.listen()

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.listen()

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.stop_if_received(trainer)

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if trainer.world_size == 1 or trainer.global_step % self.decide_every == 0:
            self.stop_if_received(trainer)

    def on_test_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.listen()
        self.stop_if_received(trainer)

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.stop_if_received(trainer)

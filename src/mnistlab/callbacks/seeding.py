import lightning as L
import numpy as np
from lightning import Callback, LightningModule, Trainer

# Tells this stream apart from the data order's, which mixes the same (seed, epoch).
GLOBAL_STREAM = 1


class SeedEachEpoch(Callback):
    """Reseeds the global RNGs at each epoch's start from (seed, epoch) alone, and the DDP rank.

    The data order already depends only on (seed, epoch); with this, so does everything else random in an
    epoch (dropout, augmentation), and a run resumed from an end-of-epoch checkpoint trains exactly as the
    uninterrupted run did, whatever drew from the RNGs before (model init, validation, the sanity check).
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # Each DDP process draws its own dropout and augmentation; rank zero's are those of a single process.
        rank = [trainer.global_rank] if trainer.global_rank else []
        mixed = np.random.SeedSequence([self.seed, trainer.current_epoch, GLOBAL_STREAM, *rank])
        L.seed_everything(int(mixed.generate_state(1)[0]), workers=True, verbose=False)

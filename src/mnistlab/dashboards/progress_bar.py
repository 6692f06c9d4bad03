import time
from typing import Any

from lightning.pytorch.callbacks import TQDMProgressBar

from mnistlab.core.checks import Count, Seconds, checked


class ThrottledProgressBar(TQDMProgressBar):
    """Lightning's TQDM bar, redrawn at most every ``refresh_seconds`` (and at the end of each epoch).

    A redraw formats the line and its metrics and writes it out; on a fast step (a GPU, a small net) a
    redraw every ``refresh_rate`` steps costs the step a good part of its time, while a person reads no
    more than a few redraws a second. ``refresh_rate=0`` still hides the bar.
    """

    @checked
    def __init__(self, *, refresh_rate: Count, refresh_seconds: Seconds, **kwargs: Any) -> None:
        super().__init__(refresh_rate=refresh_rate, **kwargs)
        self.refresh_seconds = refresh_seconds
        self.next_redraw = 0.0

    def _should_update(self, current: int, total: int) -> bool:
        if not super()._should_update(current, total):
            return False
        now = time.monotonic()
        if current != total and now < self.next_redraw:
            return False
        self.next_redraw = now + self.refresh_seconds
        return True

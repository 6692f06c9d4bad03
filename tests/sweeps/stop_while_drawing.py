"""A sampler for tests (hydra.sweeper.sampler._target_=stop_while_drawing.StopWhileDrawing, with tests/sweeps
on PYTHONPATH): Optuna's TPE sampler, which sends its own process, the sweeper, a real signal in the middle of
drawing one trial's parameters, after the first, as a Ctrl-C (SIGINT) or a crash (SIGKILL) could come."""

import os
import signal

import optuna


class StopWhileDrawing(optuna.samplers.TPESampler):
    def __init__(self, stop_at_trial: int, stop_signal: str, **tpe_settings) -> None:
        super().__init__(**tpe_settings)
        self.stop_at_trial, self.stop_signal = stop_at_trial, signal.Signals[stop_signal]

    def sample_independent(self, study, trial, param_name, param_distribution):
        if trial.number == self.stop_at_trial and len(trial.params) == 1:
            os.kill(os.getpid(), self.stop_signal)
        return super().sample_independent(study, trial, param_name, param_distribution)

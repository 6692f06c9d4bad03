"""Errors as a user is told them; here, a Ctrl-C that the code it stopped turned into another error."""

import json
import subprocess
import sys

from conftest import CONF

# Composes the real conf/ again and again, each time with Ctrl-C (a KeyboardInterrupt raised by a real
# signal) at another moment of it, until Ctrl-C has come out of Hydra as another error twice: what each such
# error was, and whether is_ctrl_c knew it for Ctrl-C.
INTERRUPTED_COMPOSING = f"""
import json, signal, time
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from mnistlab.core.errors import is_ctrl_c
from mnistlab.core.resolvers import register_resolvers

register_resolvers()
signal.signal(signal.SIGALRM, signal.default_int_handler)

def composed(after=None):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir={str(CONF)!r}, version_base="1.3"):
        if after:
            signal.setitimer(signal.ITIMER_REAL, after)
        try:
            compose("train", ["hparams_search=mnist_optuna"], return_hydra_config=True)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)

started = time.perf_counter()
composed()
takes = time.perf_counter() - started
found = []
for n in range(3000):
    try:
        composed(after=takes * ((n * 0.618034) % 1) + 1e-5)
    except KeyboardInterrupt:
        pass
    except Exception as error:
        found.append([type(error).__name__, is_ctrl_c(error)])
        if len(found) == 2:
            break
print(json.dumps(found))
"""


def test_ctrl_c_that_hydra_turns_into_a_config_error_is_still_known_for_ctrl_c():
    probe = subprocess.run(
        [sys.executable, "-c", INTERRUPTED_COMPOSING], capture_output=True, text=True, timeout=600
    )
    assert probe.returncode == 0, probe.stderr[-3000:]
    found = json.loads(probe.stdout)
    assert found, "no Ctrl-C came out of Hydra as another error in 3000 tries"
    assert all(recognised for _, recognised in found), found

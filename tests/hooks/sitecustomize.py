"""Test hook, loaded only by processes started with this folder on PYTHONPATH (tests/faults_e2e_test.py).

With PAUSE_IN=module.function and PAUSE_FILE=path set, that function is replaced before the run starts
by one that creates PAUSE_FILE and then blocks forever: the test waits for the file, so it kills the
process while the step is certainly still running (no sleeps, no races). Nothing in the product
knows about it.
"""

import importlib
import os
import time

_target, _flag = os.environ.get("PAUSE_IN"), os.environ.get("PAUSE_FILE")
if _target and _flag:
    _module_name, _function = _target.rsplit(".", 1)
    _module = importlib.import_module(_module_name)
    getattr(_module, _function)  # fail at start-up, not mid-run, on a wrong name

    def _paused(*args, **kwargs):
        with open(_flag, "w") as handle:
            handle.write(f"{_target} called in pid {os.getpid()}\n")
        while True:
            time.sleep(60)

    setattr(_module, _function, _paused)

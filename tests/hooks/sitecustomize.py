"""Test hook, loaded only by processes started with this folder on PYTHONPATH (tests/faults_e2e_test.py).

With PAUSE_IN=module.function and PAUSE_FILE=path set, that function is replaced before the run starts
by one that creates PAUSE_FILE and then blocks forever: the test waits for the file, so it kills the
process while the step is certainly still running (no sleeps, no races). With PAUSE_RESUME=1 as well, its
first call instead waits until the test deletes PAUSE_FILE, then does its work (tests/flink_e2e_test.py: the
Flink job server is killed while a step waits). Nothing in the product knows about it.
"""

import importlib
import os
import time

_target, _flag = os.environ.get("PAUSE_IN"), os.environ.get("PAUSE_FILE")
_resume = os.environ.get("PAUSE_RESUME") == "1"
if _target and _flag:
    _module_name, _function = _target.rsplit(".", 1)
    _module = importlib.import_module(_module_name)
    _original = getattr(_module, _function)  # fail at start-up, not mid-run, on a wrong name

    _resumed = []

    def _paused(*args, **kwargs):
        if _resumed:  # PAUSE_RESUME pauses the first call only
            return _original(*args, **kwargs)
        with open(_flag, "w") as handle:
            handle.write(f"{_target} called in pid {os.getpid()}\n")
        while not _resume or os.path.exists(_flag):
            time.sleep(0.2 if _resume else 60)
        _resumed.append(True)
        return _original(*args, **kwargs)

    setattr(_module, _function, _paused)

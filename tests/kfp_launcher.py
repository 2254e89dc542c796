"""A local stand-in for the KFP v2 launcher, for the executor-contract tests.

For one task of a compiled PipelineSpec it does what the KFP backend's driver and launcher do: build the
`ExecutorInput` (constant parameters, upstream tasks' output artifacts, fresh output URIs under a local
pipeline root), substitute it for the `{{$}}` placeholder in the executor's container args, run the
lifecycle pre-cache-check command (ExampleGen's driver) and then the container's command, in a
subprocess with the image's environment, and read back the `ExecutorOutput` the entrypoint wrote.

What it does not emulate: the container image itself (the installed package stands in for it), MLMD
(resolver tasks resolve to no artifacts, as on a first run) and caching.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

EXECUTOR_INPUT_PLACEHOLDER = "{{$}}"


def image_env(dockerfile: Path) -> dict[str, str]:
    """The `ENV KEY=VALUE` settings of a Dockerfile (literal values only)."""
    env = {}
    for line in dockerfile.read_text().splitlines():
        match = re.match(r"^ENV\s+([A-Za-z_][A-Za-z0-9_]*)=(\S+)\s*$", line)
        if match and "$" not in match.group(2):
            env[match.group(1)] = match.group(2)
    return env


class LocalLauncher:
    """Runs tasks of a compiled PipelineSpec dict one at a time, passing artifacts between them."""

    def __init__(self, spec: dict, root: Path, env: dict[str, str], timeout_s: int = 600):
        self.spec = spec
        self.root = root
        self.timeout_s = timeout_s
        self.tasks = spec["root"]["dag"]["tasks"]
        self.outputs: dict[str, dict[str, list[dict]]] = {}  # task -> output key -> RuntimeArtifact dicts
        self.env = {k: v for k, v in os.environ.items() if k not in env and k != "TF_USE_LEGACY_KERAS"}
        self.env.update(env)
        # `python` in the container command is the image's interpreter: here, this test's one.
        self.env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{self.env.get('PATH', '')}"
        self.commands: dict[str, list[list[str]]] = {}  # task -> the command lines it ran

    def component(self, task: str) -> dict:
        return self.spec["components"][self.tasks[task]["componentRef"]["name"]]

    def executor(self, task: str) -> dict:
        return self.spec["deploymentSpec"]["executors"][self.component(task)["executorLabel"]]

    def _parameters(self, task: str) -> dict:
        values = {}
        for key, source in self.tasks[task].get("inputs", {}).get("parameters", {}).items():
            if "runtimeValue" not in source:
                raise NotImplementedError(f"{task}.{key}: only constant parameters are emulated, got {source}")
            values[key] = source["runtimeValue"]["constant"]
        return values

    def _input_artifacts(self, task: str) -> dict:
        artifacts = {}
        for key, source in self.tasks[task].get("inputs", {}).get("artifacts", {}).items():
            upstream = source["taskOutputArtifact"]
            produced = self.outputs[upstream["producerTask"]][upstream["outputArtifactKey"]]
            artifacts[key] = {"artifacts": produced}
        return artifacts

    def _output_artifacts(self, task: str) -> dict:
        artifacts = {}
        definitions = self.component(task).get("outputDefinitions", {}).get("artifacts", {})
        for key, definition in definitions.items():
            artifact_type = definition["artifactType"]
            artifacts[key] = {
                "artifacts": [
                    {
                        "name": f"artifacts/{task}-{key}",
                        "type": artifact_type,
                        "uri": str(self.root / task / key),
                        "metadata": {},
                    }
                ]
            }
        return artifacts

    def executor_input(self, task: str) -> dict:
        """The ExecutorInput JSON the KFP launcher would substitute for `{{$}}`."""
        return {
            "inputs": {"parameterValues": self._parameters(task), "artifacts": self._input_artifacts(task)},
            "outputs": {
                "artifacts": self._output_artifacts(task),
                "outputFile": str(self.root / task / "executor_output.json"),
            },
        }

    def run(self, task: str) -> dict:
        """Runs one task (resolvers yield no artifacts); returns its ExecutorOutput as a dict."""
        executor = self.executor(task)
        if "resolver" in executor:  # An MLMD query on the cluster; nothing is blessed on a first run.
            keys = self.component(task).get("outputDefinitions", {}).get("artifacts", {})
            self.outputs[task] = {key: [] for key in keys}
            return {}
        container = executor["container"]
        executor_input = self.executor_input(task)
        serialized = json.dumps(executor_input)
        steps = []
        pre_cache_check = container.get("lifecycle", {}).get("preCacheCheck")
        if pre_cache_check:
            steps.append(pre_cache_check["command"] + pre_cache_check["args"])
        steps.append(container["command"] + container["args"])
        (self.root / task).mkdir(parents=True, exist_ok=True)
        # A pod's own /tmp, gone when the pod ends: TFX's Beam executors build an sdist of TFX there
        # (49 MB a step; the compiled DirectRunner args name no dependencies, the image has them).
        pod_tmp = self.root / task / "tmp"
        pod_tmp.mkdir(exist_ok=True)
        self.commands[task] = []
        for step in steps:
            argv = [serialized if arg == EXECUTOR_INPUT_PLACEHOLDER else arg for arg in step]
            self.commands[task].append(argv)
            result = subprocess.run(
                argv,
                env={**self.env, "TMPDIR": str(pod_tmp)},
                cwd=self.root / task,
                capture_output=True,
                text=True,
                timeout=self.timeout_s,
                check=False,
            )
            if result.returncode != 0:
                command = " ".join(step[:3])
                raise AssertionError(f"{task}: {command} exited {result.returncode}:\n{result.stderr[-4000:]}")
        shutil.rmtree(pod_tmp)
        output = json.loads(Path(executor_input["outputs"]["outputFile"]).read_text())
        self.outputs[task] = {}
        for key, declared in executor_input["outputs"]["artifacts"].items():
            written = output.get("artifacts", {}).get(key, {}).get("artifacts", [{}])[0]
            artifact = dict(declared["artifacts"][0])
            artifact["uri"] = written.get("uri", artifact["uri"])
            artifact["metadata"] = written.get("metadata", {})
            self.outputs[task][key] = [artifact]
        return output

    def order(self) -> list[str]:
        """The tasks in dependency order (dependentTasks edges)."""
        done: list[str] = []
        pending = dict(self.tasks)
        while pending:
            ready = sorted(t for t, spec in pending.items() if set(spec.get("dependentTasks", [])) <= set(done))
            if not ready:
                raise ValueError(f"dependency cycle among {sorted(pending)}")
            for task in ready:
                done.append(task)
                del pending[task]
        return done

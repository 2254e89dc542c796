"""The Pusher with an atomic filesystem push (see `executor.py`)."""

from tfx import v1 as tfx

# Executor specs are not exported by tfx.v1; swapping a standard component's executor needs one.
from tfx.dsl.components.base import executor_spec

from components.pusher import executor


class AtomicPusher(tfx.components.Pusher):
    """tfx.components.Pusher whose version directories appear atomically."""

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

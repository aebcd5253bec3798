"""Capture store: append-only, chunked, crash-safe HDF5; many writers, one logical store."""

from phasm.store.reader import CaptureStore, RunningStats, StoreError
from phasm.store.writer import CaptureWriter, default_shard_id, shard_dir

__all__ = ["CaptureStore", "CaptureWriter", "RunningStats", "StoreError", "default_shard_id", "shard_dir"]

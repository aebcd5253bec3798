"""Capture store: append-only, chunked, checksummed, crash-safe HDF5; many writers, one logical store."""

from phasm.errors import StoreDamaged, StoreError
from phasm.store.layout import StoreWarning, shard_dir
from phasm.store.reader import CaptureStore
from phasm.store.repair import FileRepair, RepairReport, repair
from phasm.store.running_stats import RunningStats
from phasm.store.writer import CaptureWriter, default_shard_id

__all__ = [
    "CaptureStore", "CaptureWriter", "FileRepair", "RepairReport", "RunningStats", "StoreDamaged", "StoreError",
    "StoreWarning", "default_shard_id", "repair", "shard_dir",
]

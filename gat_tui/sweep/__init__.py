"""Sweeps: presets × seeds (× override grids), then evaluations; resumable and shardable."""

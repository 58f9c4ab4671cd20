"""Benchmarks of the batch data path: simulator, loader, classic attribution models."""

"""Numba kernels: featurization, attribution, allocation and bidding."""

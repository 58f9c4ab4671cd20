"""attribid: real-time attribution and bidding over gRPC.

The package ``attribid`` is the server (this folder); ``attribid.kernels``
holds the Numba kernels and ``attribid.models`` the network and batch commands.
"""
__version__ = "0.1.0"

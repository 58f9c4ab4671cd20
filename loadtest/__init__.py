"""Load tests and benchmarks that drive a running attribid server."""

"""Generated gRPC stubs for attribid.v1 (python -m attribid.protogen)."""

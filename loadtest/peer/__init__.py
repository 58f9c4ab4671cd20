"""MLServer 1.7.1 peer: a runtime for attribid's ONNX file and its requests."""

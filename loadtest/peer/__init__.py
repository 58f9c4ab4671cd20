"""The peers: MLServer 1.7.1 and PyTriton 0.7.0 serving attribid's ONNX file, each in its own venv."""

"""gldfn_export: PyTorch → ONNX export of GLDFN with the local dynamic filter as a custom op."""

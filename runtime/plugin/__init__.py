"""The project's native libraries: the TensorRT plugin and the ONNX Runtime custom-op library."""

"""Running a GLDFN model on images: one ``Runner`` protocol (``runner``) and its PyTorch, ONNX Runtime and
bicubic implementations, each in its own module so that importing one does not import the others' libraries.
The runtime package adds the TensorRT runner (its ``trt_runner`` module)."""

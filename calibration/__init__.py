"""gldfn_calibration: INT8 calibration into explicitly quantized (Q/DQ) ONNX models."""

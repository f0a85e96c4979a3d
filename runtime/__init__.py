"""gldfn_runtime: TensorRT / TensorRT-RTX engines, tiled inference and benchmarks."""

"""The caches beside the engine cache (issue 22 items 9 and 11), as far as a machine without a GPU can check them:
TensorRT's timing cache file through TensorRT-RTX's real builder config (whose timing cache is a no-op, so the
engine build leaves it out), and the TensorRT-RTX runtime cache file, whose cache objects exist only with a GPU
engine (a stand-in holds bytes here)."""
from __future__ import annotations

import warnings

import pytest

from gldfn_runtime.engine.timing_cache import persistent_timing_cache, save_timing_cache, timing_cache_path
from gldfn_runtime.runners.rtx_runtime_cache import RUNTIME_CACHE_FOLDER, RuntimeCacheFile, runtime_cache_path
from gldfn_runtime.tensorrt.compat import TensorRTUnavailable, load_tensorrt
from gldfn_runtime.tensorrt.logger import process_logger

H100 = {"gpu": "NVIDIA H100 80GB HBM3", "compute_capability": "SM90"}


@pytest.fixture
def builder_config():
    """A real builder config (TensorRT-RTX's: the one TensorRT this machine can import)."""
    try:
        trt = load_tensorrt("tensorrt_rtx").module
    except TensorRTUnavailable as error:
        pytest.skip(f"TensorRT-RTX is not installed: {error}")

    def make():
        return trt.Builder(process_logger(trt)).create_builder_config()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TensorRT-RTX: "timing cache operations are no-ops"
        yield make


def test_timing_cache_files_are_per_tensorrt_version_and_gpu(tmp_path):
    path = timing_cache_path(tmp_path, "tensorrt", "10.16.0.1", H100)
    assert path.parent == tmp_path / "timing" and path.name == "tensorrt-10.16.0.1-NVIDIA_H100_80GB_HBM3-SM90.cache"
    assert timing_cache_path(tmp_path, "tensorrt", "10.16.0.1", {**H100, "gpu": "NVIDIA L4"}) != path


def test_timing_cache_is_written_after_a_build_and_given_to_the_next(builder_config, tmp_path):
    path = timing_cache_path(tmp_path, "tensorrt", "10.16.0", H100)
    first = builder_config()
    with persistent_timing_cache(first, path):
        pass  # the build
    written = path.read_bytes()
    assert written == bytes(first.get_timing_cache().serialize()) and written
    second = builder_config()
    with persistent_timing_cache(second, path):
        assert bytes(second.get_timing_cache().serialize()) == written  # loaded from the file
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # written atomically: no temporary left


def test_a_failed_build_leaves_the_timing_cache_file_alone_and_a_corrupt_one_is_replaced(builder_config, tmp_path):
    path = timing_cache_path(tmp_path, "tensorrt", "10.16.0", H100)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a timing cache")
    with pytest.raises(RuntimeError, match="build failed"), persistent_timing_cache(builder_config(), path):
        raise RuntimeError("build failed")
    assert path.read_bytes() == b"not a timing cache"
    config = builder_config()
    with persistent_timing_cache(config, path):
        pass
    assert path.read_bytes() == bytes(config.get_timing_cache().serialize())


def test_an_unwritable_timing_cache_costs_nothing_but_time(builder_config, tmp_path):
    blocker = tmp_path / "timing"
    blocker.write_text("a file where the folder should be")
    with persistent_timing_cache(builder_config(), timing_cache_path(tmp_path, "tensorrt", "10.16.0", H100)):
        pass  # no error
    save_timing_cache(builder_config(), timing_cache_path(tmp_path, "tensorrt", "10.16.0", H100))  # none set: nothing
    assert blocker.read_text() == "a file where the folder should be"


class StandInRuntimeCache:
    """What IRuntimeCache offers (serialize, deserialize); the real one needs an engine on a GPU."""

    def __init__(self, accepts: bool = True) -> None:
        self.blob, self.accepts = b"", accepts

    def deserialize(self, blob: bytes) -> bool:
        if self.accepts:
            self.blob = bytes(blob)
        return self.accepts

    def serialize(self) -> bytes:
        return self.blob


class StandInRuntimeConfig:
    def __init__(self, cache: StandInRuntimeCache, takes: bool = True) -> None:
        self.cache, self.takes, self.attached = cache, takes, None

    def create_runtime_cache(self) -> StandInRuntimeCache:
        return self.cache

    def set_runtime_cache(self, cache: StandInRuntimeCache) -> bool:
        self.attached = cache if self.takes else None
        return self.takes


def test_runtime_cache_is_kept_per_version_and_gpu_and_saved_when_it_grew(tmp_path):
    path = runtime_cache_path(tmp_path, "1.7.1.116", "NVIDIA GeForce RTX 4090", "SM89")
    assert path.parent == tmp_path / RUNTIME_CACHE_FOLDER and path.name == "1.7.1.116-NVIDIA_GeForce_RTX_4090-SM89.cache"
    first = RuntimeCacheFile(path)
    cache = StandInRuntimeCache()
    config = StandInRuntimeConfig(cache)
    first.attach(config)
    assert config.attached is cache and not first.loaded
    assert not first.save()  # nothing compiled yet: no file
    cache.blob = b"kernels of the first shape"
    assert first.save() and path.read_bytes() == b"kernels of the first shape"
    assert not first.save()  # unchanged: not written again
    second = RuntimeCacheFile(path)
    second.attach(StandInRuntimeConfig(StandInRuntimeCache()))
    assert second.loaded  # the next process starts with the kernels


def test_a_runtime_cache_from_elsewhere_starts_empty_and_a_refused_one_is_not_saved(tmp_path):
    path = runtime_cache_path(tmp_path, "1.7.1.116", "NVIDIA GeForce RTX 4090", "SM89")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"made by another driver")
    foreign = RuntimeCacheFile(path)
    cache = StandInRuntimeCache(accepts=False)
    foreign.attach(StandInRuntimeConfig(cache))
    assert not foreign.loaded
    cache.blob = b"compiled here"
    assert foreign.save() and path.read_bytes() == b"compiled here"
    untaken = RuntimeCacheFile(path)
    untaken.attach(StandInRuntimeConfig(StandInRuntimeCache(), takes=False))
    assert not untaken.save() and path.read_bytes() == b"compiled here"

"""``gldfn upscale IN -o OUT --ray``: a folder of images upscaled by a pool of ``Upscaler`` actors on a Ray cluster.

- **Inputs.** Ray Data reads the files (``read_binary_files``): a local folder (or files), or a folder named by any
  ``pyarrow.fs`` URI (``s3://bucket/photos``, ``gs://...``, ``file:///...``).
- **Outputs.** Chosen as ``gldfn upscale`` chooses them (``output_targets``: never onto an input, existing files kept
  with ``--skip-existing``, which makes a rerun finish an interrupted job) and written by each actor with
  ``upscale_file``, atomically. ``-o`` must be a folder every node of the cluster sees (a shared file system).
- **Actors.** ``actors`` actors, each holding one ``Upscaler`` made by ``factory`` (it runs on the actor, so a
  GPU runner starts on the actor's GPU), each with ``gpus_per_actor`` GPUs. Their CPU share leaves one CPU to
  Ray Data's read tasks: actors that take every CPU starve the reads and the job hangs (ray-project/ray#44687).

One file that fails is reported in one line naming it; the others go on.
"""
from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gldfn_model.common.atomic import make_output_folder
from gldfn_model.common.errors import GldfnError
from gldfn_model.common.optional import import_optional
from gldfn_model.common.temps import new_work_folder
from gldfn_model.data.image_io import DEFAULT_MAX_PIXELS, IMAGE_SUFFIXES
from gldfn_runtime.upscale.output_targets import (
    OutputTargetError,
    check_distinct,
    check_existing,
    choose_outputs,
    output_name,
)

if TYPE_CHECKING:
    from gldfn_runtime.upscale.upscaler import Upscaler

RAY_EXTRA = "pip install 'gldfn-trt[ray]'"
UpscalerFactory = Callable[..., "Upscaler"]  # called on the actor with threads=N


class RayJobError(GldfnError, ValueError):
    """The job cannot run as asked (cluster resources, inputs, outputs); the message says what to do."""


@dataclass(frozen=True)
class Naming:
    """Where an input goes: ``folder / output_name(name, suffix, image_format)``, as the batch named it."""

    folder: str
    suffix: str = ""
    image_format: str | None = None

    def target(self, source: str) -> Path:
        return Path(self.folder) / output_name(Path(source).name, self.suffix, self.image_format)


@dataclass(frozen=True)
class RayBatch:
    """What to upscale: (source, output) pairs, sources as paths or URIs; ``skipped``: outputs kept; ``overwrite``:
    whether an output may replace a file (else one that appeared after the choice is kept and that output fails)."""

    folder: Path
    jobs: list[tuple[str, Path]]
    skipped: list[Path]
    naming: Naming
    filesystem: Any = None  # the pyarrow file system of URI sources; None for local paths
    overwrite: bool = False


@dataclass
class RayResult:
    written: int = 0
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    gpu_ids: set[str] = field(default_factory=set)  # the GPUs the actors were given (as Ray names them)


def _import_ray() -> Any:
    import_optional("ray", "--ray", RAY_EXTRA)
    return import_optional("ray.data", "--ray", RAY_EXTRA)


def is_uri(source: str | os.PathLike[str]) -> bool:
    return "://" in str(source)


def prepare_ray_batch(source: str, out: str | os.PathLike[str], *, suffix: str = "", image_format: str | None = None,
                 overwrite: bool = False, skip_existing: bool = False) -> RayBatch:
    """The outputs of a local folder (as ``choose_outputs`` chooses them) or of a folder at a ``pyarrow.fs`` URI
    (named by the same rules into the folder ``out``)."""
    if is_uri(out):
        raise RayJobError(f"-o {out}: write to a folder every node sees (a shared file system), not a URI")
    if not is_uri(source):
        if not Path(source).is_dir():
            raise RayJobError(f"--ray upscales a folder; {source} is not one (upscale single files without --ray)")
        batch = choose_outputs([Path(source)], out, suffix=suffix, image_format=image_format, overwrite=overwrite,
                            skip_existing=skip_existing)
        return RayBatch(batch.folder, [(str(s), t) for s, t in batch.jobs], batch.skipped, Naming(str(batch.folder), suffix, image_format),
                       overwrite=overwrite)
    if overwrite and skip_existing:
        raise OutputTargetError("--overwrite and --skip-existing exclude each other: choose one")
    pyarrow_fs = import_optional("pyarrow.fs", "--ray with a URI", RAY_EXTRA)
    try:
        filesystem, base = pyarrow_fs.FileSystem.from_uri(source)
        entries = filesystem.get_file_info(pyarrow_fs.FileSelector(base, recursive=False))
    except (OSError, ValueError) as error:  # pyarrow raises these for unknown schemes, missing folders, access
        raise RayJobError(f"{source}: cannot list the folder ({error})") from None
    files = sorted(e.path for e in entries if e.type == pyarrow_fs.FileType.File and Path(e.path).suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise RayJobError(f"{source}: no images ({', '.join(IMAGE_SUFFIXES)}) in that folder")
    folder = Path(out)
    targets = [folder / output_name(Path(f).name, suffix, image_format) for f in files]
    check_distinct(files, targets)
    kept = check_existing([t for t in targets if t.is_file()], overwrite, skip_existing)
    return RayBatch(folder, [(f, t) for f, t in zip(files, targets) if t not in kept], [t for t in targets if t in kept],
                   Naming(str(folder), suffix, image_format), filesystem, overwrite)


def actor_cpus(cluster_cpus: float, actors: int) -> float:
    """Each actor's CPU share: at most 1, and never so much that no CPU is left for Ray Data's read tasks."""
    return max(0.0, min(1.0, (cluster_cpus - 1.0) / actors))


def actor_threads(cluster_cpus: float, actors: int) -> int:
    """ONNX Runtime / PyTorch threads per actor: the cluster's CPUs shared out (whole node sizes are unknown)."""
    return max(1, int(cluster_cpus // actors))


class UpscaleFiles:
    """The Ray Data actor: one Upscaler, and for each file read by Ray Data, ``upscale_file`` into its output
    (a file is written to a temporary name and renamed, so an interrupted job leaves no partial output)."""

    def __init__(self, factory: UpscalerFactory, threads: int, naming: Naming, max_pixels: int | None,
                 quality: int | None = None, overwrite: bool = False) -> None:
        import ray

        self.upscaler = factory(threads=threads)
        self.naming, self.max_pixels, self.quality, self.overwrite = naming, max_pixels, quality, overwrite
        self.gpu_ids = ",".join(str(g) for g in ray.get_gpu_ids())
        self.scratch = new_work_folder("ray")  # a killed actor's is removed by the next run on that node

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[str]]:
        from gldfn_runtime.upscale.upscaler import describe_failure, upscale_file

        rows: dict[str, list[str]] = {"source": [], "target": [], "error": [], "note": [], "gpus": []}
        for data, source in zip(batch["bytes"], batch["path"]):
            target = self.naming.target(source)
            local = self.scratch / Path(source).name  # the file's own name, so that readers see its suffix
            error = note = ""
            try:
                local.write_bytes(bytes(data))
                note = (upscale_file(self.upscaler, local, target, self.max_pixels, None, self.quality,
                                     overwrite=self.overwrite) or "").replace(str(local), source)
            except Exception as failure:  # noqa: BLE001 - one file's failure is reported, the batch goes on
                error = describe_failure(local, failure, target).replace(str(local), source)
            finally:
                local.unlink(missing_ok=True)
            for key, value in (("source", source), ("target", str(target)), ("error", error), ("note", note),
                               ("gpus", self.gpu_ids)):
                rows[key].append(value)
        return rows

    def __del__(self) -> None:
        shutil.rmtree(getattr(self, "scratch", ""), ignore_errors=True)


def _cluster(ray: Any, address: str | None) -> bool:
    """Connect to ``address`` (None: $RAY_ADDRESS, else a new local cluster) unless connected; whether this
    call started the connection (and so ends it)."""
    if ray.is_initialized():
        return False
    try:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False, include_dashboard=False,
                 configure_logging=True)
    except (ConnectionError, ValueError, RuntimeError) as error:
        raise RayJobError(f"cannot connect to the Ray cluster at {address or 'the default address'}: {error}") from None
    return True


def run_ray_job(batch: RayBatch, factory: UpscalerFactory, *, address: str | None = None, actors: int = 1,
                gpus_per_actor: float = 0.0, threads: int | None = None, max_pixels: int | None = DEFAULT_MAX_PIXELS,
                quality: int | None = None, on_result: Callable[[str, str, str], None] | None = None) -> RayResult:
    """Upscale every chosen file on a pool of ``actors`` actors (JPEG/WebP at ``quality``, None: the default);
    ``on_result(source, error, note)`` after each."""
    if actors < 1:
        raise RayJobError(f"--actors must be at least 1, got {actors}")
    if gpus_per_actor < 0:
        raise RayJobError(f"--gpus-per-actor must be >= 0, got {gpus_per_actor}")
    data = _import_ray()
    import ray

    result = RayResult()
    if not batch.jobs:
        return result
    started = _cluster(ray, address)
    try:
        resources = ray.cluster_resources()
        cpus, gpus = float(resources.get("CPU", 0)), float(resources.get("GPU", 0))
        if actors * gpus_per_actor > gpus:
            raise RayJobError(f"--actors {actors} x --gpus-per-actor {gpus_per_actor:g} needs {actors * gpus_per_actor:g} "
                              f"GPUs; the cluster has {gpus:g}: use fewer actors or fewer GPUs each")
        make_output_folder(batch.folder)
        dataset = data.read_binary_files([source for source, _ in batch.jobs], include_paths=True,
                                         filesystem=batch.filesystem)
        results = dataset.map_batches(
            UpscaleFiles, batch_size=1, batch_format="numpy",
            fn_constructor_kwargs={"factory": factory, "threads": threads or actor_threads(cpus, actors),
                                   "naming": batch.naming, "max_pixels": max_pixels, "quality": quality,
                                   "overwrite": batch.overwrite},
            compute=data.ActorPoolStrategy(size=actors), num_cpus=actor_cpus(cpus, actors), num_gpus=gpus_per_actor)
        for row in _rows(results):
            if row["error"]:
                result.failures.append(row["error"])
            else:
                result.written += 1
            if row["note"]:
                result.notes.append(row["note"])
            if row["gpus"]:
                result.gpu_ids.update(row["gpus"].split(","))
            if on_result is not None:
                on_result(row["source"], row["error"], row["note"])
    finally:
        if started:
            ray.shutdown()
    return result


def _rows(dataset: Any) -> Iterator[dict[str, str]]:
    """The results as they come, with Ray Data's own progress and log lines off; a failure of the job itself (not
    of one file: an actor that cannot start) as RayJobError with its last line."""
    context = dataset.context
    context.enable_progress_bars = context.print_on_execution_start = False
    quiet = logging.getLogger("ray.data")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        for row in dataset.iter_rows():
            yield {key: str(row[key]) for key in ("source", "target", "error", "note", "gpus")}
    except GldfnError:
        raise
    except Exception as error:  # noqa: BLE001 - Ray wraps what failed on the cluster in its own types
        lines = [line for line in str(error).splitlines() if line.strip()]
        raise RayJobError(f"the Ray job failed: {lines[-1] if lines else type(error).__name__}") from None
    finally:
        quiet.setLevel(level)

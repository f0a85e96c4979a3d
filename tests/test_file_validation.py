"""Issue 19: every file the project reads goes through one validation layer (gldfn_model.common.validation). A
malformed checkpoint, sidecar, manifest, models.json or image is one ``error:`` line naming the file (and the
field), exit status 1, nothing written; sizes are bounded before anything is allocated. Options that would fail
deep inside a command are refused up front. (tests/test_fuzz_files.py mutates valid files at random.)"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import pytest
import torch
from conftest import plain_text, write_smooth_images
from crafted_files import (
    checkpoint_payload,
    corrupt_zlib,
    deflate_archive,
    write_checkpoint,
    write_degrade_folder,
    write_engine_with_sidecar,
    write_png,
)
from typer.testing import CliRunner

from gldfn_model.cli import app as gldfn_app
from gldfn_model.network.checkpoint import CheckpointError, load_checkpoint
from gldfn_runtime.cli.main import app as trt_app


def invoke(app, *args):
    return CliRunner().invoke(app, [str(a) for a in args])


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


def assert_one_error(result, *fragments: str) -> None:
    """Exit 1 with an ``error:`` line holding every fragment, and no traceback."""
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    text = plain_text(result.output)
    assert "error:" in text and "Traceback" not in result.output, result.output
    for fragment in fragments:
        assert fragment in text, (fragment, text)


@pytest.fixture
def photo(tmp_path):
    return write_png(tmp_path / "photo.png")


# ---------------------------------------------------------------- checkpoints

def _save_payload(path: Path, payload: dict) -> Path:
    torch.save(payload, path)
    return path


def test_checkpoint_config_of_wrong_types_is_one_error_naming_the_field(tmp_path, photo):
    payload = checkpoint_payload(write_checkpoint(tmp_path / "good.pt"))
    payload["config"]["channels"] = "32"
    bad = _save_payload(tmp_path / "bad.pt", payload)
    before = files_under(tmp_path)
    result = invoke(gldfn_app, "upscale", "--checkpoint", bad, photo, "-o", tmp_path / "out")
    assert_one_error(result, f"{bad}: field config.channels: Input should be a valid integer")
    assert files_under(tmp_path) == before


def test_checkpoint_state_dict_of_wrong_types_is_one_error_naming_the_field(tmp_path):
    payload = checkpoint_payload(write_checkpoint(tmp_path / "good.pt"))
    payload["state_dict"]["head.weight"] = [[1.0, 2.0]]
    bad = _save_payload(tmp_path / "bad.pt", payload)
    hr = write_smooth_images(tmp_path / "hr", 1)
    result = invoke(gldfn_app, "eval", hr, "--checkpoint", bad)
    assert_one_error(result, f"{bad}: field state_dict.head.weight: Input should be an instance of Tensor")


def test_checkpoint_tensor_of_another_shape_is_named_before_any_network_is_built(tmp_path):
    payload = checkpoint_payload(write_checkpoint(tmp_path / "good.pt"))
    payload["state_dict"]["head.weight"] = torch.zeros(8, 3, 3, 3)
    with pytest.raises(CheckpointError, match=r"field state_dict\.head\.weight: shape \[8, 3, 3, 3\], where the config "
                                              r"needs \[32, 3, 3, 3\]"):
        load_checkpoint(_save_payload(tmp_path / "bad.pt", payload))


def test_a_config_claiming_a_huge_network_is_refused_before_allocating_it(tmp_path):
    """1024 channels: 311 M parameters (1.2 GB) used to be built before the shapes were compared."""
    payload = checkpoint_payload(write_checkpoint(tmp_path / "good.pt"))
    payload["config"]["channels"] = 1024
    bad = _save_payload(tmp_path / "huge.pt", payload)
    with pytest.raises(CheckpointError, match=r"field config: a network of 311 M parameters .* more than gldfn loads "
                                              r"\(64 M"):
        load_checkpoint(bad)
    # In a fresh process the peak memory stays near torch's own: nothing of the network's size was allocated.
    # The peak is the process's own VmHWM: ru_maxrss would carry over the peak of this (pytest) process, since Linux
    # keeps it across the fork and exec that start the child.
    code = ("from gldfn_model.network.checkpoint import load_checkpoint\n"
            f"try:\n    load_checkpoint({str(bad)!r})\nexcept Exception as e:\n    print(type(e).__name__)\n"
            "print(next(line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM:')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    name, peak_kib = done.stdout.split()
    assert name == "CheckpointUnusable" and int(peak_kib) < 800 * 1024, done.stdout + done.stderr


def test_a_deflate_packed_checkpoint_is_refused_before_it_unpacks(tmp_path, photo):
    """1.5 MB on disk, 256 MiB once unpacked: torch.load would inflate it; torch.save never compresses."""
    packed = deflate_archive(write_checkpoint(tmp_path / "good.pt"), tmp_path / "packed.pt", 256 << 20)
    assert packed.stat().st_size < 2 << 20
    before = files_under(tmp_path)
    result = invoke(gldfn_app, "upscale", "--checkpoint", packed, photo, "-o", tmp_path / "out")
    assert_one_error(result, f"{packed}: entry", "is compressed", "torch.save stores entries uncompressed")
    assert files_under(tmp_path) == before


def test_a_checkpoint_whose_entries_overlap_is_refused(tmp_path):
    """Zip entries pointing at the same stored bytes would multiply what a reader allocates."""
    good = write_checkpoint(tmp_path / "good.pt")
    data = bytearray(good.read_bytes())
    directory = data.rindex(b"PK\x05\x06")  # end of central directory: entry count and directory offset
    count = int.from_bytes(data[directory + 10 : directory + 12], "little")
    start = int.from_bytes(data[directory + 16 : directory + 20], "little")
    first = data[start : data.index(b"PK\x01\x02", start + 4)]  # the first central directory record
    copies = bytes(first) * 400  # its bytes again and again: 400 names for one stored region
    names = data[start:directory]
    end = bytearray(data[directory:])
    end[8:10] = end[10:12] = (count + 400).to_bytes(2, "little")
    end[12:16] = (len(names) + len(copies)).to_bytes(4, "little")
    crafted = tmp_path / "overlap.pt"
    crafted.write_bytes(bytes(data[:start]) + bytes(names) + copies + bytes(end))
    with pytest.raises(CheckpointError, match="cannot be read|overlapping entries"):
        load_checkpoint(crafted)


def test_an_archive_listing_too_many_entries_is_refused_before_its_directory_is_parsed(tmp_path):
    from gldfn_model.common.validation import check_stored_archive, zip_entry_count

    good = write_checkpoint(tmp_path / "good.pt")
    assert zip_entry_count(good) == len(zipfile.ZipFile(good).infolist())
    with pytest.raises(CheckpointError, match=r"its zip directory lists \d+ entries, more than a checkpoint has \(50\)"):
        check_stored_archive(good, 1 << 30, error=CheckpointError, what="checkpoint", max_entries=50)


# ---------------------------------------------------------------- training: options, rotation, resume

def _train(*args):
    return invoke(gldfn_app, "train", *args)


@pytest.mark.parametrize("option, value, message", [
    ("--batch", "0", "--batch 0 (must be at least 1)"),
    ("--lr", "nan", "--lr nan (must be a finite number, 0 or more)"),
    ("--lr", "-1e-4", "--lr -0.0001 (must be a finite number, 0 or more)"),
    ("--ckpt-every", "0", "--ckpt-every 0 (must be at least 1)"),
    ("--iters", "0", "--iters 0 (must be at least 1)"),
    ("--patch", "0", "--patch 0 (must be at least 1)"),
    ("--seed", "-1", "--seed -1 (must be 0 or more)"),
])
def test_training_options_are_checked_before_anything_is_written(tmp_path, option, value, message):
    hr = write_smooth_images(tmp_path / "hr", 1)
    result = _train(hr, "-o", tmp_path / "run", "--config", "tiny", "--iters", "2", "--patch", "8", "--batch", "1",
                    option, value)
    assert_one_error(result, message)
    assert "done:" not in result.output and not (tmp_path / "run").exists()


def _options(hr, out, **kw):
    from gldfn_model.training.trainer import TrainOptions

    base = dict(data=[str(hr)], out=str(out), config="tiny", iters=4, batch=2, patch=8, ckpt_every=2, log_every=1,
                snapshot_every=1000, threads=1)
    return TrainOptions(**{**base, **kw})


def test_a_damaged_last_checkpoint_never_becomes_the_fallback(tmp_path, capsys):
    from gldfn_model.training.trainer import train

    hr = write_smooth_images(tmp_path / "hr", 3)
    run = tmp_path / "run"
    train(_options(hr, run))
    assert load_checkpoint(run / "last.prev.pt").extra["iteration"] == 2
    (run / "last.pt").write_bytes((run / "last.pt").read_bytes()[:1000])  # truncated (a full disk, a crash)
    capsys.readouterr()
    train(_options(hr, run, iters=6), resume=True)
    printed = capsys.readouterr().out
    assert f"resuming from the previous checkpoint {run / 'last.prev.pt'} (iteration 2)" in printed
    assert f"{run / 'last.pt'}: cannot be read as a checkpoint" in printed
    assert f"it is replaced, and {run / 'last.prev.pt'} is kept as the fallback" in printed
    # The first save after the resume (iteration 4) kept the loadable iteration 2 instead of the damaged file; the
    # next (6) rotated the loadable 4.
    assert load_checkpoint(run / "last.pt").extra["iteration"] == 6
    assert load_checkpoint(run / "last.prev.pt").extra["iteration"] == 4


def test_resume_says_which_checkpoint_it_used(tmp_path, capsys):
    from gldfn_model.training.trainer import train

    hr = write_smooth_images(tmp_path / "hr", 3)
    train(_options(hr, tmp_path / "run", iters=2))
    capsys.readouterr()
    train(_options(hr, tmp_path / "run", iters=4), resume=True)
    assert f"resuming from the checkpoint {tmp_path / 'run' / 'last.pt'} (iteration 2)" in capsys.readouterr().out


@pytest.mark.parametrize("damage, field", [
    (lambda p: p["optimizer"]["state"][0].update(exp_avg=torch.zeros(5)), "field optimizer.state[0].exp_avg: shape [5]"),
    (lambda p: p["optimizer"]["param_groups"][0].update(lr="fast"), "field optimizer.param_groups[0].lr"),
    (lambda p: p["rng"].update(numpy={"bit_generator": "PCG64"}), "field rng: not a generator state"),
    (lambda p: p["rng"].update(python=(3, (1, 2))), "field rng: not a generator state"),
    (lambda p: p["options"].update(noise=15), "field options.noise"),
    (lambda p: p.update(iteration="2"), "field iteration: Input should be a valid integer"),
])
def test_resume_passes_over_a_checkpoint_whose_training_state_does_not_fit(tmp_path, capsys, damage, field):
    from gldfn_model.training.trainer import train

    hr = write_smooth_images(tmp_path / "hr", 3)
    run = tmp_path / "run"
    train(_options(hr, run))
    payload = checkpoint_payload(run / "last.pt")
    damage(payload)
    torch.save(payload, run / "last.pt")
    capsys.readouterr()
    train(_options(hr, run, iters=6), resume=True)
    printed = capsys.readouterr().out
    assert field in printed and "resuming from the previous checkpoint" in printed
    (run / "last.prev.pt").unlink()
    torch.save(payload, run / "last.pt")
    result = _train(hr, "-o", run, "--resume", "--iters", "8", "--patch", "8", "--batch", "2", "--threads", "1")
    assert_one_error(result, "no usable checkpoint", field)


# ---------------------------------------------------------------- engine sidecars

@pytest.fixture
def engine(tmp_path):
    return write_engine_with_sidecar(tmp_path)


def _rewrite_sidecar(engine: Path, change) -> Path:
    path = Path(f"{engine}.json")
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))
    return path


def test_a_valid_sidecar_is_read(engine):
    result = invoke(trt_app, "inspect", engine)
    assert result.exit_code == 0, result.output
    assert "profile:       lr batch 1: min 8x8, opt 32x48, max 64x64" in result.output


@pytest.mark.parametrize("change, field", [
    (lambda d: d["profile"].update(min=["8", 8]), "field profile.min[0]: Input should be a valid integer"),
    (lambda d: d.update(layers={"name": "x"}), "field layers: Input should be a valid array"),
    (lambda d: d["onnx"].update(scale=None), "field onnx.scale: Input should be a valid integer"),
    (lambda d: d.update(engine_bytes="4096"), "field engine_bytes: Input should be a valid integer"),
    (lambda d: d["tensorrt"].update(flavour=7), "field tensorrt.flavour"),
    (lambda d: d.update(extra_field=1), "field extra_field: Extra inputs are not permitted"),
])
def test_a_sidecar_field_of_the_wrong_type_is_named(engine, tmp_path, change, field):
    path = _rewrite_sidecar(engine, change)
    result = invoke(trt_app, "inspect", engine)
    assert_one_error(result, f"{path}: {field}")
    image = write_png(tmp_path / "in.png")
    upscaled = invoke(gldfn_app, "upscale", "--engine", engine, image, "-o", tmp_path / "out", "-s", "4")
    assert_one_error(upscaled, f"{path}: {field}")
    assert not (tmp_path / "out").exists()


def test_a_deeply_nested_sidecar_is_one_error(engine):
    path = Path(f"{engine}.json")
    path.write_text('{"notes": ' + "[" * 100_000 + "]" * 100_000 + "}")
    assert_one_error(invoke(trt_app, "inspect", engine), f"{path}: not valid JSON (recursion limit exceeded")


def test_a_100_mb_sidecar_is_refused_unread(engine):
    path = Path(f"{engine}.json")
    with open(path, "r+b") as fh:
        fh.truncate(100 << 20)  # sparse: its size is what counts
    assert_one_error(invoke(trt_app, "inspect", engine), f"{path}: is 100.0 MiB, more than a gldfn-trt sidecar can be")


# ---------------------------------------------------------------- degrade manifests and models.json

@pytest.mark.parametrize("change, field", [
    (lambda m: m["images"][0].update(variant="zero"), "field images[0].variant: Input should be a valid integer"),
    (lambda m: m.update(scale="4"), "field scale: Input should be 2, 3 or 4"),
    (lambda m: m["images"][0].update(hr="../../etc/passwd"), "field images[0].hr: String should match pattern"),
    (lambda m: m.update(images={"a": 1}), "field images: Input should be a valid array"),
])
def test_a_manifest_field_of_the_wrong_type_is_named(tmp_path, change, field):
    hr, lr = write_degrade_folder(tmp_path)
    manifest = json.loads((lr / "manifest.json").read_text())
    change(manifest)
    (lr / "manifest.json").write_text(json.dumps(manifest))
    result = invoke(gldfn_app, "eval", hr, "--lr-dir", lr)
    assert_one_error(result, f"{lr / 'manifest.json'}: {field}")


@pytest.fixture
def models_folder(tmp_path, monkeypatch):
    """A copy of the shipped models.json (its weights linked) that the registry reads instead of the package's."""
    from gldfn_model.network import registry

    folder = tmp_path / "weights"
    folder.mkdir()
    shipped = registry.weights_dir()
    for path in shipped.iterdir():
        if path.suffix == ".pt":
            (folder / path.name).symlink_to(path)
    (folder / "models.json").write_text((shipped / "models.json").read_text())
    monkeypatch.setattr(registry, "weights_dir", lambda: folder)
    registry.shipped_models.cache_clear()
    yield folder
    registry.shipped_models.cache_clear()


@pytest.mark.parametrize("change, field", [
    (lambda m: m["models"][0].update(training="iso"), "field models[0].training: Input should be an object"),
    (lambda m: m["models"][0]["set5"].update(gaussian8=35.4), "field models[0].set5.gaussian8"),
    (lambda m: m["models"][1].update(file="../../x.pt"), "field models[1].file: String should match pattern"),
    (lambda m: m["models"][0].update(scale=5), "field models[0].scale: Input should be 2, 3 or 4"),
])
def test_a_models_json_field_of_the_wrong_type_is_named(models_folder, change, field):
    manifest = json.loads((models_folder / "models.json").read_text())
    change(manifest)
    (models_folder / "models.json").write_text(json.dumps(manifest))
    assert_one_error(invoke(gldfn_app, "models"), f"{models_folder / 'models.json'}: {field}")


# ---------------------------------------------------------------- images given to eval, degrade, train, calibrate

def _bad_pngs(folder: Path) -> dict[str, Path]:
    folder.mkdir()
    compressed_text = zlib.compress(b"a" * (200 << 20))  # 200 MB once inflated, 200 kB here
    return {
        "16-bit, corrupt zlib": write_png(folder / "a.png", depth=16, idat=corrupt_zlib(zlib.compress(bytes(20 * 145)))),
        "8-bit, corrupt zlib": write_png(folder / "b.png", idat=corrupt_zlib(zlib.compress(bytes(20 * 73)))),
        "200 MB zTXt": write_png(folder / "c.png", extra=[(b"zTXt", b"Comment\x00\x00" + compressed_text)]),
        "200 MB iCCP": write_png(folder / "d.png", extra=[(b"iCCP", b"icc\x00\x00" + compressed_text)]),
    }


@pytest.fixture(scope="module")
def bad_pngs(tmp_path_factory):
    return _bad_pngs(tmp_path_factory.mktemp("bad") / "png")


def _alone(image: Path, folder: Path) -> Path:
    folder.mkdir()
    (folder / image.name).write_bytes(image.read_bytes())
    return folder


@pytest.mark.parametrize("kind", ["16-bit, corrupt zlib", "8-bit, corrupt zlib", "200 MB zTXt", "200 MB iCCP"])
@pytest.mark.parametrize("command", ["eval", "degrade", "train"])
def test_a_damaged_png_is_one_error_naming_it(tmp_path, bad_pngs, kind, command):
    folder = _alone(bad_pngs[kind], tmp_path / "hr")
    args = {"eval": ["eval", folder],
            "degrade": ["degrade", folder, "-o", tmp_path / "lr"],
            "train": ["train", folder, "-o", tmp_path / "run", "--iters", "1", "--patch", "8", "--batch", "1"]}[command]
    result = invoke(gldfn_app, *args)
    assert_one_error(result, f"{folder / bad_pngs[kind].name}: not a readable")
    assert {p for p in files_under(tmp_path)} == {folder / bad_pngs[kind].name}


@pytest.mark.parametrize("kind", ["16-bit, corrupt zlib", "200 MB zTXt"])
def test_a_damaged_png_given_to_calibrate_is_one_error(tmp_path, bad_pngs, tiny_onnx, kind):
    from gldfn_calibration.cli import app as calibrate_app

    folder = _alone(bad_pngs[kind], tmp_path / "images")
    result = invoke(calibrate_app, tiny_onnx["fp32"], "--images", folder, "-o", tmp_path / "int8.onnx", "--no-eval",
                    "--no-engine-check", "--samples", "1", "--patch", "16")
    assert_one_error(result, f"{folder / bad_pngs[kind].name}: not a readable")
    assert not (tmp_path / "int8.onnx").exists()


@pytest.mark.slow
def test_a_png_with_a_200_mb_text_chunk_is_one_error(tmp_path):
    (tmp_path / "hr").mkdir()
    image = write_png(tmp_path / "hr" / "text.png", extra=[(b"tEXt", b"Comment\x00" + b"a" * (200 << 20))])
    result = invoke(gldfn_app, "degrade", image.parent, "-o", tmp_path / "lr")
    assert_one_error(result, f"{image}: not a readable image")


def test_upscale_reports_the_same_damaged_png_as_a_read_error(tmp_path, bad_pngs):
    """upscale's batch survived these before through its catch-all ("unexpected ValueError"); it now gets the
    reader's own message, like every other command."""
    folder = tmp_path / "in"
    folder.mkdir()
    for path in bad_pngs.values():
        (folder / path.name).write_bytes(path.read_bytes())
    result = invoke(gldfn_app, "upscale", folder, "-o", tmp_path / "out")
    assert result.exit_code == 1 and "unexpected" not in result.output
    assert plain_text(result.output).count("not a readable") == len(bad_pngs)


# ---------------------------------------------------------------- bench sizes, engines without a scale

def test_bench_refuses_a_size_that_cannot_fit_memory_before_building_anything(tmp_path):
    result = invoke(gldfn_app, "bench", "--sizes", "100000x100000", "--random-weights")
    assert_one_error(result, "--sizes 100000x100000: a batch of 1 at that LR size needs about", "GiB are available")
    assert "measuring" not in result.output


def _plain_onnx(path: Path) -> Path:
    """A valid ONNX model (a nearest x2 resize) without the project's metadata."""
    import onnx
    from onnx import TensorProto, helper

    scales = helper.make_tensor("scales", TensorProto.FLOAT, [4], [1, 1, 2, 2])
    graph = helper.make_graph([helper.make_node("Resize", ["lr", "", "scales"], ["sr"], mode="nearest")], "plain",
                              [helper.make_tensor_value_info("lr", TensorProto.FLOAT, [1, 3, "h", "w"])],
                              [helper.make_tensor_value_info("sr", TensorProto.FLOAT, [1, 3, "H", "W"])], [scales])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)
    return path


def test_build_refuses_an_onnx_file_without_a_scale(tmp_path):
    pytest.importorskip("tensorrt_rtx", reason="tensorrt-rtx is not installed (pip install -e '.[rtx]')")
    model = _plain_onnx(tmp_path / "plain.onnx")
    result = invoke(trt_app, "build", model, "--backend", "tensorrt-rtx", "--no-plugin", "-o", tmp_path / "p.engine",
                    "--cache-dir", tmp_path / "cache")
    assert_one_error(result, f"{model} has no gldfn.scale metadata", "export the model with gldfn-export")
    assert sorted(os.listdir(tmp_path)) == ["plain.onnx"]


def test_build_refuses_an_output_that_is_a_folder(tmp_path, tiny_onnx):
    folder = tmp_path / "engines"
    folder.mkdir()
    result = invoke(trt_app, "build", tiny_onnx["fp32"], "--backend", "tensorrt-rtx", "--no-plugin", "-o", folder,
                    "--cache-dir", tmp_path / "cache")
    assert_one_error(result, f"-o {folder} is a folder; name the engine file")
    assert os.listdir(folder) == [] and not (tmp_path / "cache").exists()

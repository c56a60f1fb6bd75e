"""``hsbench predict``: inputs in their on-disk layouts, band checks, tiling, the rasters it writes, run lookup,
and end to end after ``hsbench run``."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from conftest import make_tiny_dataset
from PIL import Image
from spectral.io import envi
from sqlalchemy import insert

from hsbench.cli import main
from hsbench.data.dataset import Sample
from hsbench.errors import DataError, UnknownNameError
from hsbench.predict import apply_model, file_inputs, predict_image, predict_tiled, resolve_run, tile_windows
from hsbench.predict.outputs import write_envi_classification, write_label_png
from hsbench.saved_model import ModelState, save_model

CARD = make_tiny_dataset().card  # 6 bands at 450..900 nm, 4 classes, ignore 255, pseudo-RGB (5, 3, 0)
WAVELENGTHS = CARD.wavelengths_nm


def _cube(bands: int = 6, height: int = 20, width: int = 28, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.0, 1.0, size=(bands, height, width)).astype(np.float32)


def _by_first_band(sample: Sample) -> np.ndarray:
    """A fake per-pixel model: class from the first band's value (0..3)."""
    return np.clip((np.asarray(sample.cube[0]) * 4).astype(np.int64), 0, 3)


def _write_envi(path: Path, cube: np.ndarray, *, interleave: str = "bil", wavelengths=WAVELENGTHS,
                scale: float | None = None, dtype: str = "<f4") -> Path:
    """An ENVI cube as an imaging spectrometer's software writes it: a text header plus raw interleaved bytes."""
    bands, lines, samples = cube.shape
    order = {"bsq": (0, 1, 2), "bil": (1, 0, 2), "bip": (1, 2, 0)}[interleave]
    stored = cube * scale if scale else cube
    (path.with_suffix(".raw")).write_bytes(np.ascontiguousarray(stored.transpose(order), dtype=dtype).tobytes())
    data_type = {"<f4": 4, "<i2": 2}[dtype]
    text = [f"ENVI\nsamples = {samples}\nlines = {lines}\nbands = {bands}\nheader offset = 0",
            f"file type = ENVI Standard\ndata type = {data_type}\ninterleave = {interleave}\nbyte order = 0"]
    if wavelengths is not None:
        text.append("wavelength units = Nanometers\nwavelength = {" + ", ".join(f"{w:.2f}" for w in wavelengths) + "}")
    if scale:
        text.append(f"reflectance scale factor = {scale}")
    path.write_text("\n".join(text) + "\n")
    return path


def _write_hs3bench_h5(path: Path, images: dict[str, np.ndarray]) -> Path:
    """The HS3-Bench layout: one group per sample with image (H, W, C) and raw labels; a metadata group."""
    with h5py.File(path, "w") as f:
        for name, cube in images.items():
            group = f.create_group(name)
            group.create_dataset("image", data=cube.transpose(1, 2, 0))
            group.create_dataset("labels", data=np.zeros(cube.shape[1:], dtype=np.uint8))
        meta = f.create_group("metadata")
        meta.create_dataset("min-val", data=np.zeros(CARD.num_bands, np.float32))
        meta.create_dataset("max-val", data=np.ones(CARD.num_bands, np.float32))
    return path


def _predict(image, tile: int = 1024, margin: int = 0) -> np.ndarray:
    return predict_image(_by_first_band, image, CARD, tile=tile, margin=margin)


# ---------------------------------------------------------------------------------------------------------- tiling
def test_tile_windows_cover_the_image_once_with_cores_and_clip_margins() -> None:
    windows = tile_windows(50, 70, 16, 5, align=4)  # tile 16, margin rounded up to 8
    covered = np.zeros((50, 70), dtype=int)
    for w in windows:
        covered[w.core_rows, w.core_cols] += 1
        assert w.rows.start % 4 == 0 and w.cols.start % 4 == 0
        assert w.rows.start == max(0, w.core_rows.start - 8) and w.rows.stop == min(50, w.core_rows.stop + 8)
    assert (covered == 1).all()
    assert len(tile_windows(50, 70, 70, 5)) == 1  # an image that fits one tile is predicted whole


def test_tiled_prediction_equals_untiled_for_a_fake_predictor() -> None:
    cube = _cube(height=45, width=61)
    sample = Sample("x", cube, np.full(cube.shape[1:], 255, dtype=np.int64))
    seen: list[tuple[int, int]] = []

    def local_mean(s: Sample) -> np.ndarray:  # a 3 x 3 neighbourhood model: context radius 1
        seen.append(s.cube.shape[1:])
        assert s.id == "x" or s.id.startswith("x@")  # windows are samples of their own
        padded = np.pad(s.cube[0], 1, mode="edge")
        mean = sum(padded[i : i + s.cube.shape[1], j : j + s.cube.shape[2]] for i in range(3) for j in range(3)) / 9
        return (mean * 4).astype(np.int64)

    whole = local_mean(sample)
    assert np.array_equal(predict_tiled(local_mean, sample, 16, 1), whole)
    assert max(h * w for h, w in seen[1:]) <= 18 * 18  # memory bounded by tile + margins
    assert not np.array_equal(predict_tiled(local_mean, sample, 16, 0), whole)  # no margin: seams differ


def test_tiled_prediction_equals_untiled_for_a_dense_in_domain_model() -> None:
    from hsbench.registry import MODELS, lookup
    from hsbench.seeding import SeedStreams
    from hsbench.strategy import RunContext, resolve_strategy

    strategy_cls, options = resolve_strategy(
        "in_domain", {"model": "pixel_mlp", "input": "raw", "model_options": {"hidden_channels": 16}})
    strategy = strategy_cls(options, RunContext(torch.device("cpu"), SeedStreams(0), Path("unused")), CARD)
    torch.manual_seed(0)
    network = lookup(MODELS, "pixel_mlp")(CARD.num_bands, CARD.num_classes, hidden_channels=16)
    with torch.no_grad():
        for p in network.parameters():
            p.normal_(0.0, 1.0)  # untrained but far from constant, so every class appears
    strategy.learner.network = network.eval()
    cube = np.random.default_rng(1).normal(size=(CARD.num_bands, 90, 130)).astype(np.float32)
    sample = Sample("x", cube, np.full(cube.shape[1:], 255, dtype=np.int64))
    whole = strategy.predict(sample)
    assert len(np.unique(whole)) > 1
    margin = strategy_cls.spatial_context(options)
    for tile in (32, 40):
        assert np.array_equal(predict_tiled(strategy.predict, sample, tile, margin, align=32), whole)


# ---------------------------------------------------------------------------------------------------------- inputs
@pytest.mark.parametrize("interleave", ["bsq", "bil", "bip"])
def test_envi_input_is_read_in_its_on_disk_layout(tmp_path, interleave) -> None:
    cube = _cube()
    (image,) = file_inputs(_write_envi(tmp_path / "scene.hdr", cube, interleave=interleave), CARD)
    assert image.id == "scene"
    assert np.array_equal(_predict(image), _by_first_band(Sample("s", cube, cube[0])))
    assert np.array_equal(_predict(image, tile=8, margin=0), _predict(image))


def test_envi_integer_cube_is_divided_by_its_reflectance_scale_factor(tmp_path) -> None:
    cube = np.round(_cube() * 10000) / 10000
    (image,) = file_inputs(_write_envi(tmp_path / "dn.hdr", cube, scale=10000.0, dtype="<i2"), CARD)
    assert image.scale == 10000.0
    assert np.array_equal(_predict(image), _by_first_band(Sample("s", cube, cube[0])))


def test_envi_data_file_is_accepted_in_place_of_its_header(tmp_path) -> None:
    _write_envi(tmp_path / "scene.hdr", _cube())
    assert file_inputs(tmp_path / "scene.raw", CARD)[0].id == "scene"


def test_hs3bench_h5_input_gives_one_image_per_group(tmp_path) -> None:
    cubes = {"set_a.mat": _cube(seed=1), "set_b.mat": _cube(seed=2, height=12)}
    images = file_inputs(_write_hs3bench_h5(tmp_path / "hsidrive_test.h5", cubes), CARD)
    assert [i.id for i in images] == ["set_a.mat", "set_b.mat"]  # metadata is not an image
    for image in images:
        expected = _by_first_band(Sample("s", cubes[image.id], cubes[image.id][0]))
        assert np.array_equal(_predict(image), expected)
        assert np.array_equal(_predict(image, tile=5), expected)


def test_npy_input_is_bands_first(tmp_path) -> None:
    cube = _cube()
    np.save(tmp_path / "cube.npy", cube)
    (image,) = file_inputs(tmp_path / "cube.npy", CARD)
    assert np.array_equal(_predict(image), _by_first_band(Sample("s", cube, cube[0])))


def test_npy_in_height_width_bands_order_is_refused_naming_the_order(tmp_path) -> None:
    np.save(tmp_path / "hwc.npy", _cube().transpose(1, 2, 0))
    with pytest.raises(DataError, match=r"looks like \(height, width, bands\).*\(bands, height, width\)"):
        file_inputs(tmp_path / "hwc.npy", CARD)


def test_two_dimensional_npy_is_refused(tmp_path) -> None:
    np.save(tmp_path / "flat.npy", _cube()[0])
    with pytest.raises(DataError, match=r"shape \(20, 28\).*\(bands, height, width\)"):
        file_inputs(tmp_path / "flat.npy", CARD)


@pytest.mark.parametrize("kind", ["envi", "h5", "npy"])
def test_wrong_band_count_is_one_line_naming_both_counts(tmp_path, kind) -> None:
    cube = _cube(bands=9)
    if kind == "envi":
        path = _write_envi(tmp_path / "nine.hdr", cube, wavelengths=None)
    elif kind == "h5":
        path = _write_hs3bench_h5(tmp_path / "nine.h5", {"a": cube})
    else:
        path = tmp_path / "nine.npy"
        np.save(path, cube)
    with pytest.raises(DataError) as info:
        file_inputs(path, CARD)
    message = str(info.value)
    assert "9 bands" in message and "6 bands" in message and "\n" not in message


def test_wrong_wavelengths_are_one_line(tmp_path) -> None:
    shifted = [w + 20.0 for w in WAVELENGTHS]
    with pytest.raises(DataError, match="band 0 is at 470 nm.*450 nm") as info:
        file_inputs(_write_envi(tmp_path / "shifted.hdr", _cube(), wavelengths=shifted), CARD)
    assert "\n" not in str(info.value)


def test_nan_in_a_cube_is_an_error_not_a_prediction(tmp_path) -> None:
    cube = _cube()
    cube[2, 5, 7] = np.nan
    np.save(tmp_path / "holes.npy", cube)
    (image,) = file_inputs(tmp_path / "holes.npy", CARD)
    with pytest.raises(DataError, match=r"holes\.npy.*NaN or infinite"):
        apply_model(_by_first_band, [image], CARD, tmp_path / "out", tile=8, progress=False)
    assert not list((tmp_path / "out").iterdir())


def test_progress_bars_show_images_and_tiles_unless_hidden(tmp_path, capsys) -> None:
    np.save(tmp_path / "cube.npy", _cube())
    (image,) = file_inputs(tmp_path / "cube.npy", CARD)
    apply_model(_by_first_band, [image], CARD, tmp_path / "shown", tile=8, progress=True)
    err = capsys.readouterr().err
    assert "images" in err and "tiles of cube" in err
    apply_model(_by_first_band, [image], CARD, tmp_path / "hidden", tile=8, progress=False)
    assert capsys.readouterr().err == ""


def test_unknown_file_type_names_the_readable_ones(tmp_path) -> None:
    (tmp_path / "cube.tif").write_bytes(b"II*\x00")
    with pytest.raises(DataError, match=r"\.hdr \(ENVI\).*\.npy"):
        file_inputs(tmp_path / "cube.tif", CARD)


# --------------------------------------------------------------------------------------------------------- outputs
def test_envi_classification_parses_back_with_spectral(tmp_path) -> None:
    labels = np.random.default_rng(0).integers(0, CARD.num_classes, size=(13, 17))
    write_envi_classification(tmp_path / "pred.hdr", labels, CARD)
    image = envi.open(str(tmp_path / "pred.hdr"))
    header = image.metadata
    assert header["file type"] == "ENVI Classification" and header["interleave"] == "bsq"
    assert int(header["classes"]) == CARD.num_classes and int(header["data type"]) in (1, 2)
    assert header["class names"] == list(CARD.class_names)
    assert [int(v) for v in header["class lookup"]] == [c for colour in CARD.palette for c in colour]
    assert np.array_equal(np.asarray(image.load())[..., 0], labels)


def test_palette_png_round_trips_to_the_labels(tmp_path) -> None:
    labels = np.random.default_rng(0).integers(0, CARD.num_classes, size=(13, 17))
    write_label_png(tmp_path / "pred.png", labels, CARD)
    with Image.open(tmp_path / "pred.png") as image:
        assert image.mode == "P"
        assert np.array_equal(np.asarray(image), labels)
        palette = np.asarray(image.getpalette()[: 3 * CARD.num_classes]).reshape(-1, 3)
    assert np.array_equal(palette, np.asarray(CARD.palette))


def test_outputs_of_a_sample_id_that_is_a_path_stay_inside_out(tmp_path) -> None:
    cube = _cube()
    np.save(tmp_path / "cube.npy", cube)
    (image,) = file_inputs(tmp_path / "cube.npy", CARD)
    image = type(image)("../../escape", image.source, image.open)
    out = tmp_path / "deep" / "out"
    (written,) = apply_model(_by_first_band, [image], CARD, out, progress=False)
    for name in written["files"].values():
        assert (out / name).resolve().is_relative_to(out.resolve())
    assert not list(tmp_path.glob("escape*")) and not list((tmp_path / "deep").glob("escape*"))
    assert json.loads((out / "predict.json").read_text())["images"][0]["id"] == "../../escape"


# ----------------------------------------------------------------------------------------------------- run lookup
def _stored_run(results: Path, run_id: str, *, status: str = "completed", model: bool = True) -> Path:
    from hsbench.store import ResultsStore, runs_table

    run_dir = results / "runs" / run_id
    run_dir.mkdir(parents=True)
    if model:
        save_model(run_dir, ModelState(), strategy="in_domain", label="in_domain/unet", options={}, card=CARD, seed=0)
    store = ResultsStore(results / "hsbench.db")
    row = {"run_id": run_id, "status": status, "dataset": "tiny", "dataset_fingerprint": "f", "dataset_version": "1",
           "split": "fraction=0.1", "strategy": "in_domain", "strategy_label": "in_domain/unet", "seed": 0,
           "config": {}, "run_dir": str(run_dir.resolve())}
    with store.engine.begin() as conn:
        conn.execute(insert(runs_table).values(**row))
    return run_dir


def test_run_is_found_by_id_prefix_or_folder(tmp_path) -> None:
    run_dir = _stored_run(tmp_path, "abc123def")
    _stored_run(tmp_path, "abd999000")
    assert resolve_run("abc123def", results=tmp_path) == run_dir.resolve()
    assert resolve_run("abc1", results=tmp_path) == run_dir.resolve()
    assert resolve_run(str(run_dir), results=tmp_path / "elsewhere") == run_dir


def test_unknown_and_ambiguous_run_ids_are_one_line(tmp_path) -> None:
    _stored_run(tmp_path, "abc123def")
    _stored_run(tmp_path, "abd999000")
    with pytest.raises(UnknownNameError, match="matches 2 runs.*abc123def, abd999000"):
        resolve_run("ab", results=tmp_path)
    with pytest.raises(UnknownNameError, match="no run 'abc123deg'.*did you mean 'abc123def'"):
        resolve_run("abc123deg", results=tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        resolve_run("nothing", results=tmp_path / "no_results")


def test_run_without_a_model_or_not_completed_is_refused(tmp_path) -> None:
    _stored_run(tmp_path, "nomodel1", model=False)
    _stored_run(tmp_path, "failed01", status="failed")
    with pytest.raises(DataError, match="no saved model.*--no-save-model"):
        resolve_run("nomodel1", results=tmp_path)
    with pytest.raises(DataError, match="failed01 is failed"):
        resolve_run("failed01", results=tmp_path)


def test_predict_cli_errors_are_one_line_exit_2(tmp_path, capsys) -> None:
    np.save(tmp_path / "cube.npy", _cube())
    assert main(["predict", "--run", "nope", "--input", str(tmp_path / "cube.npy"), "--out", str(tmp_path / "o"),
                 "--results", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hsbench: error:") and "\n" not in err
    assert main(["predict", "--run", "nope", "--input", str(tmp_path / "cube.npy"), "--part", "test", "--out",
                 str(tmp_path / "o"), "--no-progress"]) == 2
    assert "--part" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------------ end to end
@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> tuple[Path, str]:
    """One tiny in_domain run on synthetic_drive, with its model kept: (results folder, run id)."""
    results = tmp_path_factory.mktemp("predict_results")
    argv = ["run", "--strategy", "in_domain", "--dataset", "synthetic_drive", "--model", "unet", "--epochs", "1",
            "--results", str(results), "--no-progress", "--device", "cpu",
            "--cfg-options", "model_options.base_channels=4", "model_options.depth=2"]
    assert main(argv) == 0
    from hsbench.store import ResultsStore

    (run_id,) = ResultsStore(results / "hsbench.db").runs()["run_id"]
    return results, run_id


def test_predict_after_run_writes_rasters_equal_to_the_strategy(tmp_path, trained_run, capsys) -> None:
    from hsbench.data.dataset_spec import open_dataset
    from hsbench.saved_model import load_run_model

    results, run_id = trained_run
    dataset = open_dataset("synthetic_drive")
    cube = dataset.load(dataset.sample_ids[0]).cube
    _write_envi(tmp_path / "drive.hdr", cube, wavelengths=dataset.card.wavelengths_nm)
    out = tmp_path / "out"
    assert main(["predict", "--run", run_id[:8], "--input", str(tmp_path / "drive.hdr"), "--out", str(out),
                 "--results", str(results), "--device", "cpu", "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert "Predicted 1 image" in captured.out and "tile" not in captured.err  # --no-progress: no bars
    strategy, stored = load_run_model(results / "runs" / run_id)
    expected = strategy.predict(Sample("drive", cube, np.full(cube.shape[1:], 255, dtype=np.int64)))
    assert np.array_equal(np.load(out / "drive.npy"), expected)
    assert np.array_equal(np.asarray(envi.open(str(out / "drive.hdr")).load())[..., 0], expected)
    with Image.open(out / "drive.png") as png:
        assert np.array_equal(np.asarray(png), expected)
    assert (out / "panels" / "drive.png").is_file()
    assert json.loads((out / "predict.json").read_text())["run_id"] == run_id


def test_predict_a_dataset_split_writes_one_raster_per_test_image(tmp_path, trained_run) -> None:
    from hsbench.data.dataset_spec import open_dataset
    from hsbench.splits import make_split
    from hsbench.strategy import default_guard

    results, run_id = trained_run
    out = tmp_path / "split"
    assert main(["predict", "--run", run_id, "--dataset", "synthetic_drive", "--split", "fraction=0.1", "--part",
                 "test", "--out", str(out), "--results", str(results), "--device", "cpu", "--no-progress"]) == 0
    test_ids = make_split(open_dataset("synthetic_drive"), "fraction=0.1", 0, guard=default_guard()).parts["test"]
    assert sorted(p.stem for p in out.glob("*.npy")) == sorted(test_ids)
    assert len(list(out.glob("*.hdr"))) == len(list(out.glob("*.png"))) == len(test_ids)
    own = tmp_path / "own_split"  # without --split and --part: the run's own split, its test part
    assert main(["predict", "--run", run_id, "--dataset", "synthetic_drive", "--out", str(own), "--results",
                 str(results), "--device", "cpu", "--no-progress"]) == 0
    assert sorted(p.name for p in own.glob("*.npy")) == sorted(p.name for p in out.glob("*.npy"))


def test_predict_refuses_a_cube_with_other_bands_in_one_line(tmp_path, trained_run, capsys) -> None:
    results, run_id = trained_run
    np.save(tmp_path / "six.npy", _cube())
    assert main(["predict", "--run", run_id, "--input", str(tmp_path / "six.npy"), "--out", str(tmp_path / "out"),
                 "--results", str(results), "--device", "cpu", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert "6 bands" in err and "25 bands" in err and "\n" not in err
    assert not (tmp_path / "out").exists()

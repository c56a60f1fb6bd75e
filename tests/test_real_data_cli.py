"""A real dataset end to end through the CLI: no data -> clear path; files in the real layout -> prepare -> run."""

from __future__ import annotations

import numpy as np
import scipy.io

from hsbench.cli import main


def test_run_without_prepared_data_says_what_to_do(tmp_path, capsys) -> None:
    code = main(["run", "--strategy", "in_domain", "--dataset", "hsi_drive", "--data-root", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "not prepared" in err and "ipaccess.ehu.eus" in err and "hsbench prepare hsi_drive --raw" in err


def _write_indian_pines(raw) -> np.ndarray:
    """A synthetic scene in the exact Indian Pines files and keys (145 x 145 x 200, 16 classes, 0 = unlabelled)."""
    rng = np.random.default_rng(0)
    gt = np.kron(rng.integers(0, 17, size=(15, 15)), np.ones((10, 10), dtype=np.int64))[:145, :145].astype(np.uint8)
    signatures = rng.uniform(1000, 8000, size=(17, 200))
    cube = signatures[gt] + rng.normal(0, 50, size=(145, 145, 200))
    scipy.io.savemat(raw / "Indian_pines_corrected.mat", {"indian_pines_corrected": cube.astype(np.uint16)})
    scipy.io.savemat(raw / "Indian_pines_gt.mat", {"indian_pines_gt": gt})
    return gt


def test_prepare_then_run_a_scene_dataset(tmp_path, capsys) -> None:
    raw, root = tmp_path / "raw", tmp_path / "data"
    raw.mkdir()
    gt = _write_indian_pines(raw)
    assert main(["prepare", "indian_pines", "--raw", str(raw), "--data-root", str(root), "--no-progress"]) == 0
    assert main(["prepare", "indian_pines", "--raw", str(raw), "--data-root", str(root), "--no-progress"]) == 0
    assert "skipped" in capsys.readouterr().out  # the second prepare found everything done

    from hsbench.registry import DATASETS, lookup

    dataset = lookup(DATASETS, "indian_pines").open(data_root=root)
    sample = dataset.load(dataset.sample_ids[0])
    assert sample.cube.shape == (200, 145, 145) and sample.cube.dtype == np.float32
    np.testing.assert_array_equal(sample.labels, np.where(gt == 0, 255, gt.astype(np.int64) - 1))

    argv = ["run", "--strategy", "in_domain", "--dataset", "indian_pines", "--split", "kshot=5", "--model", "svm",
            "--data-root", str(root), "--results", str(tmp_path / "results"), "--no-progress",
            "--cfg-options", "svm_c_grid=[10]"]
    assert main(argv) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if "in_domain/svm" in line)
    assert "indian_pines | kshot=5" in row
    miou = float(row.split("|")[8].split("±")[0])
    assert miou > 50  # the classes are separable by their signatures

"""S2Former cost at its default size: pretraining throughput, fine-tuning time per epoch, prediction time.

* pretraining: tiles per second of the self-supervised step (masking, both branches, reconstruction heads,
  all loss terms, backward, AdamW) on ``synthetic_aerial`` tiles, default model and batch;
* fine-tuning: seconds per epoch (``tiles_per_epoch`` tiles, no validation) on ``synthetic_drive`` at
  ``fraction=0.05``, with DAFT (three encoder passes per step, one without gradients) and without (``no_daft``);
* prediction: seconds per 64 x 96 image (blended overlapping tiles).

    OMP_NUM_THREADS=2 python benchmarks/bench_s2former.py [--steps 20] [--threads 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from hsbench.models.s2former import S2FormerConfig
from hsbench.pretraining.s2former_ssl import S2FormerSSL, S2FormerSSLRecipe, train_ssl
from hsbench.pretraining.s2former_zoo import domain_tiles, fit_domain
from hsbench.registry import DATASETS, STRATEGIES, lookup
from hsbench.seeding import SeedStreams
from hsbench.splits import make_split
from hsbench.strategy import RunContext, SplitView


def pretraining_tiles_per_s(steps: int) -> float:
    """Self-supervised tiles per second at the default recipe (after two warm-up steps)."""
    source = lookup(DATASETS, "synthetic_aerial").open()
    recipe = S2FormerSSLRecipe(model=S2FormerConfig().to_dict())
    cfg = S2FormerConfig.from_dict(recipe.model)
    transform, valid = fit_domain(source, source.card.wavelengths_nm, cfg, fit_pixels=recipe.fit_pixels,
                                  rng=np.random.default_rng(0))
    tiles = domain_tiles(source, transform, valid, recipe.tile_size)
    model = S2FormerSSL(cfg)
    generator = torch.Generator().manual_seed(0)
    train_ssl(model, tiles, recipe, steps=2, lr=recipe.lr, generator=generator, device=torch.device("cpu"))
    facts = train_ssl(model, tiles, recipe, steps=steps, lr=recipe.lr, generator=generator, device=torch.device("cpu"))
    return float(facts["tiles_per_s"])


def finetuning(no_daft: bool) -> tuple[float, float]:
    """Seconds per training epoch and per predicted image on synthetic_drive at 5 % labels."""
    dataset = lookup(DATASETS, "synthetic_drive").open()
    parts = make_split(dataset, "fraction=0.05", 0).parts
    train, val = SplitView(dataset, parts["train"], "train"), SplitView(dataset, parts["val"], "val")
    cls = lookup(STRATEGIES, "s2former")
    ctx = RunContext(device=torch.device("cpu"), seeds=SeedStreams(0), work_dir=Path(tempfile.mkdtemp()),
                     progress=False)
    # Weights do not change the cost, so skip pretraining; 3 epochs with one validation at the end.
    options = {**cls.defaults, "no_pretrain": True, "no_daft": no_daft, "epochs": 3, "eval_every": 3}
    strategy = cls(options, ctx, dataset.card)
    strategy.pretrain([train])
    facts = strategy.fit(train, val)
    sample = dataset.load(next(iter(parts["test"])))
    start = time.perf_counter()
    for _ in range(3):
        strategy.predict(sample)
    return float(facts["seconds_per_epoch"]), (time.perf_counter() - start) / 3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="pretraining steps timed")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    defaults = lookup(STRATEGIES, "s2former").defaults
    print(f"threads: {torch.get_num_threads()}; tile {defaults['tile_size']}, model {S2FormerConfig()}")
    print(f"pretraining: {pretraining_tiles_per_s(args.steps):.1f} tiles/s (batch 16)")
    for no_daft in (False, True):
        epoch_s, predict_s = finetuning(no_daft)
        label = "plain cross-entropy (no_daft)" if no_daft else "DAFT"
        print(f"fine-tuning, {label}: {epoch_s:.2f} s/epoch ({defaults['tiles_per_epoch']} tiles, "
              f"batch {defaults['batch_size']}); prediction {predict_s:.3f} s per 64 x 96 image")


if __name__ == "__main__":
    main()

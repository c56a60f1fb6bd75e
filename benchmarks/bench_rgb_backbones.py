"""Per-image inference time and peak memory of each RGB backbone at the synthetic default size, on this CPU.

Issue 5's measured target. Each backbone runs in its own subprocess, so that one model's allocations cannot
inflate another's peak: the child builds the network (random weights: time and memory do not depend on the
values), resets the kernel's peak-RSS counter (``/proc/self/clear_refs``), runs one single-image forward pass under
``torch.inference_mode`` and records the peak resident-memory growth during it (activations, workspace and one-time
buffers; the weights are reported separately; later passes reuse the allocator's cached blocks, so only the first
shows the peak), then reports the median time of ``--repeats`` passes after ``--warmup`` untimed ones.
The input is one ``synthetic_drive`` image size (64 x 96, three channels, as an adapter produces), plus the
adapters' own per-image cost on the 25-band cube.

    OMP_NUM_THREADS=1 python benchmarks/bench_rgb_backbones.py [--threads 1] [--repeats 20] [--size 64x96]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

CASES: dict[str, tuple[str, dict]] = {
    # label: (registered backbone, build options)
    "deeplabv3plus_mnv2 (width 1.0, OS 16)": ("deeplabv3plus_mnv2", {}),
    "deeplabv3plus_mnv2 (width 0.5)": ("deeplabv3plus_mnv2", {"width_mult": 0.5}),
    "dinov2 (tiny preset, patch 8)": ("dinov2", {}),
    "dinov2 (ViT-S/14 config)": ("dinov2", {"config": {"hidden_size": 384, "num_hidden_layers": 12,
                                                       "num_attention_heads": 6, "intermediate_size": 1536,
                                                       "patch_size": 14, "image_size": 518}}),
    "segformer (tiny preset)": ("segformer", {}),
    "segformer (MiT-b0 config)": ("segformer", {"config": {"hidden_sizes": [32, 64, 160, 256],
                                                           "depths": [2, 2, 2, 2],
                                                           "num_attention_heads": [1, 2, 5, 8],
                                                           "decoder_hidden_size": 256}}),
}


def _proc_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def measure_one(backbone: str, options: dict, height: int, width: int, repeats: int, warmup: int) -> dict:
    """Runs in the child process."""
    import torch

    from hsbench.models.rgb_backbones import rgb_backbone

    torch.manual_seed(0)
    network = rgb_backbone(backbone).build(9, options).eval()
    image = torch.rand(1, 3, height, width)
    params = sum(p.numel() for p in network.parameters())
    times = []
    with torch.inference_mode():
        rss_before = _proc_kib("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM (peak RSS) to the current RSS
        network(image)  # later passes reuse the allocator's cached blocks, so only the first shows the peak
        peak_growth = _proc_kib("VmHWM") - rss_before
        for _ in range(warmup):
            network(image)
        for _ in range(repeats):
            start = time.perf_counter()
            network(image)
            times.append(time.perf_counter() - start)
    times.sort()
    return {
        "parameters_m": params / 1e6,
        "weights_mib": sum(p.numel() * p.element_size() for p in network.parameters()) / 2**20,
        "median_ms": 1000 * times[len(times) // 2],
        "peak_inference_mib": peak_growth / 1024,
        "process_peak_rss_mib": _proc_kib("VmHWM") / 1024,
        "threads": torch.get_num_threads(),
    }


def adapter_costs(height: int, width: int, repeats: int) -> dict[str, float]:
    """Milliseconds per image of each fitted adapter on a synthetic_drive-sized 25-band cube (``cie`` on HyKo)."""
    import numpy as np

    from hsbench.adapters import ADAPTERS, build_adapter
    from hsbench.data.synthetic_datasets import SyntheticDrive, SyntheticHyko

    rng = np.random.default_rng(0)
    costs = {}
    for name in ADAPTERS:
        card = SyntheticHyko.card if name == "cie" else SyntheticDrive.card
        cube = rng.uniform(0, 1, size=(card.num_bands, height, width)).astype(np.float32)
        adapter = build_adapter(name, card).fit(cube.reshape(card.num_bands, -1).T)
        start = time.perf_counter()
        for _ in range(repeats):
            adapter.apply(cube)
        costs[name] = 1000 * (time.perf_counter() - start) / repeats
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="64x96", help="image size HxW (synthetic_drive default: 64x96)")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    height, width = (int(v) for v in args.size.split("x"))
    if args.child:
        import torch

        torch.set_num_threads(args.threads)
        backbone, options = json.loads(args.child)
        print(json.dumps(measure_one(backbone, options, height, width, args.repeats, args.warmup)))
        return
    print(f"| backbone ({height} x {width}, {args.threads} thread(s)) | parameters (M) | weights (MiB) | "
          "ms / image (median) | peak inference memory (MiB) | process peak RSS (MiB) |")
    print("|---|---|---|---|---|---|")
    for label, case in CASES.items():
        command = [sys.executable, __file__, "--child", json.dumps(case), "--size", args.size,
                   "--repeats", str(args.repeats), "--warmup", str(args.warmup), "--threads", str(args.threads)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"| {label} | failed: {done.stderr.strip().splitlines()[-1]} | | | | |")
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"| {label} | {r['parameters_m']:.2f} | {r['weights_mib']:.1f} | {r['median_ms']:.1f} | "
              f"{r['peak_inference_mib']:.1f} | {r['process_peak_rss_mib']:.0f} |", flush=True)
    costs = adapter_costs(height, width, args.repeats)
    print("\nAdapters, ms per image: " + ", ".join(f"{name} {ms:.2f}" for name, ms in costs.items()))


if __name__ == "__main__":
    main()

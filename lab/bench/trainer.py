"""Time the project's `train_epochs` against a bare forward+backward+step loop.

Run: ``fedureid bench trainer [--sizes 128x64 256x128] [--arch mobilenet_v2] [--images 320]``.

Both sides train the same untrained model (copies of one initialisation) on the
same synthetic images (128x64 PNGs, Market's own size, in a temporary folder),
for one epoch at batch 16, in the same process, alternating ``--repeats`` times
(best of each: other jobs on the machine slow both sides alike).

What the bare loop includes (so that the ratio measures the trainer's own
overhead and nothing else): the same DataLoader over the same dataset class with
the same training transform (decode + RandomSizedRectCrop + flip + normalise, in the
main process as ``num_workers=0``), the same SGD parameter groups, the forward pass,
the memory cross-entropy against a fixed memory (scores ``emb @ V.T / tau``),
``backward`` and ``step``. It leaves out what the trainer adds around that: the
memory update, precision, loss bookkeeping and Personalized Epoch, label checks.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import tempfile
import time
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from reid_core.config.schema import EarlyStopConfig, ImageConfig, ModelConfig, TrainConfig
from reid_core.data.images import UnlabeledImageDataset, collate_skip_none
from reid_core.data.transforms import train_transform
from lab.bench.synth_images import write_split
from reid_core.learners.buc.exemplar_memory import ExemplarMemory
from reid_core.learners.buc.trainer import seed_everything, train_epochs
from reid_core.models import ReIDNet, build_model, param_groups
from reid_core.runtime.knn import faiss_worker_init
from reid_core.runtime.precision import amp_context, loader_options, prepare_model, to_device_images


def parse_size(text: str) -> tuple[int, int]:
    """'256x128' -> (256, 128); a clear error otherwise."""
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 256x128, got {text!r}") from None
    if height < 16 or width < 8:
        raise argparse.ArgumentTypeError(f"size too small (min 16x8): {text!r}")
    return height, width


def bare_loop(model: ReIDNet, paths: Sequence[str], labels: np.ndarray, memory: torch.Tensor,
              image_cfg: ImageConfig, train_cfg: TrainConfig, lr: float, device: torch.device,
              seed: int, autocast=None) -> int:
    """One epoch of forward + memory cross-entropy + backward + step; returns images seen."""
    gen = seed_everything(seed)
    transform = train_transform(image_cfg.height, image_cfg.width, image_cfg.photometric)
    loader = DataLoader(UnlabeledImageDataset(paths, labels.tolist(), transform),
                        batch_size=image_cfg.batch_size, shuffle=True, drop_last=True,
                        num_workers=image_cfg.num_workers, collate_fn=collate_skip_none, generator=gen,
                        worker_init_fn=faiss_worker_init, **loader_options(device, image_cfg.num_workers))
    optimizer = torch.optim.SGD(param_groups(model, lr, train_cfg.backbone_lr_mult), lr=lr,
                                momentum=train_cfg.momentum, weight_decay=train_cfg.weight_decay,
                                nesterov=train_cfg.nesterov)
    prepare_model(model, device).train()
    memory = memory.to(device)
    context = autocast or contextlib.nullcontext
    seen = 0
    for images, targets, _index in loader:
        images, targets = to_device_images(images, device), targets.to(device, non_blocking=True)
        with context():
            embedding, _ = model(images)
            loss = F.cross_entropy(embedding.float() @ memory.t() / train_cfg.temperature, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        seen += len(targets)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return seen


def time_pair(model_cfg: ModelConfig, paths: Sequence[str], image_cfg: ImageConfig,
              train_cfg: TrainConfig, device: torch.device, repeats: int, seed: int = 0,
              trainer=train_epochs) -> dict[str, float]:
    """Best img/s of `trainer` (default the project's) and of the bare loop, alternating `repeats` times."""
    torch.manual_seed(seed)
    initial = build_model(model_cfg)
    labels = np.arange(len(paths), dtype=np.int64)  # round 1: every image its own cluster
    dim = initial.embed_dim_out
    fixed_memory = F.normalize(torch.randn(len(paths), dim), dim=1)
    best = {"trainer": 0.0, "bare": 0.0}
    for rep in range(repeats):
        for side in ("trainer", "bare"):
            model = copy.deepcopy(initial)
            start = time.perf_counter()
            if side == "trainer":
                memory = ExemplarMemory(len(paths), dim, train_cfg.temperature)
                memory.V.copy_(fixed_memory)
                seen = trainer(model, paths, labels, memory, lr=0.01, max_epochs=1, train_cfg=train_cfg,
                               image_cfg=image_cfg, stop_cfg=EarlyStopConfig(), device=device,
                               seed=seed + rep).images_seen
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
            else:
                seen = bare_loop(model, paths, labels, fixed_memory, image_cfg, train_cfg, 0.01, device, seed + rep,
                                 autocast=amp_context(train_cfg.amp, device))
            best[side] = max(best[side], seen / (time.perf_counter() - start))
    best["ratio"] = best["trainer"] / best["bare"]
    return best


def main(argv: Sequence[str] | None = None) -> int:
    """Print img/s of train_epochs and of the bare loop, and their ratio, per image size."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", type=parse_size, default=[(128, 64), (256, 128)],
                        help="training input sizes HxW (default 128x64 256x128)")
    parser.add_argument("--arch", default="mobilenet_v2", help="model.arch (untrained; default mobilenet_v2)")
    parser.add_argument("--embed-dim", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--images", type=int, default=320, help="training images per epoch (default 320)")
    parser.add_argument("--repeats", type=int, default=3, help="alternating runs of each side; best counts")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    model_cfg = ModelConfig(arch=args.arch, embed_dim=args.embed_dim, weights=None, device=args.device)
    train_cfg = TrainConfig(progress=False)
    with tempfile.TemporaryDirectory(prefix="bench_trainer_") as tmp:
        paths = write_split(tmp, args.images, 128, 64)
        print(f"{args.arch} untrained, batch {args.batch_size}, {args.images} images (128x64 PNG), "
              f"device {device}, torch threads {torch.get_num_threads()}, best of {args.repeats}\n")
        print("| input | trainer img/s | bare loop img/s | trainer / bare |")
        print("|---|---|---|---|")
        for height, width in args.sizes:
            image_cfg = ImageConfig(height=height, width=width, batch_size=args.batch_size, num_workers=0)
            r = time_pair(model_cfg, paths, image_cfg, train_cfg, device, args.repeats)
            print(f"| {height}x{width} | {r['trainer']:.1f} | {r['bare']:.1f} | {r['ratio']:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Train a registered VCSR model on ``shared/datasets/train`` only; seeded and resumable.

    python -m models.train --model vcsr-s-x2 --steps 6000
    python -m models.train --model vcsr-real-x2 --degradation real --init vcsr-m-x2 --amp --steps 40000 --lr 2e-4

Every ``--checkpoint-every`` steps the model, optimiser, schedule and sampler state go to
``<run-dir>/checkpoint.pt`` (written atomically), so a run stopped at any point resumes with the same
batches it would have drawn; at the end the weights are exported to ``models/weights/<name>.safetensors``.
Recipe: L1 loss, Adam, cosine learning-rate decay, random patches with flips and transposes;
``--amp`` trains with bf16 autocast.

``--degradation real`` makes each low-resolution patch with ``models.degrade`` (blur, resize, noise
and JPEG, in up to two rounds; 30 % stay clean bicubic; ``--mix soft`` adds 30 % of faithful soft
content, ``models.degrade.SoftSettings``; ``--mix jpeg`` ends every sample in a JPEG, ``JPEG_MIX``),
``--init`` starts from a bundled model's weights (a fine-tune), ``--workers N`` runs the degradations in
N processes (a resumed run then draws other, still seeded, batches), ``--time-budget S`` fixes the step
count after a short calibration so that the cosine schedule ends inside S seconds.

A degradation-aware model (``conditions`` on its config, e.g. the candidate ``vcsr-real-c-x2``) is
trained on each sample's recorded degradation (``models.degrade.Applied``: the values the service would
measure) as its condition planes; ``--init`` from a plain model widens its head with zero weights, so
training starts from exactly that model:

    python -m models.train --model vcsr-real-c-x2 --degradation real --init vcsr-real-x2 --amp --lr 1e-4 \
        --patch 48 --time-budget 3600 --run-dir models/checkpoints/vcsr-real-c-x2
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from models.arch import VCSR, Conditioned, VCSRConfig, condition_vector, deepen, widen_head
from models.data import DegradedBatches, DegradedSampler, PatchSampler, load_hr_images, load_pairs
from models.degrade import JPEG_MIX, SOFT_MIX, DegradationSettings
from models.engine import Engine, ModelInfo, resolve_device
from models.evaluate import DEFAULT_EVAL_ROOT, engine_upscaler, evaluate_degraded, evaluate_set, summarise
from models.loader import load_model, save_vcsr
from models.registry import CANDIDATES, ModelSpec, resolve

log = logging.getLogger("models.train")
DEFAULT_TRAIN_ROOT = DEFAULT_EVAL_ROOT.parent / "train"
CALIBRATION_STEPS = 200
# --mix: the real-world pipeline's distribution (``models.degrade``); "soft" adds faithful soft content;
# "jpeg" is what the JPEG specialist is routed (JPEG uploads only, less blur and noise under them).
MIXES: dict[str, DegradationSettings | None] = {"default": None, "soft": SOFT_MIX, "jpeg": JPEG_MIX}


def spec_of(name: str) -> ModelSpec:
    """A registered model or a candidate (trained and evaluated here, not served yet)."""
    return resolve(name, CANDIDATES)


def _bound(model: VCSR, jpeg_quality: int | None) -> torch.nn.Module:
    """``model`` as a plain network: a conditioned one bound to a JPEG quality and no visible noise."""
    if not model.config.conditions:
        return model
    condition = condition_vector(model.config, {"jpeg_quality": jpeg_quality, "noise": 0.0})
    return Conditioned(model, condition.to(next(model.parameters()).device))


def _validate(model: VCSR, name: str, eval_root: Path, real: bool) -> str:
    """Set5 PSNR-Y on clean inputs (and, for a real-world model, on JPEG q50 inputs)."""
    model.eval()
    info = ModelInfo(name, "VCSR", model.config.scale, 0, model.config.receptive_radius, True, True)
    device = next(model.parameters()).device
    scale, set5 = model.config.scale, eval_root / "Set5"
    upscale = engine_upscaler(Engine(_bound(model, None), info, device))
    text = f"Set5 PSNR-Y {summarise(evaluate_set(upscale, set5, scale))['psnr']:.3f} dB"
    if real:
        upscale = engine_upscaler(Engine(_bound(model, 50), info, device))
        text += f", JPEG q50 {summarise(evaluate_degraded(upscale, set5, scale, 'jpeg50'))['psnr']:.3f} dB"
    model.train()
    return text


Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]


class Batches:
    """Training batches: the checkpointed single-process sampler, or a ``DataLoader`` over workers;
    each with its condition values when the model is degradation-aware (else ``None``)."""

    def __init__(self, args: argparse.Namespace, config: VCSRConfig, start_step: int) -> None:
        roots = [args.data / "T91", args.data / "BSD200"]
        scale = config.scale
        self.config = config
        self.sampler: PatchSampler | DegradedSampler
        self.loader: Iterator[tuple[torch.Tensor, ...]] | None = None
        if args.degradation == "bicubic":
            self.sampler = PatchSampler(load_pairs(roots, scale, args.patch), scale, args.patch, args.seed)
            return
        images = load_hr_images(roots, scale, args.patch)
        settings = MIXES[args.mix]
        self.sampler = DegradedSampler(images, scale, args.patch, args.seed, settings)
        if args.workers > 0:
            dataset = DegradedBatches(images, scale, args.patch, args.batch, args.seed, start_step, config, settings)
            self.loader = iter(
                torch.utils.data.DataLoader(
                    dataset, batch_size=None, num_workers=args.workers, prefetch_factor=4, pin_memory=True
                )
            )

    def next(self, size: int) -> Batch:
        if self.loader is not None:
            lr, hr, *condition = next(self.loader)
            return lr, hr, condition[0] if condition else None
        if self.config.conditions and isinstance(self.sampler, DegradedSampler):
            return self.sampler.conditioned_batch(size, self.config)
        lr, hr = self.sampler.batch(size)
        return lr, hr, None


def _initial_weights(model: VCSR, init: str) -> None:
    """Copy a bundled model's weights (by name, or a file) into ``model``: the start of a fine-tune; a
    wider head (condition planes) or more blocks than the source start as zero contributions."""
    path = Path(init) if init.endswith(".safetensors") else spec_of(init).path
    source = load_model(path, init).module
    model.load_state_dict(deepen(widen_head(source.state_dict(), model.config), model), strict=True)
    log.info("initialised from %s", path)


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def _export(model: VCSR, out: Path, args: argparse.Namespace, steps: int) -> None:
    meta = {"name": args.model, "steps": str(steps), "seed": str(args.seed), "amp": str(args.amp)}
    if args.degradation != "bicubic":
        meta |= {"degradation": args.degradation, "init": str(args.init)}
    tmp = out.with_name(out.stem + ".tmp.safetensors")
    save_vcsr(model, tmp, meta)
    tmp.replace(out)


def _calibrated_steps(args: argparse.Namespace, step: int, rate: float, elapsed: float) -> int:
    """The step count that ends the run inside ``--time-budget`` at ``rate`` steps/s."""
    fitted = step + int(rate * max(args.time_budget - elapsed, 0.0) * 0.95)
    steps = max(step + 1, min(int(args.steps), fitted))
    log.info("time budget %.0f s at %.1f steps/s: %d steps in all", args.time_budget, rate, steps)
    return steps


def train(args: argparse.Namespace) -> Path:
    spec = spec_of(args.model)
    if spec.config is None:
        raise SystemExit(f"{args.model} is not a VCSR model this script can train")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = resolve_device(args.device)
    model = VCSR(spec.config)
    if args.init:
        _initial_weights(model, args.init)
    model.to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=args.lr)
    total = {"steps": args.steps}
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total["steps"]) / total["steps"]))
    )
    run_dir: Path = args.run_dir or Path("runs") / args.model
    run_dir.mkdir(parents=True, exist_ok=True)
    checkpoint, step = run_dir / "checkpoint.pt", 0
    restored: dict[str, Any] | None = None
    if checkpoint.exists():
        restored = torch.load(checkpoint, weights_only=False, map_location="cpu")  # our own file
        model.load_state_dict(restored["model"])
        optimiser.load_state_dict(restored["optimiser"])
        total["steps"] = restored.get("total_steps", args.steps)
        schedule.load_state_dict(restored["schedule"])
        torch.set_rng_state(restored["torch_rng"])
        step = restored["step"]
        log.info("resumed %s at step %d", checkpoint, step)
    if args.degradation == "bicubic" and spec.config.conditions:
        raise SystemExit(f"{args.model} is degradation-aware: train it with --degradation real")
    batches = Batches(args, spec.config, step)
    if restored is not None:
        batches.sampler.restore(restored["sampler"])
    return _loop(args, model, optimiser, schedule, batches, checkpoint, step, total, device)


def _loop(
    args: argparse.Namespace,
    model: VCSR,
    optimiser: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LambdaLR,
    batches: Batches,
    checkpoint: Path,
    step: int,
    total: dict[str, int],
    device: torch.device,
) -> Path:
    started, start_step, window = time.monotonic(), step, []
    warm = started
    model.train()
    stop_at = min(total["steps"], step + args.stop_after) if args.stop_after else total["steps"]
    out = args.out or spec_of(args.model).path
    while step < stop_at:
        lr, hr, condition = batches.next(args.batch)
        lr, hr = lr.to(device, non_blocking=True), hr.to(device, non_blocking=True)
        # bf16 autocast runs the convolutions ~2× faster on CPUs with AVX512-BF16 (and on tensor cores);
        # weights, optimiser state and the loss stay fp32.
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.amp):
            output = model(lr, None if condition is None else condition.to(device))
        loss = F.l1_loss(output.float(), hr)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        optimiser.step()
        schedule.step()
        step += 1
        window.append(loss.detach())
        if step == start_step + CALIBRATION_STEPS // 4:
            warm = time.monotonic()  # workers started and queues full: time the steady state from here
        if args.time_budget and step == start_step + CALIBRATION_STEPS:
            now = time.monotonic()
            rate = (CALIBRATION_STEPS - CALIBRATION_STEPS // 4) / max(now - warm, 1e-9)
            total["steps"] = _calibrated_steps(args, step, rate, now - started)
            stop_at = min(stop_at, total["steps"]) if args.stop_after else total["steps"]
        if step % args.log_every == 0:
            log.info(
                "step %d/%d loss %.5f lr %.2e %.1f steps/s", step, total["steps"],
                float(torch.stack(window).mean()), schedule.get_last_lr()[0],
                (step - start_step) / max(time.monotonic() - started, 1e-9),
            )  # fmt: skip
            window.clear()
        if step % args.checkpoint_every == 0 or step in (stop_at, total["steps"]):
            _save_checkpoint(checkpoint, {
                "model": model.state_dict(), "optimiser": optimiser.state_dict(),
                "schedule": schedule.state_dict(), "sampler": batches.sampler.state(),
                "torch_rng": torch.get_rng_state(), "step": step, "total_steps": total["steps"],
            })  # fmt: skip
            if args.export_checkpoints:
                _export(model, out, args, step)
            if args.eval_root.exists():
                log.info("step %d %s", step, _validate(model, args.model, args.eval_root, args.degradation == "real"))
    if step < total["steps"]:
        log.info("stopped at step %d of %d; run the same command again to resume", step, total["steps"])
        return checkpoint
    _export(model.eval(), out, args, total["steps"])
    log.info("wrote %s", out)
    return Path(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="registered VCSR model, e.g. vcsr-s-x2")
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--patch", type=int, default=48, help="low-resolution patch size")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--amp", action="store_true", help="bf16 autocast for the forward pass")
    parser.add_argument("--degradation", choices=["bicubic", "real"], default="bicubic")
    parser.add_argument(
        "--mix",
        choices=sorted(MIXES),
        default="default",
        help="real only: soft adds faithful soft content; jpeg: JPEG uploads only",
    )
    parser.add_argument("--init", help="start from this bundled model's weights (name or .safetensors file)")
    parser.add_argument("--workers", type=int, default=0, help="processes making degraded batches (real only)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--time-budget", type=float, help="seconds: fit the step count to this after calibrating")
    parser.add_argument("--export-checkpoints", action="store_true", help="also write the weights at each checkpoint")
    parser.add_argument("--data", type=Path, default=DEFAULT_TRAIN_ROOT)
    parser.add_argument("--eval-root", type=Path, default=DEFAULT_EVAL_ROOT)
    parser.add_argument("--run-dir", type=Path)
    parser.add_argument("--out", type=Path, help="default: the registered weights path")
    parser.add_argument("--stop-after", type=int, help="train at most this many steps in this run, then resume")
    parser.add_argument("--log-every", type=int, default=100)
    parser.add_argument("--checkpoint-every", type=int, default=1000)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    train(parser.parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())

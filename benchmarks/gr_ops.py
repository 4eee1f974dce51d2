"""Tensor ops per training step: Janus-LoRA (GR rewriter, violation meter on/off) vs plain LoRA (`seq-lora`).

On a GPU every op is a kernel launch (~5-10 µs), so the op count of the GR hooks is their launch overhead.
The step is set up as on task 1 of 2 (bases and prototypes present, GR and DML active; benchmarks/
step_overhead.py builds it), run once to warm up, then profiled once; the counts are the aten ops the
profiler records (all of them, and the ones inside the method's after_backward/after_step hooks).

    python benchmarks/gr_ops.py                        # test backbone (12 ViT-B-like sites are not needed
    python benchmarks/gr_ops.py --backbones vit        #   to count ops: the count is per site and per step)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile, record_function

sys.path.insert(0, str(Path(__file__).parent))
from step_overhead import build  # noqa: E402

from janus.runtime import autocast  # noqa: E402


def one_step(method, optimizer, task, x, y, precision: str) -> None:
    with autocast(task.device, precision):
        loss = method.loss(method(x), y, task)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    with record_function("hooks"):
        method.after_backward(task)
    optimizer.step()
    with record_function("hooks"):
        method.after_step(task)


def count_ops(name: str, backbone: str, args, device, meter: bool) -> tuple[int, int]:
    method, task, optimizer, _, size = build(name, backbone, args, device)
    if getattr(method, "rewriter", None) is not None and not meter:
        method.rewriter.meter = None
    x = torch.rand(args.batch, 3, size, size, device=device)
    y = torch.randint(args.classes, 2 * args.classes, (args.batch,), device=device)
    one_step(method, optimizer, task, x, y, args.precision)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        one_step(method, optimizer, task, x, y, args.precision)
    events = prof.events()
    ops = [e for e in events if e.name.startswith("aten::")]
    hooks = [e for e in events if e.name == "hooks"]
    in_hooks = [e for e in ops if any(h.time_range.start <= e.time_range.start <= h.time_range.end for h in hooks)]
    return len(ops), len(in_hooks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbones", default="test")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rank", type=int, default=10)
    parser.add_argument("--classes", type=int, default=20)
    parser.add_argument("--basis-fraction", type=float, default=0.3)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--oe-precision", default="float64")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    from janus.offline import entry_point_policy
    from janus.runtime import resolve_device

    entry_point_policy(argv or [])
    device = resolve_device(args.device)
    print(f"device {device}, batch {args.batch}, rank {args.rank}: aten ops in one training step")
    print(f"{'backbone':<10} {'method':<22} {'all ops':>8} {'in hooks':>9}")
    for backbone in args.backbones.split(","):
        base, _ = count_ops("seq-lora", backbone, args, device, meter=False)
        print(f"{backbone:<10} {'seq-lora':<22} {base:>8} {0:>9}")
        for meter in (True, False):
            total, hooks = count_ops("janus", backbone, args, device, meter)
            label = f"janus (meter {'on' if meter else 'off'})"
            print(f"{backbone:<10} {label:<22} {total:>8} {hooks:>9}   ratio {total / base:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Issue 12 extras on CUDA: eager vs CUDA-graph replay vs torch.compile on fixed 512² tiles."""

from __future__ import annotations

import json
import sys
import time

import torch

from models.arch import flops_per_output_pixel
from models.loader import load_model
from models.registry import resolve

out_path = sys.argv[1]
deadline = time.monotonic() + float(sys.argv[2]) if len(sys.argv) > 2 else float("inf")
dev = torch.device("cuda")
rows = []
torch.backends.cudnn.benchmark = True


def timeit(fn, n=30):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(n):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / 1e3 / n


def save():
    with open(out_path, "w") as f:
        json.dump({"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "rows": rows}, f, indent=1)


for name in ("vcsr-m-x2", "vcsr-m-x4"):
    for dtype_name, dtype in (("fp16", torch.float16), ("bf16", torch.bfloat16), ("fp32", torch.float32)):
        for batch in (8, 32):
            if time.monotonic() > deadline:
                break
            loaded = load_model(resolve(name).path, name)
            m = loaded.module.to(dev, dtype).to(memory_format=torch.channels_last).eval()
            cfg = m.config
            x = torch.rand(batch, 3, 512, 512, device=dev).to(dtype).contiguous(memory_format=torch.channels_last)
            flops = flops_per_output_pixel(cfg) * batch * 512 * 512 * cfg.scale**2
            with torch.inference_mode():
                eager = timeit(lambda m=m, x=x: m(x))
                g = torch.cuda.CUDAGraph()
                static_x = x.clone()
                s = torch.cuda.Stream()
                s.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(s):
                    for _ in range(3):
                        m(static_x)
                torch.cuda.current_stream().wait_stream(s)
                with torch.cuda.graph(g):
                    static_y = m(static_x)
                graph = timeit(g.replay)
            row = {
                "model": name,
                "dtype": dtype_name,
                "batch": batch,
                "tile": 512,
                "eager_ms": eager * 1e3,
                "graph_ms": graph * 1e3,
                "eager_mp_per_s": batch * 512 * 512 / eager / 1e6,
                "graph_mp_per_s": batch * 512 * 512 / graph / 1e6,
                "eager_tflop_per_s": flops / eager / 1e12,
                "graph_tflop_per_s": flops / graph / 1e12,
            }
            rows.append(row)
            print(row, flush=True)
            save()

# torch.compile on one configuration, if time is left
if time.monotonic() < deadline - 60:
    try:
        name = "vcsr-m-x2"
        loaded = load_model(resolve(name).path, name)
        m = loaded.module.to(dev, torch.float16).to(memory_format=torch.channels_last).eval()
        x = torch.rand(8, 3, 512, 512, device=dev).half().contiguous(memory_format=torch.channels_last)
        t0 = time.monotonic()
        cm = torch.compile(m, dynamic=False)
        with torch.inference_mode():
            cm(x)
            compile_s = time.monotonic() - t0
            t = timeit(lambda: cm(x))
        rows.append(
            {
                "model": name,
                "dtype": "fp16",
                "batch": 8,
                "tile": 512,
                "compiled_ms": t * 1e3,
                "compiled_mp_per_s": 8 * 512 * 512 / t / 1e6,
                "compile_s": compile_s,
            }
        )
        print(rows[-1], flush=True)
    except Exception as exc:  # report, don't fail the run
        rows.append({"compile_error": repr(exc)[:500]})
    save()

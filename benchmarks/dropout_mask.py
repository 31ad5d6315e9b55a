"""What the GIN's dropout costs on the CPU: ``F.dropout`` against :func:`uniform_dropout`.

One finetuning batch of 32 drug-sized molecules is about 1,100 atoms of 128 features, and the GIN
applies dropout after each of its 5 layers. This times one such call, forward only, on one
thread under the config's ``cpu_kernels`` pin (as a finetuning job runs), beside a linear layer
of the GIN's MLP (128 -> 256) for scale.

    PYTHONPATH=$PWD python benchmarks/dropout_mask.py [--rows 1100] [--calls 300] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from _common import machine, table

from mmsa.plan.config import load_config
from mmsa.runtime.kernels import pin_cpu_kernels


def per_call_ms(fn: Callable[[], object], calls: int, repeats: int) -> list[float]:
    """Milliseconds per call of ``fn``, one figure per repeat of ``calls`` calls."""
    fn()  # warm-up
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        out.append((time.perf_counter() - start) / calls * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1100)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    setting = load_config("config/default.yaml")["cpu_kernels"]
    pin_cpu_kernels(setting)  # before torch is imported
    import torch
    import torch.nn.functional as F

    from mmsa.models.gin import uniform_dropout

    torch.set_num_threads(1)
    torch.manual_seed(0)
    h, w = torch.randn(args.rows, 128), torch.randn(256, 128)
    cases = {
        "F.dropout(p=0.5)": lambda: F.dropout(h, 0.5, training=True),
        "uniform_dropout(p=0.5)": lambda: uniform_dropout(h, 0.5, training=True),
        "F.linear 128 -> 256": lambda: F.linear(h, w),
    }
    rows = []
    for name, fn in cases.items():
        ms = per_call_ms(fn, args.calls, args.repeats)
        rows.append([name, f"{statistics.median(ms):.3f}", f"{min(ms):.3f}-{max(ms):.3f}"])
    print(
        f"{args.rows} x 128 float32, one thread, cpu_kernels {setting}, {args.calls} calls x {args.repeats}"
    )
    print(machine())
    print(table(["operation", "ms per call (median)", "range"], rows))


if __name__ == "__main__":
    main()

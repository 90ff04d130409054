"""How fast a power-bound load slows down when it goes from a duty cycle to full duty.

Question behind it (docs/compute-limiter.md, "Power-bound work"): a limited PyTorch matmul loop
alone on the card runs at full clock, unlimited it is held at the power cap and runs slower.
If the card reaches the capped speed within a few tens of milliseconds of full duty, the
limiter can learn the unlimited speed with short probes. This script measures that time.

  python3 bench/gpu/power_response.py [--duty 0.3] [--period-ms 10] [--out DIR]

Phases: (1) unlimited for 3 s: steady matmul time t_full (median of the last second);
(2) for each burst length B: 2 s at the duty cycle, then B ms at full duty, recording each
matmul's GPU time (CUDA events) against its start time in the burst. Prints, per 10 ms bin
of time since the burst started, the median matmul time / t_full, and NVML's SM clock.
"""
import argparse
import ctypes
import json
import os
import statistics
import threading
import time

import torch


class Nvml:
    def __init__(self):
        self.lib = ctypes.CDLL("libnvidia-ml.so.1")
        self.lib.nvmlInit_v2()
        self.h = ctypes.c_void_p()
        self.lib.nvmlDeviceGetHandleByIndex_v2(0, ctypes.byref(self.h))

    def clock_mhz(self):
        v = ctypes.c_uint()
        self.lib.nvmlDeviceGetClockInfo(self.h, 1, ctypes.byref(v))  # NVML_CLOCK_SM
        return v.value

    def power_w(self):
        v = ctypes.c_uint()
        self.lib.nvmlDeviceGetPowerUsage(self.h, ctypes.byref(v))
        return v.value / 1000.0


class Sampler(threading.Thread):
    def __init__(self, nvml, every_s=0.005):
        super().__init__(daemon=True)
        self.nvml, self.every, self.samples, self.stop = nvml, every_s, [], False

    def run(self):
        while not self.stop:
            self.samples.append((time.monotonic(), self.nvml.clock_mhz(), self.nvml.power_w()))
            time.sleep(self.every)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duty", type=float, default=0.3)
    ap.add_argument("--period-ms", type=float, default=10.0)
    ap.add_argument("--bursts", default="20,50,100,200,400")
    ap.add_argument("--n", type=int, default=8192)
    ap.add_argument("--out", default=os.environ.get("OUT", "."))
    a = ap.parse_args()
    dev = torch.device("cuda")
    x = torch.randn(a.n, a.n, device=dev, dtype=torch.bfloat16)
    w = torch.randn(a.n, a.n, device=dev, dtype=torch.bfloat16)
    out = torch.empty_like(x)
    nvml = Nvml()
    sampler = Sampler(nvml)
    sampler.start()

    def timed(count):
        """Runs `count` matmuls back to back; returns [(host start, gpu ms)]."""
        evs = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
               for _ in range(count)]
        starts = []
        for b, e in evs:
            starts.append(time.monotonic())
            b.record()
            torch.matmul(x, w, out=out)
            e.record()
        torch.cuda.synchronize()
        return [(s, b.elapsed_time(e)) for s, (b, e) in zip(starts, evs)]

    torch.matmul(x, w, out=out)
    torch.cuda.synchronize()
    time.sleep(2.0)
    # (1) unlimited, 3 s in chunks of 8 matmuls (a sync per chunk, as the bench loop does).
    full = []
    t0 = time.monotonic()
    while time.monotonic() - t0 < 3.0:
        full += [(s - t0, ms) for s, ms in timed(8)]
    t_full = statistics.median(ms for s, ms in full if s > 2.0)
    t_first = statistics.median(ms for s, ms in full[:8])
    print(f"unlimited: first matmuls {t_first:.3f} ms, steady (last s) {t_full:.3f} ms, "
          f"ratio {t_full / t_first:.3f}", flush=True)
    # one matmul time at high clock: the duty phase runs whole matmuls
    per = t_first
    rows, raw = [], {"t_full_ms": t_full, "t_first_ms": t_first, "bursts": {}}
    for burst_ms in [float(b) for b in a.bursts.split(",")]:
        # duty phase: per period, enough matmuls for duty*period of GPU time, then sleep
        k = max(1, round(a.duty * a.period_ms / per))
        t0 = time.monotonic()
        duty_times = []
        while time.monotonic() - t0 < 2.0:
            ts = time.monotonic()
            duty_times += [ms for _, ms in timed(k)]
            rest = a.period_ms / 1e3 - (time.monotonic() - ts)
            if rest > 0:
                time.sleep(rest)
        t_duty = statistics.median(duty_times[len(duty_times) // 2:])
        # burst: back to back for burst_ms of host time (queue kept ~4 deep)
        tb = time.monotonic()
        rec = []
        while time.monotonic() - tb < burst_ms / 1e3:
            rec += [(s - tb, ms) for s, ms in timed(4)]
        raw["bursts"][str(burst_ms)] = {"t_duty_ms": t_duty, "matmuls": rec}
        # bins of 10 ms by cumulative GPU time since the burst started
        cum, bins = 0.0, {}
        for _, ms in rec:
            bins.setdefault(int(cum // 10), []).append(ms)
            cum += ms
        clocks = [(t - tb, c) for t, c, _ in sampler.samples if tb <= t <= tb + cum / 1e3]
        for b in sorted(bins):
            lo, hi = b * 10, b * 10 + 10
            cs = [c for t, c in clocks if lo / 1e3 <= t < hi / 1e3]
            rows.append((burst_ms, lo, statistics.median(bins[b]) / t_full,
                         statistics.median(cs) if cs else 0))
        print(f"burst {burst_ms:.0f} ms after {a.duty:.0%} duty: duty-phase matmul "
              f"{t_duty:.3f} ms ({t_duty / t_full:.3f} of steady full), last in burst "
              f"{rec[-1][1]:.3f} ms ({rec[-1][1] / t_full:.3f})", flush=True)
        time.sleep(0.5)
    sampler.stop = True
    with open(os.path.join(a.out, "power_response.json"), "w") as f:
        json.dump(raw, f)
    print("\n| burst ms | GPU ms into burst | matmul / steady unlimited | SM MHz |")
    print("|---|---|---|---|")
    for burst_ms, lo, ratio, clk in rows:
        print(f"| {burst_ms:.0f} | {lo}-{lo + 10} | {ratio:.3f} | {clk:.0f} |")


if __name__ == "__main__":
    main()

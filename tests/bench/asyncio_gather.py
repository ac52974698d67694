#!/usr/bin/env python3
"""aiod-bench peer: Python asyncio gathering N tasks that each sleep S seconds,
in one process (the asyncio counterpart of aiod's in-daemon spawn+gather with
S = 0, and of N concurrent sleeping tasks with S = 1).

Prints one line: "seconds T rss_start B rss_peak B bytes_per_task B".
"""
import argparse
import asyncio
import resource
import time


def rss_now():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


async def main(n, sleep):
    t0 = time.perf_counter()
    await asyncio.gather(*(asyncio.sleep(sleep) for _ in range(n)))
    return time.perf_counter() - t0


def run():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000000)
    ap.add_argument("--sleep", type=float, default=0.0)
    a = ap.parse_args()
    start = rss_now()
    secs = asyncio.run(main(a.n, a.sleep))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    per = (peak - start) // a.n if a.n else 0
    print(f"seconds {secs:.3f} rss_start {start} rss_peak {peak} bytes_per_task {per}")


if __name__ == "__main__":
    run()

#!/usr/bin/env python3
"""aiod-bench peer: Python asyncio's primitives, the same four workloads with
the same sizes as the bench plugin's prim_* functions (tests/bench/benchplug.c),
each timed inside the process with loop.time():

  queue      a producer (the main task) puts N ints into an asyncio.Queue of
             maxsize M and one consumer task gets them; from the consumer's
             creation until it has got all N. Run twice: maxsize 1 (each
             put waits for the get: a task switch per pair) and unbounded
             (maxsize 0: puts and gets seldom wait)
  lock       T tasks in a TaskGroup each take an asyncio.Lock R times, holding
             it across one sleep(0) so that the others queue for it; from the
             group's start to its end
  event      W tasks wait on one asyncio.Event; once all wait, from set()
             until the last of them has woken (it sets a second Event)
  taskgroup  a TaskGroup of G children that return at once; from entering the
             group until its end

Prints "python VERSION" and one line per workload:
"NAME seconds S count C" (NAME queue1, queue0, lock, event or taskgroup;
C: pairs, acquisitions, waiters or children).
"""
import argparse
import asyncio
import platform
import sys


async def queue_run(n, maxsize):
    loop = asyncio.get_running_loop()
    q = asyncio.Queue(maxsize)

    async def consumer():
        for i in range(n):
            v = await q.get()
            if v != i:
                raise RuntimeError(f"queue: got {v}, expected {i}")

    t0 = loop.time()
    c = asyncio.create_task(consumer())
    for i in range(n):
        await q.put(i)
    await c
    return loop.time() - t0


async def lock_run(tasks, rounds):
    loop = asyncio.get_running_loop()
    lock = asyncio.Lock()
    held = [False]
    count = [0]

    async def contender():
        for _ in range(rounds):
            async with lock:
                if held[0]:
                    raise RuntimeError("lock: two holders")
                held[0] = True
                await asyncio.sleep(0)
                held[0] = False
                count[0] += 1

    t0 = loop.time()
    async with asyncio.TaskGroup() as tg:
        for _ in range(tasks):
            tg.create_task(contender())
    secs = loop.time() - t0
    if count[0] != tasks * rounds:
        raise RuntimeError(f"lock: {count[0]} acquisitions, expected {tasks * rounds}")
    return secs


async def event_run(n):
    loop = asyncio.get_running_loop()
    ev = asyncio.Event()
    all_woke = asyncio.Event()
    woken = [0]

    async def waiter():
        await ev.wait()
        woken[0] += 1
        if woken[0] == n:
            all_woke.set()

    async with asyncio.TaskGroup() as tg:
        for _ in range(n):
            tg.create_task(waiter())
        # Until every waiter waits (one sleep(0) runs them all, in order).
        while len(ev._waiters) < n:
            await asyncio.sleep(0)
        t0 = loop.time()
        ev.set()
        await all_woke.wait()
        secs = loop.time() - t0
    return secs


async def taskgroup_run(n):
    loop = asyncio.get_running_loop()

    async def child():
        return None

    t0 = loop.time()
    async with asyncio.TaskGroup() as tg:
        for _ in range(n):
            tg.create_task(child())
    return loop.time() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--queue1-n", type=int, default=100000)
    ap.add_argument("--queue0-n", type=int, default=1000000)
    ap.add_argument("--lock-tasks", type=int, default=1000)
    ap.add_argument("--lock-rounds", type=int, default=100)
    ap.add_argument("--event-n", type=int, default=100000)
    ap.add_argument("--group-n", type=int, default=1000000)
    ap.add_argument("--only", default="queue1,queue0,lock,event,taskgroup")
    a = ap.parse_args()
    only = a.only.split(",")
    print(f"python {platform.python_version()} {sys.executable}", flush=True)
    if "queue1" in only:
        s = asyncio.run(queue_run(a.queue1_n, 1))
        print(f"queue1 seconds {s:.6f} count {a.queue1_n}", flush=True)
    if "queue0" in only:
        s = asyncio.run(queue_run(a.queue0_n, 0))
        print(f"queue0 seconds {s:.6f} count {a.queue0_n}", flush=True)
    if "lock" in only:
        s = asyncio.run(lock_run(a.lock_tasks, a.lock_rounds))
        print(f"lock seconds {s:.6f} count {a.lock_tasks * a.lock_rounds}", flush=True)
    if "event" in only:
        s = asyncio.run(event_run(a.event_n))
        print(f"event seconds {s:.6f} count {a.event_n}", flush=True)
    if "taskgroup" in only:
        s = asyncio.run(taskgroup_run(a.group_n))
        print(f"taskgroup seconds {s:.6f} count {a.group_n}", flush=True)


if __name__ == "__main__":
    main()

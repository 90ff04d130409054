#!/usr/bin/env python3
"""Idealised packing model behind docs/scheduling.md: the `uniform` request mix of
sched_bench (same distribution, Python's RNG), memory only (no cores, no slots), 100 nodes x 8
cards of 80 GiB. Prints, per seed, slices placed before the first rejection by three online
policies, as a share of what offline first-fit-decreasing packs (cards pooled).

  pooled-bf    best fit over all cards of the cluster, a pod's cards need not share a node
  node-bf      best fit over nodes: the node whose `count` tightest cards leave least room
  binpack      fullest node first (memory after the pod), then the tightest cards in it

Usage: python3 src/sched/packing_model.py [seeds]   (about a minute for 5 seeds)
"""
import random
import sys

K = 80 * 1024
NODES, PER_NODE = 100, 8
CARDS = NODES * PER_NODE


def trace(seed):
    r = random.Random(seed)
    out = []
    for _ in range(20 * CARDS):
        x = r.randrange(10)
        count = 1 if x < 7 else 2 if x < 9 else 4
        mem = 1024 * (5 + r.randrange(76))
        cores = 0 if r.randrange(10) < 3 else 10 * (1 + r.randrange(10))
        out.append((count, K if cores >= 100 else mem))
    return out


def pooled_bf(tr):
    free, placed = [K] * CARDS, 0
    for count, mem in tr:
        cand = sorted((f - mem, i) for i, f in enumerate(free) if f >= mem)
        if len(cand) < count:
            return placed
        for _, i in cand[:count]:
            free[i] -= mem
        placed += count
    return placed


def per_node(tr, key):
    free, placed = [[K] * PER_NODE for _ in range(NODES)], 0
    for count, mem in tr:
        best = None
        for n in range(NODES):
            fits = sorted(f - mem for f in free[n] if f >= mem)
            if len(fits) < count:
                continue
            k = key(free[n], fits, count, mem, n)
            if best is None or k < best[0]:
                best = (k, n)
        if best is None:
            return placed
        n = best[1]
        for _, i in sorted((f - mem, i) for i, f in enumerate(free[n]) if f >= mem)[:count]:
            free[n][i] -= mem
        placed += count
    return placed


def node_bf(tr):
    return per_node(tr, lambda fr, fits, c, m, n: (sum(fits[:c]), n))


def binpack(tr):
    return per_node(tr, lambda fr, fits, c, m, n: (-(PER_NODE * K - sum(fr) + c * m), n))


def offline_ffd(tr):
    def packs(n):
        items = sorted((m for c, m in tr[:n] for _ in range(c)), reverse=True)
        free = [K] * CARDS
        for m in items:
            for i in range(CARDS):
                if free[i] >= m:
                    free[i] -= m
                    break
            else:
                return False
        return True

    lo, hi = 0, len(tr)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if packs(mid) else (lo, mid - 1)
    return sum(c for c, _ in tr[:lo])


def main():
    seeds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    totals = {"pooled-bf": 0.0, "node-bf": 0.0, "binpack": 0.0}
    for s in range(1, seeds + 1):
        tr = trace(s)
        ref = offline_ffd(tr)
        row = {"pooled-bf": pooled_bf(tr), "node-bf": node_bf(tr), "binpack": binpack(tr)}
        print(s, ref, " ".join(f"{k} {v / ref:.3f}" for k, v in row.items()), flush=True)
        for k, v in row.items():
            totals[k] += v / ref
    print("mean", " ".join(f"{k} {v / seeds:.3f}" for k, v in totals.items()))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Shrinks a libFuzzer corpus below what `cargo fuzz cmin` keeps: a greedy set cover over the
per-input features of a merge control file, stopping at a fraction of all features.

    T=handle_datagram; mkdir -p /tmp/empty
    testbed/fuzz/target/x86_64-unknown-linux-gnu/release/$T -merge=1 -use_counters=0 \
        -merge_control_file=/tmp/ctl /tmp/empty testbed/fuzz/corpus/$T
    python3 testbed/fuzz/greedy_cover.py /tmp/ctl 0.95 > /tmp/keep   # paths of the inputs to keep

(-use_counters=0 makes the features plain edges rather than edge hit-count buckets.)
"""
import sys


def main() -> None:
    control, fraction = sys.argv[1], float(sys.argv[2])
    lines = open(control).read().split("\n")
    count = int(lines[0])
    files = lines[2 : 2 + count]
    features = {}
    for line in lines[2 + count :]:
        parts = line.split()
        if parts and parts[0] == "FT":
            features[int(parts[1])] = set(map(int, parts[2:]))
    everything = set().union(*features.values()) if features else set()
    covered, chosen = set(), []
    while len(covered) < fraction * len(everything):
        best = max(features, key=lambda i: len(features[i] - covered))
        gain = features[best] - covered
        if not gain:
            break
        covered |= gain
        chosen.append(best)
    print(f"{len(chosen)} inputs cover {len(covered)}/{len(everything)} features", file=sys.stderr)
    for i in chosen:
        print(files[i])


if __name__ == "__main__":
    main()

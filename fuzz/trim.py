#!/usr/bin/env python3
"""Shrinks fuzz/corpus/TARGET to a committed size (default at most 100 files, 200 KB),
keeping the inputs that cover the most: libFuzzer's merge records the features of every
input (-merge_control_file), then a greedy cover takes, each round, the input that adds
the most features not yet covered (large inputs weigh less). Run after a fuzzing session, with the
target built:  python3 trim.py TARGET [--files N] [--bytes N] [--src DIR] [--dst DIR]
(default: corpus/TARGET in place)."""

import argparse

import hashlib
import os
import shutil
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("target")
    ap.add_argument("--files", type=int, default=100)
    ap.add_argument("--bytes", type=int, default=200_000)
    ap.add_argument("--src")
    ap.add_argument("--dst")
    a = ap.parse_args()
    target, max_files, max_bytes = a.target, a.files, a.bytes
    binary = os.path.join(HERE, "target/x86_64-unknown-linux-gnu/release", target)
    corpus = a.src or os.path.join(HERE, "corpus", target)
    dst = a.dst or corpus
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out")
        os.mkdir(out)
        control = os.path.join(tmp, "control")
        subprocess.run(
            [binary, "-merge=1", "-merge_control_file=" + control, "-rss_limit_mb=512",
             "-malloc_limit_mb=256", "-timeout=5", out, corpus],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        lines = open(control).read().splitlines()
        n = int(lines[0])
        files = lines[2 : 2 + n]
        feats = {}
        for line in lines[2 + n :]:
            parts = line.split()
            if parts and parts[0] == "FT":
                feats[int(parts[1])] = set(parts[2:])
        covered = set()
        chosen = []
        total = 0
        sizes = {i: os.path.getsize(files[i]) for i in feats}
        while len(chosen) < max_files:
            best, score = None, 0.0
            for i, f in feats.items():
                gain = len(f - covered)
                if gain == 0 or total + sizes[i] > max_bytes:
                    continue
                s = gain / (1 + sizes[i] / 2048)
                if s > score:
                    best, score = i, s
            if best is None:
                break
            covered |= feats.pop(best)
            chosen.append(best)
            total += sizes[best]
        all_feats = set()
        for line in lines[2 + n :]:
            parts = line.split()
            if parts and parts[0] == "FT":
                all_feats |= set(parts[2:])
        keep = os.path.join(tmp, "keep")
        os.mkdir(keep)
        for i in chosen:
            data = open(files[i], "rb").read()
            name = hashlib.sha1(data).hexdigest()
            with open(os.path.join(keep, name), "wb") as f:
                f.write(data)
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(keep, dst)
        print("trim.py: %s: %d of %d inputs, %d bytes, %d of %d features"
              % (target, len(chosen), n, total, len(covered), len(all_feats)))


if __name__ == "__main__":
    main()

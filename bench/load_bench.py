#!/usr/bin/env python3
"""Loader benchmark, side by side on one file and one cache state.

fio sequential read (buffered with a warm page cache, and O_DIRECT) is the
physical limit; `residency load --method mmap-copy` is the classic path
(mmap + one-thread copy into fresh memory); `residency load` with
--device none and --device host is this project's loader. The emulated
device's memory is faulted in before the timer, as a GPU's VRAM is resident
(--lazy-device: inside it). Every row is the median of --repeat runs. Usage:

  bench/load_bench.py [--residency build/release/residency] [--size 2GiB]
                      [--dir /var/tmp] [--threads 2] [--chunk 8MiB] [--repeat 3]
"""
import argparse, json, os, statistics, subprocess, sys, tempfile

def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{p.stderr}")
    return p.stdout

def warm(path):
    with open(path, "rb") as f:
        while f.read(64 << 20):
            pass

def fio(path, size, jobs, chunk, direct):
    per_job = size // jobs
    out = run(["fio", "--name=seqread", f"--filename={path}", "--rw=read", f"--bs={chunk}",
               f"--numjobs={jobs}", f"--size={per_job}", f"--offset_increment={per_job}",
               f"--direct={1 if direct else 0}", "--invalidate=0", "--ioengine=psync",
               "--group_reporting", "--output-format=json"])
    return json.loads(out)["jobs"][0]["read"]["bw_bytes"] / 1e9

def load(residency, path, extra):
    """GB/s of the last pass (the only pass unless --repeat is in extra)."""
    out = json.loads(run([residency, "load", path, "--json"] + extra))
    return out["bytes"] / out["pass_seconds"][-1] / 1e9, out

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--residency", default="build/release/residency")
    ap.add_argument("--size", default="2GiB")
    ap.add_argument("--dir", default="/var/tmp")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--chunk", default="8MiB")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    units = {"GiB": 1 << 30, "MiB": 1 << 20}
    size = next(int(float(a.size[:-3]) * m) for u, m in units.items() if a.size.endswith(u))
    chunk_bytes = next(int(float(a.chunk[:-3]) * m) for u, m in units.items() if a.chunk.endswith(u))
    work = tempfile.mkdtemp(dir=a.dir, prefix="residency-bench-")
    trace = os.path.join(work, "bench.jsonl")
    with open(trace, "w") as f:
        f.write('{"format": "residency-trace", "version": 1, "name": "bench", "source": "synthesized", "description": "one file"}\n')
        f.write('{"type": "model", "model": "m", "files": [{"path": "bench.safetensors", "bytes": %d, "tensor_count": 300, "tensor_distribution": "skewed", "tensor_seed": 5}]}\n' % size)
    run([a.residency, "gen-model", "--trace", trace, "--model", "m", "--out", work])
    path = os.path.join(work, "bench.safetensors")
    t, c = str(a.threads), a.chunk
    rows = [
        ("fio buffered, warm cache", "warm", lambda: fio(path, size, a.threads, chunk_bytes, False)),
        ("mmap + 1-thread copy (classic), warm", "warm", lambda: load(a.residency, path, ["--method", "mmap-copy"])[0]),
        ("residency load --device none, warm", "warm", lambda: load(a.residency, path, ["--threads", t, "--chunk", c])[0]),
        ("residency load --device none --no-pin, warm", "warm", lambda: load(a.residency, path, ["--threads", t, "--chunk", c, "--no-pin"])[0]),
        ("residency load --device host, warm", "warm", lambda: load(a.residency, path, ["--threads", t, "--chunk", c, "--device", "host"])[0]),
        ("residency load --device host --lazy-device, warm", "warm", lambda: load(a.residency, path, ["--threads", t, "--chunk", c, "--device", "host", "--lazy-device"])[0]),
        ("residency load --device none, warm, steady (pass 3)", "warm", lambda: load(a.residency, path, ["--threads", t, "--chunk", c, "--repeat", "3"])[0]),
        ("residency load --device host, warm, steady (pass 3)", "warm", lambda: load(a.residency, path, ["--threads", t, "--chunk", c, "--device", "host", "--repeat", "3"])[0]),
        ("fio O_DIRECT", "any", lambda: fio(path, size, a.threads, chunk_bytes, True)),
        ("residency load --direct --device none", "any", lambda: load(a.residency, path, ["--threads", t, "--chunk", c, "--direct"])[0]),
        ("residency load --direct --device host", "any", lambda: load(a.residency, path, ["--threads", t, "--chunk", c, "--direct", "--device", "host"])[0]),
        ("residency load --direct --device none, steady (pass 3)", "any", lambda: load(a.residency, path, ["--threads", t, "--chunk", c, "--direct", "--repeat", "3"])[0]),
    ]
    print(f"file {size / 1e9:.2f} GB, {a.threads} threads/jobs, {a.chunk} requests, median of {a.repeat}")
    results = {}
    for name, state, fn in rows:
        figures = []
        for _ in range(a.repeat):
            if state == "warm":
                warm(path)
            figures.append(fn())
        results[name] = statistics.median(figures)
        print(f"  {name:48s} {results[name]:7.2f} GB/s   runs: {', '.join(f'{x:.2f}' for x in figures)}")
    warm(path)
    _, detail = load(a.residency, path, ["--threads", t, "--chunk", c, "--device", "host"])
    _, none = load(a.residency, path, ["--threads", t, "--chunk", c])
    help_rss = run(["/usr/bin/env", "bash", "-c", f"/usr/bin/time -f %M {a.residency} --help >/dev/null 2>/tmp/rss.$$; tail -1 /tmp/rss.$$; rm -f /tmp/rss.$$"]).strip()
    window = detail['staging_window_bytes']
    print(f"  peak RSS, --device none: {none['peak_rss_bytes'] / 1e9:.3f} GB; --device host: {detail['peak_rss_bytes'] / 1e9:.3f} GB; "
          f"bound file + 2 windows = {(size + 2 * window) / 1e9:.3f} GB (window {window / 1e6:.1f} MB); "
          f"process baseline (residency --help) {int(help_rss) / 1e3:.1f} MB")
    fb, fd = results["fio buffered, warm cache"], results["fio O_DIRECT"]
    mm = results['mmap + 1-thread copy (classic), warm']
    steady = results['residency load --device none, warm, steady (pass 3)']
    print(f"  steady state: none/fio-buffered {steady / fb:.2f}, none/mmap {steady / mm:.2f}, "
          f"direct-none/fio-direct {results['residency load --direct --device none, steady (pass 3)'] / fd:.2f}")
    print(f"  first pass: none/fio-buffered {results['residency load --device none, warm'] / fb:.2f}, "
          f"host/fio-buffered {results['residency load --device host, warm'] / fb:.2f}, "
          f"direct-none/fio-direct {results['residency load --direct --device none'] / fd:.2f}, "
          f"direct-host/fio-direct {results['residency load --direct --device host'] / fd:.2f}, "
          f"none/mmap {results['residency load --device none, warm'] / results['mmap + 1-thread copy (classic), warm']:.2f}, "
          f"host/mmap {results['residency load --device host, warm'] / results['mmap + 1-thread copy (classic), warm']:.2f}")
    os.remove(path)
    os.remove(trace)
    os.rmdir(work)

if __name__ == "__main__":
    main()

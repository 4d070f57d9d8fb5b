"""Benchmark: an idle local anvil's CPU use and state file against the number of blocks.

Two ways of running the node of ``repo-market chain up``, both with ``--preserve-historical-states`` (the
auditor reads balances at past blocks, also after a restart):

* ``interval``: the previous command line, ``--state-interval 2``: anvil rewrites its whole state file (every
  past block's state) every 2 s, idle or not;
* ``on demand``: today's (``chain.node.start_anvil``): no periodic dump; the state is written on exit and by
  ``chain.node.save_node_state`` when a command holding the writer lock finishes. Its cost is the time of one
  such save, paid once per command, not per interval.

For each block count (empty blocks mined with ``anvil_mine``; the chain's state is anvil's ten dev accounts),
the node sits idle for ``--window`` seconds and its CPU time is read from /proc/<pid>/stat (user + system);
the state file's size is the interval dump's (``interval``) or the on-demand save's (``on demand``).

Usage: .venv/bin/python benchmarks/bench_node.py [--blocks 0 250 500 1000] [--window 10] [--out FILE]
Writes JSON (default bench-results/bench_node.json) and prints a table.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from machine import machine  # noqa: E402  (benchmarks/machine.py)

from chain.node import (_answers, _free_port, anvil_binary, node_state_path, rpc_request,  # noqa: E402
                        save_node_state, start_anvil, stop_anvil)

INTERVAL_SECONDS = 2  # the previous command line's --state-interval
DEFAULT_BLOCKS = (0, 250, 500, 1000)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far (/proc/<pid>/stat fields 14 and 15, in clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_share(pid: int, window: float, state: Path | None = None) -> tuple[float, int]:
    """Share of one core ``pid`` used while nobody talks to it for ``window`` seconds, and the largest size
    ``state`` had meanwhile (a dump rewrites the file in place: a single look may catch it half written)."""
    before, start = cpu_seconds(pid), time.monotonic()
    largest = 0
    while time.monotonic() - start < window:
        time.sleep(0.25)
        if state is not None and state.exists():
            largest = max(largest, state.stat().st_size)
    return (cpu_seconds(pid) - before) / (time.monotonic() - start), largest


def mine_to(url: str, blocks: int) -> None:
    head = int(rpc_request(url, "eth_blockNumber"), 16)
    if blocks > head:
        rpc_request(url, "anvil_mine", [hex(blocks - head)], timeout=600)


def run_interval(blocks: list[int], window: float, work: Path) -> list[dict]:
    """The previous command line: a periodic dump of the whole state every INTERVAL_SECONDS."""
    state = work / "interval-state.json"
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([str(anvil_binary()), "--host", "127.0.0.1", "--port", str(port), "--state", str(state),
                             "--state-interval", str(INTERVAL_SECONDS), "--preserve-historical-states", "--silent"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not _answers(url):
            time.sleep(0.05)
        out = []
        for n in blocks:
            mine_to(url, n)
            time.sleep(2 * INTERVAL_SECONDS)  # let a dump of this chain land before measuring
            share, size = idle_share(proc.pid, window, state)
            out.append({"blocks": n, "idle_cpu_share": round(share, 4), "state_bytes": size,
                        "rewritten_every_s": INTERVAL_SECONDS})
            print(f"  interval  {n:>6} blocks: idle CPU {share:6.1%}, state {out[-1]['state_bytes'] / 1e6:.1f} MB",
                  flush=True)
        return out
    finally:
        proc.kill()
        proc.wait()


def run_on_demand(blocks: list[int], window: float, work: Path) -> list[dict]:
    """Today's node: no periodic dump; one save (what a finishing writer does) per block count."""
    data_dir = work / "on-demand"
    info = start_anvil(data_dir)
    try:
        out = []
        for n in blocks:
            mine_to(info.url, n)
            share, _ = idle_share(info.pid, window)
            start = time.perf_counter()
            size = save_node_state(data_dir)
            save_s = time.perf_counter() - start
            assert size == node_state_path(data_dir).stat().st_size
            out.append({"blocks": n, "idle_cpu_share": round(share, 4), "state_bytes": size,
                        "save_s": round(save_s, 3)})
            print(f"  on demand {n:>6} blocks: idle CPU {share:6.1%}, state {size / 1e6:.1f} MB, one save "
                  f"{save_s:.2f} s", flush=True)
        return out
    finally:
        stop_anvil(data_dir, save=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--blocks", type=int, nargs="+", default=list(DEFAULT_BLOCKS))
    parser.add_argument("--window", type=float, default=10.0, help="idle seconds measured per point")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "bench_node.json")
    args = parser.parse_args(argv)
    blocks = sorted(set(args.blocks))
    if blocks[0] < 0:
        parser.error(f"--blocks {blocks[0]}: must be >= 0")
    if args.window <= 0:
        parser.error(f"--window {args.window}: must be > 0")
    if not anvil_binary().is_file():
        parser.error(f"anvil not found at {anvil_binary()} (scripts/setup.sh --with-anvil or $REPO_MARKET_ANVIL)")
    version = subprocess.run([str(anvil_binary()), "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    with tempfile.TemporaryDirectory(prefix="bench-node-") as tmp:
        work = Path(tmp)
        print(f"{version}; idle window {args.window:g} s", flush=True)
        interval = run_interval(blocks, args.window, work)
        on_demand = run_on_demand(blocks, args.window, work)
    doc = {"benchmark": "node", "anvil": version, "window_s": args.window, "interval_s": INTERVAL_SECONDS,
           "interval": interval, "on_demand": on_demand,
           "machine": machine(load_average_1m=os.getloadavg()[0])}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"\n{'blocks':>7} | {'idle CPU, interval':>18} | {'state file':>10} | {'idle CPU, on demand':>19} | "
          f"{'one save':>8}")
    for a, b in zip(interval, on_demand):
        print(f"{a['blocks']:>7} | {a['idle_cpu_share']:>18.1%} | {a['state_bytes'] / 1e6:>7.1f} MB | "
              f"{b['idle_cpu_share']:>19.1%} | {b['save_s']:>6.2f} s")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The coordinator's phases of one round, the crash hook used by the resume tests, and the phase journal.

Phases follow ARCHITECTURE.md "Data flow of one round" and map one-to-one onto the contract's
``RoundPhase`` after each step: commit → Revealing (both dealers committed), report → Reported (both
revealed), compute → Computed, share_mask and share_table (the key holders' shares, inside Computed),
decrypt → Instructed, mm_leg → MmLegDone, rm_leg → RmLegDone, settle → Settled.

Crash hook [decided]: ``REPO_MARKET_CRASH_AFTER=<phase>`` (optionally ``<round>:<phase>``) makes the
coordinating process ``os._exit(CRASH_EXIT_CODE)`` right after that phase's chain transaction is mined --
no cleanup, no flushing, as a killed process.  ``REPO_MARKET_CRASH_AFTER=<phase>.blobs`` exits after the
phase has written its blobs but *before* it touched the chain (the other half-way point).  A resumed run
reads the phase from the chain and continues.
"""
from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

from protocol.layout import read_json, write_json

__all__ = ["PHASES", "CRASH_ENV", "CRASH_EXIT_CODE", "crash_point", "PhaseJournal"]

PHASES = ("commit", "report", "compute", "decrypt", "mm_leg", "rm_leg", "settle")
CRASH_ENV = "REPO_MARKET_CRASH_AFTER"
CRASH_EXIT_CODE = 86


def crash_point(round_id: int, point: str) -> None:
    """Exit abruptly if the crash hook names this point (``phase`` or ``phase.blobs``)."""
    wanted = os.environ.get(CRASH_ENV)
    if not wanted:
        return
    if ":" in wanted:
        r, _, p = wanted.partition(":")
        hit = r == str(round_id) and p == point
    else:
        hit = wanted == point
    if hit:
        sys.stderr.write(f"crash hook: exiting after round {round_id} {point}\n")
        sys.stderr.flush()
        os._exit(CRASH_EXIT_CODE)


@dataclass
class PhaseJournal:
    """Timings (s) and gas per phase of one round, kept next to the transcript.

    Not authoritative (the chain is): it only carries what the chain cannot -- wall-clock timings -- and
    survives a crash because it is rewritten atomically after every phase.
    """

    path: object
    timings: dict = field(default_factory=dict)
    gas: dict = field(default_factory=dict)

    @classmethod
    def open(cls, path) -> "PhaseJournal":
        try:
            data = read_json(path)
            return cls(path, dict(data.get("timings", {})), dict(data.get("gas", {})))
        except FileNotFoundError:
            return cls(path)

    def add(self, key: str, seconds: float, gas: int = 0) -> None:
        self.timings[key] = round(self.timings.get(key, 0.0) + seconds, 4)
        if gas:
            self.gas[key] = self.gas.get(key, 0) + int(gas)
        self.save()

    def save(self) -> None:
        write_json(self.path, {"timings": self.timings, "gas": self.gas})

    @contextmanager
    def timed(self, key: str):
        start = time.perf_counter()
        box = {"gas": 0}
        yield box
        self.add(key, time.perf_counter() - start, box["gas"])

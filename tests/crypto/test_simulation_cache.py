"""The simulation path: compiled from the structured extremes alone (same MLIR as the FHE circuit), and cached.

* the simulation's compile (``SIMULATION_SAMPLES`` random samples besides the structured extremes) gives exactly
  the MLIR that 60 random samples give, at a small grid and a larger one: same bit widths, same circuit;
* a simulator saved in the cache and loaded by another circuit object selects exactly what the compiled one
  does, on the extremes and random reports; a damaged cache file is compiled again and replaced;
* ``select --backend simulate`` twice on the same data directory: the second run loads the cached simulator,
  and both select what the plaintext reference selects.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from crypto.circuit import SelectionCircuit, build_inputset, pack_report
import crypto.circuit.compiled as compiled_module
from crypto.circuit.compiled import SIMULATOR_NAME, _compile, _LoadedSimulator
from crypto.circuit.shape import CircuitShape, circuit_cache_key
from crypto.encoding import to_hex
from market.terms import MarketTerms

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("grid", [3, 8])
def test_the_simulation_compiled_from_the_extremes_is_the_one_random_samples_give(grid, monkeypatch):
    """The FHE circuit reads tfhers inputs (its widths come from hints); the simulation traces the same rule on
    native digits, and the structured extremes alone give it exactly the MLIR that 60 random samples give."""
    shape = CircuitShape.from_terms(MarketTerms(grid=grid, base_rate=400, rate_bits=10, hurdle_bits=8))
    fast = _compile(shape, simulation=True).mlir
    monkeypatch.setattr(compiled_module, "SIMULATION_SAMPLES", 60)
    assert _compile(shape, simulation=True).mlir == fast


def _outputs(circuit, cases):
    shape = circuit.shape
    return [circuit.simulate_packed(pack_report(shape, "mm", mm[:-1], int(mm[-1])),
                                    pack_report(shape, "rm", rm[:-1], int(rm[-1]))).tolist() for mm, rm in cases]


def test_a_cached_simulator_selects_what_the_compiled_one_does(fhe_terms, tmp_path):
    compiled = SelectionCircuit.simulation_only(fhe_terms).with_simulation_cache(tmp_path)
    path = tmp_path / to_hex(circuit_cache_key(fhe_terms, compiled.shape.strategy)) / SIMULATOR_NAME
    assert path.is_file() and not isinstance(compiled._simulator, _LoadedSimulator)
    loaded = SelectionCircuit.simulation_only(fhe_terms).with_simulation_cache(tmp_path)
    assert isinstance(loaded._simulator, _LoadedSimulator)
    cases = build_inputset(compiled.shape, samples=40, seed=11)
    want = _outputs(compiled, cases)
    assert _outputs(loaded, cases) == want
    assert len({json.dumps(w) for w in want}) > 3  # the cases select different outcomes

    path.write_bytes(b"not a server")
    rebuilt = SelectionCircuit.simulation_only(fhe_terms).with_simulation_cache(tmp_path)
    assert not isinstance(rebuilt._simulator, _LoadedSimulator)
    assert _outputs(rebuilt, cases[:5]) == want[:5]
    assert isinstance(SelectionCircuit.simulation_only(fhe_terms).with_simulation_cache(tmp_path)._simulator,
                      _LoadedSimulator)


def test_select_simulate_caches_its_simulator_and_agrees_with_plain(tmp_path):
    grid = 5
    schedules = tmp_path / "s.json"
    schedules.write_text(json.dumps({"b": [400 + 2 * q for q in range(grid + 1)],
                                     "a": [420 - 2 * q for q in range(grid + 1)]}))
    # select caches where a market does: <data-dir>/cache/, unless the shared cache variable is set
    env = {k: v for k, v in os.environ.items() if k != "REPO_MARKET_CIRCUIT_CACHE"} | {"PYTHONPATH": str(ROOT)}

    def select(backend):
        out = subprocess.run([sys.executable, "-m", "protocol", "select", "--schedules", str(schedules),
                              "--backend", backend, "--hurdle-mm", "1", "--data-dir", str(tmp_path / "data"),
                              "--json"], capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
        assert out.returncode == 0, out.stderr[-2000:]
        return json.loads(out.stdout)

    plain = select("plain")["selected"]
    first = select("simulate")
    assert list((tmp_path / "data" / "cache").glob(f"*/{SIMULATOR_NAME}"))
    second = select("simulate")
    assert first["selected"] == second["selected"] == plain and plain["trade"]
    assert second["timings"]["evaluate"] < first["timings"]["evaluate"]

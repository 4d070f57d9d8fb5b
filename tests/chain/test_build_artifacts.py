"""The checked-in build JSON (chain/contracts/build/) equals a fresh compile with the pinned compiler, and the
code deployed from the source is the checked-in runtime bytecode followed by the immutables."""
from __future__ import annotations

import hashlib
import json

import pytest
from eth_abi import encode as abi_encode
from eth_utils import keccak

from chain import DEPLOYER, deploy_coordinator
from chain.artifacts import (BUILD_DIR, CONTRACT_NAMES, CONTRACTS_DIR, build_path, build_record, load_build,
                             render_build)

from .helpers import make_terms


@pytest.mark.parametrize("name", CONTRACT_NAMES)
def test_checked_in_build_equals_fresh_compile(name):
    fresh = render_build(build_record(name))
    assert build_path(name).read_bytes() == fresh, (
        f"{build_path(name)} is stale: run `python -m chain.artifacts --write` and commit it")


@pytest.mark.parametrize("name", CONTRACT_NAMES)
def test_build_names_its_source_and_compiler(name):
    build = load_build(name)
    source = (CONTRACTS_DIR / f"{name}.vy").read_bytes()
    assert build["source_sha256"] == hashlib.sha256(source).hexdigest()
    assert build["compiler"].startswith("vyper 0.4.3+commit.")
    assert build["evm_version"] == "cancun"
    assert build["runtime_bytecode"].startswith("0x") and len(build["runtime_bytecode"]) > 1000
    for signature, topic in build["event_topics"].items():
        assert topic == "0x" + keccak(text=signature).hex()


def test_every_contract_source_has_a_build():
    sources = sorted(p.stem for p in CONTRACTS_DIR.glob("*.vy"))
    assert sources == sorted(CONTRACT_NAMES)
    assert sorted(p.stem for p in BUILD_DIR.glob("*.json")) == sources


def test_deployed_code_is_checked_in_runtime_plus_immutables(chain):
    """What an auditor checks with `cast code`: runtime bytecode ‖ the 32-byte immutables in layout order."""
    build = json.loads(build_path("Coordinator").read_text())
    terms = make_terms(chain, holders=3, holder_threshold=2)
    coord = deploy_coordinator(chain, terms, DEPLOYER)
    code = bytes(chain.w3.eth.get_code(coord.address))
    runtime = bytes.fromhex(build["runtime_bytecode"][2:])
    assert code[: len(runtime)] == runtime
    layout = sorted(build["layout"]["code_layout"].items(), key=lambda kv: kv[1]["offset"])
    values = {"grid": terms.grid, "base_rate": terms.base_rate, "rate_bits": terms.rate_bits,
              "hurdle_mode": terms.hurdle_mode_code, "deposit_minimum": terms.deposit_minimum,
              "terms_digest": terms.terms_digest, "circuit_digest": terms.circuit_digest,
              "evaluation_keys_digest": terms.evaluation_keys_digest, "identities_digest": terms.identities_digest,
              "dealer_mm": terms.dealer_mm, "dealer_rm": terms.dealer_rm, "custodian": terms.custodian,
              "threshold": terms.threshold, "holder_threshold": terms.holder_threshold, **dict(zip(
                  ("report_window", "reveal_window", "compute_window", "instruct_window", "mm_leg_window",
                   "rm_leg_window", "challenge_window"), terms.windows.as_tuple()))}
    expected = b"".join(abi_encode([entry["type"]], [values[name]]) for name, entry in layout)
    assert [name for name, _ in layout] == list(values)  # every immutable accounted for, in order
    assert code[len(runtime):] == expected
    assert coord.code_matches_source()


def test_the_python_immutables_list_is_the_compilers_code_layout():
    """chain.coordinator.IMMUTABLES (what code identity compares word by word) is Vyper's own layout."""
    from chain.coordinator import IMMUTABLES

    layout = sorted(load_build("Coordinator")["layout"]["code_layout"].items(), key=lambda kv: kv[1]["offset"])
    assert [(name, entry["type"]) for name, entry in layout] == list(IMMUTABLES)
    assert [entry["offset"] for _, entry in layout] == [32 * i for i in range(len(IMMUTABLES))]

"""Every external of the contracts carries NatSpec: @notice, @param for each parameter, @return when it
returns. Read from the compiler's own devdoc/userdoc output (what `vyper -f devdoc,userdoc` prints) and, for the
constructor (absent from devdoc), from the source docstring."""
from __future__ import annotations

import re

import pytest

from chain.artifacts import CONTRACT_NAMES, build_record, source_path

_EXTERNAL = re.compile(r"^@external\n(?:@\w+\n)*def (\w+)\(", re.M)
_VIEW_EXTERNAL = re.compile(r"^@view\n@external\n(?:@\w+\n)*def (\w+)\(", re.M)
_INIT = re.compile(r'^@deploy\ndef __init__\((.*?)\):\n    """(.*?)"""', re.M | re.S)


def _externals(source: str) -> set[str]:
    return set(_EXTERNAL.findall(source)) | set(_VIEW_EXTERNAL.findall(source))


def missing_natspec(name: str) -> list[str]:
    """What an external of contract ``name`` lacks, one line per gap (empty when complete)."""
    build = build_record(name)
    source = source_path(name).read_text()
    defined = _externals(source)
    devdoc, userdoc = build["devdoc"].get("methods", {}), build["userdoc"].get("methods", {})
    gaps = []
    for entry in build["abi"]:
        if entry.get("type") != "function" or entry["name"] not in defined:
            continue  # public variable getters carry no docstring in Vyper
        signature = f"{entry['name']}({','.join(i['type'] for i in entry['inputs'])})"
        if not userdoc.get(signature, {}).get("notice"):
            gaps.append(f"{name}.{signature}: no @notice")
        params = devdoc.get(signature, {}).get("params", {})
        for arg in entry["inputs"]:
            if not params.get(arg["name"]):
                gaps.append(f"{name}.{signature}: no @param {arg['name']}")
        if entry["outputs"] and not devdoc.get(signature, {}).get("returns"):
            gaps.append(f"{name}.{signature}: returns {len(entry['outputs'])} value(s) but has no @return")
    init = _INIT.search(source)
    if init is not None:
        args = re.findall(r"(\w+)\s*:", init.group(1))
        doc = init.group(2)
        if "@notice" not in doc:
            gaps.append(f"{name}.__init__: no @notice")
        for arg in args:
            if not re.search(rf"@param {arg}\s+\S", doc):
                gaps.append(f"{name}.__init__: no @param {arg}")
    return gaps


@pytest.mark.parametrize("name", CONTRACT_NAMES)
def test_every_external_has_natspec(name):
    assert missing_natspec(name) == []


def test_the_check_finds_a_missing_param(tmp_path, monkeypatch):
    """The check can fail: a copy of Coordinator.vy with one @param removed is caught, naming it."""
    import chain.artifacts as artifacts

    source = source_path("Coordinator").read_text()
    cut = source.replace("    @param output_digest The output digest to count.\n", "")
    cut = cut.replace("    @return The number of evaluators that posted it.\n", "")
    assert cut != source
    (tmp_path / "Coordinator.vy").write_text(cut)
    monkeypatch.setattr(artifacts, "CONTRACTS_DIR", tmp_path)
    gaps = missing_natspec("Coordinator")
    assert "Coordinator.tally(uint256,bytes32): no @param output_digest" in gaps
    assert "Coordinator.tally(uint256,bytes32): returns 1 value(s) but has no @return" in gaps

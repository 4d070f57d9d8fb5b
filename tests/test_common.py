"""The leaf package ``common``: atomic writes, hex, strict JSON, figures saved to files, the market's names."""
from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import pytest

from common import strict_json
from common.files import write_file_atomic
from common.hex import from_hex, hex0x, to_hex
from common.vocabulary import SIDES, Side, client_of, dealer_of, side_of

ROOT = Path(__file__).resolve().parents[1]


def test_atomic_write_sets_the_mode_refuses_to_overwrite_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "a" / "b.bin"
    write_file_atomic(path, b"one", mode=0o600, parents=True)
    assert path.read_bytes() == b"one" and stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        write_file_atomic(path, b"two")
    write_file_atomic(path, b"two", mode=0o644, overwrite=True)
    assert path.read_bytes() == b"two" and stat.S_IMODE(path.stat().st_mode) == 0o644
    assert sorted(os.listdir(path.parent)) == ["b.bin"]


def test_a_failed_write_names_the_target_and_leaves_nothing(tmp_path):
    with pytest.raises(FileNotFoundError) as missing:
        write_file_atomic(tmp_path / "missing" / "x", b"x")
    assert missing.value.filename == str(tmp_path / "missing" / "x")  # not the temporary file's name
    assert list(tmp_path.iterdir()) == []


def test_hex_round_trip_and_errors_name_the_field():
    assert to_hex(b"\x00\xab") == "00ab" and to_hex(b"\x00\xab", prefix=True) == "0x00ab"
    assert from_hex("0x00AB", name="digest", length=2) == b"\x00\xab"
    assert hex0x(b"\x01") == "0x01" and hex0x("02") == "0x02" and hex0x("0x03") == "0x03"
    with pytest.raises(ValueError, match=r"digest: expected 3 bytes, got 2"):
        from_hex("00ab", name="digest", length=3)
    with pytest.raises(ValueError, match=r"digest: not a hex string: '0xg1'"):
        from_hex("0xg1", name="digest")
    with pytest.raises(TypeError, match="data: expected bytes, got str"):
        to_hex("00")


def test_strict_json_refuses_a_repeated_key_and_a_long_integer():
    with pytest.raises(strict_json.JsonInputError, match="duplicate key 'a' in one JSON object"):
        strict_json.loads('{"a": 1, "a": 2}')
    with pytest.raises(strict_json.JsonInputError, match="an integer of 1001 digits"):
        strict_json.loads("9" * 1001)
    assert strict_json.loads('{"a": [1, 2.5, null]}') == {"a": [1, 2.5, None]}


def test_a_figure_is_saved_whole_and_closed(tmp_path):
    from common.plotting import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    path = save_figure(fig, tmp_path / "f.png", dpi=50)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not plt.fignum_exists(fig.number)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.png"]


def test_a_side_is_its_name_and_the_contracts_number():
    assert SIDES == ("mm", "rm") and [s.index for s in SIDES] == [0, 1]
    assert Side.of("rm") is Side.RM and Side.of(0) is Side.MM and Side.of(Side.RM) is Side.RM
    assert Side.MM.other is Side.RM and f"dealer_{Side.RM}" == "dealer_rm" == dealer_of("rm")
    assert client_of(Side.MM) == "client_mm" and side_of("client_rm") is Side.RM and side_of("custodian") is None
    assert json.dumps({Side.MM: Side.RM}) == '{"mm": "rm"}'
    for bad in ("xx", 2, True, None):
        with pytest.raises(ValueError, match="side must be"):
            Side.of(bad)


def test_the_contract_numbers_the_sides_as_common_does():
    """chain imports the one Side; Coordinator.vy's SIDE_MM/SIDE_RM constants are its indices."""
    source = (ROOT / "chain" / "contracts" / "Coordinator.vy").read_text()
    for side in Side:
        assert re.search(rf"^SIDE_{side.name}: constant\(uint8\) = {side.index}$", source, re.M), side

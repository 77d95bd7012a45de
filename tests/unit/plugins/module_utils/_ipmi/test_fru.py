"""The FRU decoder against FRU images recorded from ipmi_sim and the lab BMC, compared with ipmitool's `fru print 0`."""

from __future__ import annotations

import uuid

import pytest

from ansible_collections.ctys.pm.plugins.module_utils._ipmi import fru
from pmtest.ipmi_recorded import NAMES, colon_fields, fru_print, load


@pytest.mark.parametrize("name", NAMES)
def test_recorded_image_decodes_as_ipmitool_prints_it(name):
    recorded = load(name)
    expected = fru_print(recorded["ipmitool"]["fru print 0"])
    decoded = fru.decode(bytes(recorded["fru_image"]))
    board, product = decoded["board"], decoded["product"]
    assert decoded["chassis"] is None
    assert board["manufactured"] == expected["board_manufactured"] == "2026-01-02T03:04:00Z"
    assert (board["manufacturer"], board["product"], board["serial_number"], board["part_number"]) == (
        expected["board_manufacturer"], expected["board_product"], expected["board_serial"], expected["board_part_number"])
    for key in ("manufacturer", "product", "part_number", "version", "serial_number", "asset_tag"):
        assert product[key] == expected[key], key
    identity = fru.identity(decoded, "x")
    assert identity == {
        "manufacturer": "pmlab", "product": "pmlab-machine", "model": "PM-1", "serial_number": "S-lab01", "part_number": "PM-1",
        "asset_tag": "asset-lab01", "uuid": "x",
        "board": {"manufacturer": "pmlab", "product": "pmlab-board", "serial_number": "B-lab01", "part_number": "PMB-100",
                  "manufactured": "2026-01-02T03:04:00Z"},
    }


@pytest.mark.parametrize("name", NAMES)
def test_guid_in_ipmitools_byte_order(name):
    """ipmi_sim sends its GUID in RFC 4122 order, the lab BMC in IPMI order: ipmitool detects both, so do we."""
    recorded = load(name)
    assert fru.guid(recorded["system_guid"]) == colon_fields(recorded["ipmitool"]["mc guid"])["System GUID"]


def test_guid_valid_in_two_encodings_is_read_as_ipmitool_reads_it():
    """Bytes whose version nibble is valid as RFC 4122 and as SMBIOS (seen on ipmi_sim with a random lab UUID):
    ipmitool prints the SMBIOS reading (the later valid encoding wins), and so do we."""
    raw = bytes.fromhex("f1d98116fbdb5259acd8acd1ef4c9fc9")
    assert fru.guid(list(raw)) == "1681d9f1-dbfb-5952-acd8-acd1ef4c9fc9"


def test_guid_time_based_with_a_plausible_time_ends_the_search():
    stamp = uuid.UUID("1c1c2cd6-0c5b-11ef-8000-0242ac120002")  # a version 1 GUID from 2024, in RFC 4122 byte order
    assert stamp.version == 1
    assert fru.guid(list(stamp.bytes), this_year=2026) == str(stamp)


def test_guid_without_a_valid_version_is_shown_as_the_bytes_came_and_empty_is_none():
    assert fru.guid(list(range(16))) == "00010203-0405-0607-0809-0a0b0c0d0e0f"
    assert fru.guid([0] * 16) is None
    assert fru.guid([0xFF] * 16) is None
    assert fru.guid([1, 2, 3]) is None


def test_field_encodings():
    assert fru.decode_field(3, b"pmlab\x00\x07 ") == "pmlab"  # 8-bit, junk dropped
    assert fru.decode_field(2, bytes([0x29, 0xDC, 0xA6])) == "IPMI"  # 6-bit ASCII packed (FRU spec 13.2)
    assert fru.decode_field(1, bytes([0x12, 0xB3, 0xCA])) == "12-3. "[:5]  # BCD plus: digits, '-', '.', space
    assert fru.decode_field(0, b"\x01\xab") == "01ab"  # binary as hex


def image_with_product(fields: bytes) -> bytes:
    area = bytearray([0x01, 0x00, 0x00]) + fields + b"\xc1"
    while (len(area) + 1) % 8:
        area += b"\x00"
    area[1] = (len(area) + 1) // 8
    area += bytes([(-sum(area)) & 0xFF])
    header = bytes([0x01, 0, 0, 0, 1, 0, 0])
    return header + bytes([(-sum(header)) & 0xFF]) + bytes(area)


def test_a_field_running_past_its_area_ends_the_area():
    image = bytearray(image_with_product(b"\xc3abc\xc2xy"))
    image[8 + 3 + 4] = 0xFF & (0xC0 | 60)  # second field claims 60 bytes
    product = fru.decode(bytes(image))["product"]
    assert product["manufacturer"] == "abc"
    assert product["product"] is None and product["custom"] == []


@pytest.mark.parametrize("image, words", [
    (b"", "fewer than its 8-byte common header"),
    (b"\x02\x00\x00\x00\x00\x00\x00\xfe", "format version"),
    (b"\x01\x00\x00\x00\x00\x00\x00\x00", "checksum"),
    (bytes([0x01, 0, 0, 0, 9, 0, 0, 0xF6]), "past the end"),
])
def test_broken_images_raise_the_typed_error(image, words):
    with pytest.raises(fru.FruDecodeError, match=words):
        fru.decode(image)


def test_an_area_longer_than_the_image_is_refused():
    image = bytearray(image_with_product(b"\xc3abc"))
    image[9] = 30
    with pytest.raises(fru.FruDecodeError, match="does not fit"):
        fru.decode(bytes(image))

"""Property-based tests of the FRU and SEL decoders (pm_bmc_info): a result or the decoder's own typed error, never anything else.

Inputs are random bytes and the images and records recorded from ipmi_sim and the lab BMC
(tests/unit/fixtures/ipmi) with random damage: bytes changed, cut, inserted.
"""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.ctys.pm.plugins.module_utils._ipmi import fru, info, sel
from pmtest.ipmi_recorded import NAMES, load

CASES = settings(max_examples=10_000, deadline=None)
RECORDED = [load(name) for name in NAMES]
IMAGES = [bytes(r["fru_image"]) for r in RECORDED]
RECORDS = [bytes(record) for r in RECORDED for record in r["sel_records"]]
ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


@st.composite
def damaged(draw, samples):
    data = bytearray(draw(st.sampled_from(samples)))
    for _edit in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(("set", "cut", "insert")))
        at = draw(st.integers(0, len(data)))
        if kind == "set" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif kind == "cut":
            del data[at:at + draw(st.integers(1, 16))]
        else:
            data[at:at] = draw(st.binary(max_size=16))
    return bytes(data)


def check_fru(image):
    try:
        decoded = fru.decode(image)
    except fru.FruDecodeError as error:
        assert str(error)
        return
    for area in ("chassis", "board", "product"):
        fields = decoded[area]
        if fields is None:
            continue
        for key, value in fields.items():
            if key == "custom":
                assert all(isinstance(item, str) and item for item in value)
            elif key == "manufactured":
                assert value is None or ISO.fullmatch(value)
            elif key != "type":
                assert value is None or (isinstance(value, str) and value and value.isprintable())
    identity = fru.identity(decoded, None)
    assert set(identity) >= {"manufacturer", "product", "model", "serial_number", "part_number", "asset_tag", "uuid"}


@CASES
@given(damaged(IMAGES))
def test_fru_damaged_recorded_images(image):
    check_fru(image)


@CASES
@given(st.binary(max_size=600))
def test_fru_random_bytes(image):
    check_fru(image)


@CASES
@given(st.binary(min_size=8, max_size=8), st.binary(max_size=400))
def test_fru_random_areas_behind_a_valid_header(head, rest):
    header = bytes([0x01]) + head[1:7]
    check_fru(header + bytes([(-sum(header)) & 0xFF]) + rest)


def check_sel(record):
    try:
        entry = sel.decode(record, {1: "CPU Temp"})
    except sel.SelDecodeError:
        assert len(record) < sel.RECORD_LENGTH
        return
    assert 0 <= entry["id"] <= 0xFFFF
    assert entry["time"] is None or ISO.fullmatch(entry["time"])
    assert entry["severity"] in ("ok", "warning", "critical")
    assert entry["direction"] in ("asserted", "deasserted")
    assert isinstance(entry["message"], str) and isinstance(entry["sensor_type"], str)
    assert entry["severity"] == "ok" or entry["direction"] == "asserted"


@CASES
@given(damaged(RECORDS))
def test_sel_damaged_recorded_records(record):
    check_sel(record)


@CASES
@given(st.binary(max_size=24))
def test_sel_random_bytes(record):
    check_sel(record)


@CASES
@given(st.lists(st.integers(0, 255), max_size=24), st.lists(st.integers(0, 255), max_size=24), st.lists(st.integers(0, 255), max_size=24))
def test_answer_decoders_of_info_on_random_answers(device_id, power, guid):
    try:
        firmware = info.firmware_of(device_id)
    except info.PmError:
        assert len(device_id) < 11
    else:
        assert re.fullmatch(r"\d+\.[0-9a-f]{2}", firmware["bmc_version"])
    reading = info.power_of(power)
    assert reading is None or reading["watts"] >= 0
    text = fru.guid(guid)
    assert text is None or re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", text)

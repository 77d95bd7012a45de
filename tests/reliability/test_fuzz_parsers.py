"""Property-based tests of the parsers: a result or the collection's own error, never anything else."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.ctys.pm.plugins.module_utils._errors import PmError
from ansible_collections.ctys.pm.plugins.module_utils._ipmi import sol as _sol
from ansible_collections.ctys.pm.plugins.module_utils._netaddr import check_interface_name, parse_mac
from ansible_collections.ctys.pm.plugins.module_utils._wol import packet as _wol

CASES = settings(max_examples=10_000, deadline=None)
HEX = "0123456789abcdefABCDEF"
mac_like = st.one_of(
    st.text(max_size=40),
    st.lists(st.text(alphabet=HEX, min_size=0, max_size=3), min_size=0, max_size=8).flatmap(
        lambda parts: st.sampled_from([":", "-", ".", ""]).map(lambda sep: sep.join(parts))
    ),
)


@CASES
@given(mac_like)
def test_parse_mac_returns_canonical_or_explains(text):
    try:
        mac = parse_mac(text)
    except PmError as error:
        assert error.msg.startswith("mac '") and "use six hex octets" in error.msg
        return
    assert len(mac) == 17 and mac == mac.lower() and mac.count(":") == 5
    assert parse_mac(mac) == mac  # canonical form is a fixed point
    assert bytes.fromhex(mac.replace(":", "")) == _wol.mac_bytes(text)


@CASES
@given(st.text(max_size=400))
def test_ethers_parser_never_fails_and_returns_only_valid_macs(text):
    for name, mac in _wol.read_ethers(text).items():
        assert name and not any(c.isspace() for c in name)
        assert parse_mac(mac) == mac


@CASES
@given(st.lists(st.tuples(st.text(max_size=20), mac_like, st.text(max_size=16)), max_size=8), st.text(max_size=80))
def test_macmap_parser_never_fails_and_keeps_first_entry(records, noise):
    text = "\n".join(";".join(fields) + ";" for fields in records) + "\n" + noise
    table = _wol.read_macmap(text)
    for entry in table.values():
        assert parse_mac(entry["mac"]) == entry["mac"]


@CASES
@given(st.one_of(st.text(max_size=30), st.none()))
def test_secureon_password_is_4_or_6_bytes_or_refused(text):
    try:
        password = _wol.parse_password(text)
    except PmError as error:
        assert error.msg.startswith("secureon_password is not a SecureOn password")
        return
    assert password is None or len(password) in (4, 6)


@CASES
@given(st.text(max_size=60))
def test_interface_name_check(text):
    try:
        name = check_interface_name(text)
    except PmError as error:
        assert error.msg.startswith("interface '")
        return
    assert 1 <= len(name) <= 15 and "/" not in name and not any(c.isspace() for c in name)


@CASES
@given(st.text(max_size=60))
def test_console_keys_decode_or_explain(text):
    try:
        data = _sol.decode_keys(text)
    except PmError as error:
        assert error.msg.startswith("send '") and ("unknown escape" in error.msg or "unknown control key" in error.msg)
        return
    assert isinstance(data, bytes)


@CASES
@given(st.text(max_size=200))
def test_strip_ansi_leaves_no_escape_introducer_of_a_complete_sequence(text):
    cleaned = _sol.strip_ansi(text)
    assert "\r" not in cleaned
    assert len(cleaned) <= len(text)

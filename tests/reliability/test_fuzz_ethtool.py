"""Property tests of pm_wol_flag's parsers and seams: a result or the collection's own error, never anything else."""

from __future__ import annotations

import errno
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.ctys.pm.plugins.module_utils._errors import PmError
from ansible_collections.ctys.pm.plugins.module_utils._wol import ethtool as _ethtool
from ansible_collections.ctys.pm.plugins.module_utils._wol import persist as _wol_persist

CASES = settings(max_examples=10_000, deadline=None)
FIXTURES = sorted((Path(__file__).resolve().parents[1] / "unit" / "fixtures" / "ethtool").glob("*.txt"))
LETTERS = "pumbagsfd"
KEYS = ["Supports Wake-on", "Wake-on", "SecureOn password", "Settings for eth0", "Link detected", "driver"]

# lines that look like ethtool's, mixed with noise and the real recorded outputs cut at random places
ethtool_line = st.one_of(
    st.tuples(st.sampled_from(["", "\t", "        ", " "]), st.sampled_from(KEYS), st.sampled_from([":", ": ", " : ", ""]),
              st.text(alphabet=LETTERS + "xyz0123456789:ABC -", max_size=20)).map("".join),
    st.text(max_size=40),
)
ethtool_text = st.one_of(
    st.lists(ethtool_line, max_size=12).map("\n".join),
    st.tuples(st.sampled_from(FIXTURES), st.integers(0, 2000), st.text(max_size=30)).map(
        lambda t: t[0].read_text()[: t[1]] + t[2]
    ),
)


@CASES
@given(ethtool_text)
def test_ethtool_output_parser_never_fails_and_returns_masks(text):
    found = _ethtool.parse_ethtool(text)
    for mask in (found.supported, found.wolopts):
        assert mask is None or 0 <= mask <= 0xFF
    assert found.sopass is None or len(found.sopass) == 6


@CASES
@given(st.sets(st.sampled_from("pumbagsf")), st.sets(st.sampled_from("pumbagsf")), st.sampled_from(["\t", "        ", ""]))
def test_wake_on_lines_round_trip(supported, armed, indent):
    sup = "".join(sorted(supported)) or "d"
    cur = "".join(sorted(armed)) or "d"
    found = _ethtool.parse_ethtool(f"Settings for eth0:\n{indent}Supports Wake-on: {sup}\n{indent}Wake-on: {cur}\n")
    assert _ethtool.letters(found.supported) == _ethtool.letters(_ethtool.mask_of(sup))
    assert _ethtool.letters(found.wolopts) == _ethtool.letters(_ethtool.mask_of(cur))


@CASES
@given(st.one_of(st.none(), st.text(max_size=12)), st.sampled_from(["enabled", "disabled"]))
def test_wol_option_is_a_mask_or_one_sentence(value, state):
    try:
        mask = _ethtool.parse_wol_option(value, state)
    except PmError as error:
        assert error.msg.startswith("wol '") and "; " in error.msg
        return
    assert 0 <= mask <= 0xFF
    assert state == "enabled" or mask == 0
    assert _ethtool.mask_of(_ethtool.letters(mask)) == mask


@CASES
@given(st.text(max_size=24))
def test_sopass_is_six_bytes_or_refused_without_repeating_it(text):
    try:
        sopass = _ethtool.parse_sopass(text)
    except PmError as error:
        assert error.msg == "sopass is not a SecureOn password; use six hex octets such as 01:02:03:04:05:06"
        return
    assert sopass is None or len(sopass) == 6


@CASES
@given(
    st.one_of(st.binary(min_size=0, max_size=40), st.integers(0, 2**32 - 1).map(lambda n: (5).to_bytes(4, "little") + n.to_bytes(4, "little") * 2 + bytes(8))),
    st.one_of(st.none(), st.sampled_from([errno.EPERM, errno.EOPNOTSUPP, errno.ENODEV, errno.EINVAL, errno.EBUSY, errno.EIO])),
    st.integers(0, 255),
)
def test_ioctl_answers_and_errnos_end_in_a_state_or_pm_error(answer, failure, wanted):
    def ioctl(ifname, request):
        if failure:
            raise OSError(failure, "injected")
        return answer

    eth = _ethtool.Ethtool(ioctl)  # no ethtool binary: EPERM must become the "needs become" error
    try:
        state = eth.get("eno1", "interface eno1 (driver e1000e)")
        assert state.supported and state.source == "ioctl"
        eth.set("eno1", "interface eno1 (driver e1000e)", wanted, None)
    except PmError as error:
        assert "eno1" in error.msg  # every message names the interface


@CASES
@given(ethtool_text, st.integers(0, 255), st.text(max_size=60))
def test_ethtool_fallback_ends_in_a_state_or_pm_error(out, rc, err):
    def ioctl(ifname, request):
        raise OSError(errno.EPERM, "Operation not permitted")

    eth = _ethtool.Ethtool(ioctl, lambda argv: (rc, out, err), "/usr/sbin/ethtool")
    try:
        state = eth.get("eno1", "interface eno1 (driver e1000e)")
    except PmError as error:
        assert error.msg and ("eno1" in error.msg)
        return
    assert state.supported and state.source == "ethtool"


@CASES
@given(st.text(max_size=60))
def test_nmcli_flags_parser_never_fails(text):
    flags = _wol_persist.parse_nm_flags(text)
    assert flags == sorted(set(flags)) and all(flag.strip() for flag in flags)

"""Property-based tests of the ctys file parsers (pm.conf, enum.fdb, macmap.fdb, ethers, group files, HWCAP).

Property: every parser returns a result plus per-line issues, or raises the collection's own
error; never another exception, and never a silently partial result: every non-blank,
non-comment line is either in the result or named in an issue.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.ctys.pm.plugins.module_utils._ctys import formats as f
from ansible_collections.ctys.pm.plugins.module_utils._errors import PmError

CASES = settings(max_examples=10_000, deadline=None)

# Lines built from the characters these formats are made of, so that many cases get past the first check.
FIELD_CHARS = "0123456789abcdefABCDEF:.;%-_ #@=\"'()/,\t"
field = st.text(alphabet=FIELD_CHARS, max_size=24)
mac = st.tuples(*[st.integers(0, 255)] * 6).map(lambda octets: ":".join(f"{o:02x}" for o in octets))
ipv4 = st.tuples(*[st.integers(0, 300)] * 4).map(lambda parts: ".".join(map(str, parts)))
macmap_line = st.one_of(st.tuples(field, st.one_of(mac, field), st.one_of(ipv4, field)).map(lambda t: f"{t[0]};{t[1]};{t[2]};"), field)
enum_line = st.lists(st.one_of(field, mac, ipv4), min_size=0, max_size=50).map(";".join)
conf_line = st.one_of(
    st.tuples(st.sampled_from(["LABEL", "MAC0", "IP0", "MAC1", "IP1", "CATEGORY", "HWCAP", "UUID", "OS"]), field).map(
        lambda t: f'#@#{t[0]} = "{t[1]}"'),
    st.just("#@#MAGICID-PM"),
    st.text(max_size=60),
)


def _content_line_numbers(text: str):
    """Numbers of the lines a parser must account for (ctys skips blank and comment lines)."""
    return {number for number, line in enumerate(text.replace("\r\n", "\n").split("\n"), 1)
            if line.strip() and not line.lstrip().startswith("#")}


@CASES
@given(st.lists(macmap_line, max_size=12).map("\n".join))
def test_macmap_accounts_for_every_line(text):
    rows, issues = f.macmap_rows(text, "macmap.fdb")
    # every content line is either an entry or an issue that names it: nothing dropped silently
    assert {number for *_entry, number in rows} | {issue.line for issue in issues} == _content_line_numbers(text)
    assert not {number for *_entry, number in rows} & {issue.line for issue in issues}
    for name, mac, ip, _number in rows:
        assert f.normalize_mac(mac) == mac and name
        assert ip == "" or f.is_ip(ip)


@CASES
@given(st.lists(enum_line, max_size=6).map("\n".join))
def test_enum_fdb_accounts_for_every_line(text):
    rows, issues = f.enum_rows(text, "enum.fdb")
    assert {number for number, _parts in rows} | {issue.line for issue in issues} == _content_line_numbers(text)
    for _number, parts in rows:
        assert len(parts) == f.ENUM_FIELDS
    for issue in issues:
        assert issue.message.endswith("line skipped")


@CASES
@given(st.lists(conf_line, max_size=15).map("\n".join))
def test_conf_parser_returns_a_file_or_its_own_error(text):
    try:
        conf = f.parse_conf(text, "pm.conf")
    except PmError as error:
        assert error.msg
        return
    for interface in conf.interfaces:
        assert interface.mac or interface.ip  # an interface is never empty
        assert interface.mac == "" or f.normalize_mac(interface.mac) == interface.mac
        assert interface.ip == "" or f.is_ip(interface.ip)


@CASES
@given(st.lists(st.one_of(st.text(max_size=40), st.tuples(mac, field).map(" ".join)), max_size=10).map("\n".join))
def test_ethers_entries_have_valid_macs(text):
    entries, issues = f.parse_ethers(text, "ethers")
    for entry in entries:
        assert f.normalize_mac(entry.mac) == entry.mac
    assert all(issue.message for issue in issues)


@CASES
@given(st.lists(st.one_of(st.text(alphabet="abc@'()#include -_/x\t", max_size=40), st.text(max_size=30)), max_size=10).map("\n".join))
def test_group_parser_returns_a_group_or_its_own_error(text):
    try:
        group = f.parse_group(text, "g")
    except PmError as error:
        assert error.msg
        return
    for member in group.members:
        assert member.name and not member.name.isspace()


@CASES
@given(st.one_of(st.text(max_size=80), st.lists(field, max_size=6).map(",".join)))
def test_hwcap_parser_returns_a_mapping(text):
    try:
        parsed = f.parse_hwcap(text)
    except PmError as error:
        assert error.msg
        return
    assert isinstance(parsed, dict)

"""Property-based tests of pm_wake's input side: MAC lists, names looked up in ethers and macmap files.

Property: a result (normalised MACs, found entries) or the collection's own error with a one-sentence
message; never another exception. 10,000 cases each (the parsers alone are in test_fuzz_parsers.py).
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.ctys.pm.plugins.module_utils import _wake
from ansible_collections.ctys.pm.plugins.module_utils._errors import PmError, PmInputError
from ansible_collections.ctys.pm.plugins.module_utils._netaddr import parse_mac
from ansible_collections.ctys.pm.plugins.module_utils._wol import packet as _wol

CASES = settings(max_examples=10_000, deadline=None)
HEX = "0123456789abcdefABCDEF"
octet = st.text(alphabet=HEX, min_size=1, max_size=2)
good_mac = st.tuples(st.lists(octet, min_size=6, max_size=6), st.sampled_from([":", "-"])).map(lambda t: t[1].join(t[0]))
mac_like = st.one_of(good_mac, st.text(max_size=24), st.lists(octet, max_size=8).map(":".join))
name = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=12)


def check_message(error: PmError) -> None:
    assert error.msg and "; " in error.msg  # what is wrong; how to fix it


@CASES
@given(st.lists(mac_like, max_size=5), st.one_of(st.none(), st.lists(st.text(max_size=10), max_size=5)))
def test_mac_lists_and_hosts_become_targets_or_one_sentence(macs, hosts):
    try:
        targets = _wake.build_targets({"mac": macs, "hosts": hosts, "name": None}, reader=lambda path: "")
    except PmError as error:
        check_message(error)
        return
    assert macs and [t.mac for t in targets] == [parse_mac(m) for m in macs]
    assert all(len(t.mac) == 17 for t in targets)


@CASES
@given(name, st.lists(st.tuples(mac_like, name), max_size=6), st.text(max_size=60))
def test_ethers_lookup_finds_the_first_valid_entry_or_says_where_it_looked(wanted, rows, noise):
    text = "\n".join(f"{mac} {host}" for mac, host in rows) + "\n" + noise
    try:
        found = _wol.lookup_name(wanted, "/etc/ethers.fuzz", None, reader=lambda path: text)
    except PmInputError as error:
        check_message(error)
        assert error.msg.startswith("name '") and "/etc/ethers.fuzz" in error.msg
        return
    assert parse_mac(found["mac"]) == found["mac"]
    assert found["mac"] == _wol.read_ethers(text)[wanted]


@CASES
@given(name, st.lists(st.tuples(name, mac_like, st.text(max_size=15)), max_size=6), st.booleans())
def test_macmap_lookup_returns_mac_and_ip_or_says_where_it_looked(wanted, rows, ethers_missing):
    text = "\n".join(";".join(row) + ";" for row in rows)

    def reader(path):
        if path == "ethers" and ethers_missing:
            raise FileNotFoundError(path)
        return "" if path == "ethers" else text

    try:
        found = _wol.lookup_name(wanted, "ethers", "macmap.fdb", reader=reader)
    except PmInputError as error:
        check_message(error)
        assert "macmap.fdb" in error.msg
        return
    assert parse_mac(found["mac"]) == found["mac"] and set(found) == {"mac", "ip"}


@CASES
@given(st.one_of(st.none(), name), st.one_of(st.just(OSError(13, "Permission denied")), st.just(FileNotFoundError(2, "No such file"))))
def test_unreadable_files_are_explained(wanted, failure):
    def reader(path):
        raise failure

    try:
        _wake.build_targets({"mac": None, "name": wanted, "ethers": "/etc/ethers", "macmap": None}, reader=reader)
    except PmError as error:
        check_message(error)
        return
    raise AssertionError("a name cannot be found in a file that cannot be read")

"""Magic packets on a real loopback socket; ethers and macmap look-ups from recorded files."""

from __future__ import annotations

import socket

import pytest

from ansible_collections.ctys.pm.plugins.module_utils._errors import PmInputError
from ansible_collections.ctys.pm.plugins.module_utils._wol import packet as _wol


def test_magic_packet_is_exactly_102_bytes_plus_password():
    packet = _wol.magic_packet("00:1a:2b:3c:4d:5e")
    assert len(packet) == 102 and packet[:6] == b"\xff" * 6
    assert packet[6:] == bytes.fromhex("001a2b3c4d5e") * 16
    assert len(_wol.magic_packet("00:1a:2b:3c:4d:5e", _wol.parse_password("1.2.3.4"))) == 106
    assert _wol.magic_packet("00:1a:2b:3c:4d:5e", _wol.parse_password("a1:b2:c3:d4:e5:f6"))[-6:] == bytes.fromhex("a1b2c3d4e5f6")


@pytest.mark.parametrize("value,expected", [("192.0.2.1", "c0000201"), ("01020304", "01020304"), ("01-02-03-04-05-06", "010203040506")])
def test_secureon_password_forms(value, expected):
    assert _wol.parse_password(value).hex() == expected


@pytest.mark.parametrize("value", ["secret", "0a0b0c7", "0a:0b:0c:0d:0e", "300.1.1.1"])
def test_bad_secureon_password_is_refused_without_echoing_it(value):
    with pytest.raises(PmInputError) as caught:
        _wol.parse_password(value)
    assert value not in caught.value.msg


def test_udp_sender_puts_the_packets_on_a_loopback_socket():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(2)
        port = receiver.getsockname()[1]
        sender = _wol.Sender(broadcast="127.0.0.1", port=port, interface=None, repeat=3, repeat_interval=0)
        sender.send([_wol.magic_packet("02:00:00:00:00:01"), _wol.magic_packet("02:00:00:00:00:02")])
        received = [receiver.recv(2048) for attempt in range(6)]
    assert [len(p) for p in received] == [102] * 6
    assert received[0][6:12] == bytes.fromhex("020000000001") and received[1][6:12] == bytes.fromhex("020000000002")
    assert sender.destination() == f"127.0.0.1:{port}/udp"


def test_udp_sender_over_ipv6_loopback():
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("::1", 0))
        receiver.settimeout(2)
        port = receiver.getsockname()[1]
        sender = _wol.Sender(broadcast="::1", port=port, interface=None, repeat=1, repeat_interval=0)
        sender.send([_wol.magic_packet("02:00:00:00:00:01")])
        assert len(receiver.recv(2048)) == 102
    assert sender.destination() == f"[::1]:{port}/udp"


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"repeat": 0}, "repeat '0' is not valid; use a count from 1 to 100"),
        ({"repeat_interval": 11}, "repeat_interval '11' is not valid"),
        ({"port": 0}, "port '0' is outside 1..65535"),
        ({"interface": "eth0; reboot"}, "interface 'eth0; reboot' is not a valid interface name"),
    ],
)
def test_sender_validation(kwargs, message):
    args = {"broadcast": "127.0.0.1", "port": 9, "interface": None, "repeat": 3, "repeat_interval": 0.1}
    args.update(kwargs)
    with pytest.raises(PmInputError) as caught:
        _wol.Sender(**args)
    assert caught.value.msg.startswith(message)


def test_unknown_interface_lists_the_real_ones(tmp_path):
    (tmp_path / "eth0").mkdir()
    (tmp_path / "lo").mkdir()
    with pytest.raises(PmInputError) as caught:
        _wol.Sender(broadcast=None, port=9, interface="eth9", repeat=1, repeat_interval=0, sysfs=str(tmp_path))
    assert caught.value.msg == "interface 'eth9' does not exist on this host; use one of eth0, lo"


def test_ethers_fixture_with_comments_mixed_case_and_duplicates(fixture_text):
    table = _wol.read_ethers(fixture_text("ethers/1.txt"))
    assert table and all(len(mac) == 17 and mac == mac.lower() for mac in table.values())
    text = fixture_text("ethers/1.txt")
    first_active = next(line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#"))
    mac, name = first_active.split()[:2]
    assert table[name] == mac.lower().replace("-", ":")


def test_ethers_fixture_without_names_yields_nothing(fixture_text):
    assert _wol.read_ethers(fixture_text("ethers/7.txt")) == {}


def test_ethers_several_names_for_one_mac(fixture_text):
    table = _wol.read_ethers(fixture_text("ethers/3.txt"))
    macs = list(table.values())
    assert len(macs) > len(set(macs)), "the fixture maps one MAC to several names"


def test_macmap_lookup_by_fqdn_and_short_name():
    text = "lab02.soho.;00:1A:2B:3C:4D:5E;192.168.1.12;\nbroken line\n#c;00:00:00:00:00:01;x;\n"
    table = _wol.read_macmap(text)
    assert table["lab02"] == {"mac": "00:1a:2b:3c:4d:5e", "ip": "192.168.1.12"}
    assert table["lab02.soho."] == table["lab02"]


def test_lookup_name_says_where_it_looked():
    files = {"/e": "00:11:22:33:44:55 other\n", "/m": "x;00:11:22:33:44:66;1.2.3.4;\n"}
    assert _wol.lookup_name("x", "/e", "/m", files.__getitem__) == {"mac": "00:11:22:33:44:66", "ip": "1.2.3.4"}
    with pytest.raises(PmInputError) as caught:
        _wol.lookup_name("ghost", "/e", "/m", files.__getitem__)
    assert caught.value.msg == "name 'ghost' was not found in /e and /m; add it there or give mac"

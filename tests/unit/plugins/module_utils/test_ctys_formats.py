"""ctys file readers and writers, on the real ctys files (fixtures/ctys) and on the documented formats."""

from __future__ import annotations

from dataclasses import fields as dataclass_fields

import pytest

from ansible_collections.ctys.pm.plugins.module_utils._ctys import formats as f

GENMCONF_EXAMPLE = """\
#@#MAGICID-Linux
#@#HOST            = "lab02.soho"
#@#LABEL           = "lab02"
#@#ID              = "/etc/ctys.d/pm.conf"
#@#UUID            = "44454c4c3900104e8052b3c04f4a4d31"
#@#UID             = "root"
#@#GID             = "root"
#@#DIST            = "CentOS"
#@#DISTREL         = "5.4"
#@#OS              = "Linux"
#@#OSREL           = "2.6.18-164.el5xen"
#@#SERNO           = 20100612143005
#@#CATEGORY        = "PM"
#@#ARCH            = "x86_64"
#@#VMSTATE         = "ACTIVE"
#@#EXECLOCATION    = "LOCAL"
#@#RELOCCAP        = "FIXED"
#@#STACKCAP        = "PM-01.10.008-x86_64-WoLTarget-WoLRemote-WoLLocal%VMStack-01.11.007%CentOS-5.4%Linux-2.6.18-164.el5xen-x86_64"
#@#HWCAP           = "CPU:2xIntel-6-15-11-4096KB-2400MHz-VMX-PAE,RAM:4018M,SWAP:8191M"
#@#VCPU            = "2/2"
#@#VRAM            = "4018M/3584M"
#@#GATEWAY         = "192.168.1.1"
#@#CSTRG           = "Generated%by%genmconf."
#@#USTRG           = ""
#@#MAC0             = "00:1A:2B:3C:4D:5E"
#@#IP0              = "192.168.1.12%255.255.255.0%xenbr0%eth0%22%192.168.1.1"
"""
# The constructed raw example of the reference (§2.3), 47 fields.
ENUM_EXAMPLE = (
    "lab02;PM;lab02;/etc/ctys.d/pm.conf;44454c4c3900104e8052b3c04f4a4d31;00:1A:2B:3C:4D:5E;192.168.1.12;;;;;CentOS;5.4;Linux;"
    "2.6.18-164.el5xen;;20100612143005;PM;ACTIVE;;PM-01.10.008-x86_64-WoLTarget-WoLRemote-WoLLocal%VMStack-01.11.007%CentOS-5.4%"
    "Linux-2.6.18-164.el5xen-x86_64;;CPU:2xIntel-6-15-11-4096KB-2400MHz-VMX-PAE,RAM:4018M,SWAP:8191M;;LOCAL;FIXED;22;lab02.soho.;;"
    "VMX;;;eth0;;255.255.255.0;192.168.1.1;xenbr0;x86_64;;4018M/3584M;2/2;Generated%by%genmconf.;;root;root;VNC;VNC"
)


# --- #@# configs ---------------------------------------------------------------


@pytest.mark.parametrize("number,magic", [(1, "QEMU"), (2, "VBOX"), (3, "VMW"), (4, "XEN")])
def test_real_templates_are_recognised_but_not_enumerated(fixture_text, number, magic):
    conf = f.parse_conf(fixture_text(f"ctys/{number}.txt"), f"{number}.txt")
    assert conf.magicid == magic and "IGNORE" in conf.magicids
    assert conf.enumerable is False  # templates ship with #@#MAGICID-IGNORE
    assert conf.get("LABEL") == "MARKER_LABEL"
    assert conf.session_type == magic


def test_template_values_unquoted_and_shell_lines_ignored(fixture_text):
    conf = f.parse_conf(fixture_text("ctys/1.txt"), "1.txt")
    assert conf.values["INST_EDITOR"] == "MARKER_EDITOR"  # unquoted value
    assert "VNCACCESSPORT" not in conf.values  # '#_@#VNCACCESSPORT' is a comment
    # 'LABEL="MARKER_LABEL"' shell line without #@# is not a key; MAC0 placeholder reported with its line
    assert [str(i) for i in conf.issues] == ["1.txt:104: MAC0 'MARKER_MAC' is not a MAC address; interface skipped"]


def test_non_ctys_files_are_not_machines(fixture_text):
    for number in (5, 6, 7, 8):
        assert f.parse_conf(fixture_text(f"ctys/{number}.txt")).enumerable is False
    assert f.parse_conf(fixture_text("ctys/5.txt")).magicids == ["IGNORE"]


def test_genmconf_example_reads_as_ctys_reads_it():
    conf = f.parse_conf(GENMCONF_EXAMPLE, "/etc/ctys.d/pm.conf")
    assert conf.enumerable and conf.magicid == "Linux" and conf.category == "PM" and conf.session_type == "PM"
    assert conf.get("SERNO") == "20100612143005"
    assert conf.interfaces == [f.Interface("00:1A:2B:3C:4D:5E", "192.168.1.12", "255.255.255.0", "xenbr0", "eth0", [22], "192.168.1.1")]
    assert conf.issues == []


def test_first_occurrence_wins_tabs_and_single_quotes():
    text = "#@#MAGICID-Linux\n#@#LABEL\t=\t'first'\n  #@#LABEL = \"second\"\n#@#DIST = \"Red Hat\"\n#@#UUID = \"a b c\"\n"
    conf = f.parse_conf(text)
    assert conf.get("LABEL") == "first"
    assert conf.get("DIST") == "Red_Hat"  # DIST/DISTREL/OS/OSREL: spaces become '_'
    assert conf.get("UUID") == "c"  # other getters keep the last word


def test_value_ends_at_the_next_quote_and_keys_are_case_sensitive():
    conf = f.parse_conf('#@#MAGICID-Linux\n#@#LABEL = "abc"def" trailing\n#@#label = "x"\n')
    assert conf.get("LABEL") == "abc" and conf.values["label"] == "x"


def test_writer_reader_aliases():
    conf = f.parse_conf('#@#MAGICID-Linux\n#@#VERNO = "01.01"\n#@#VNCPORT = "5901"\n#@#HYPERREL = "kvm-1"\n#@#CTYSREL = "01.11"\n')
    assert (conf.get("VERSION"), conf.get("VNCACCESSPORT"), conf.get("INST_HYPERREL"), conf.get("CTYSRELEASE")) == ("01.01", "5901", "kvm-1", "01.11")
    reader = f.parse_conf('#@#MAGICID-Linux\n#@#VERSION = "2"\n#@#VERNO = "1"\n')
    assert reader.get("VERSION") == "2"  # the reader's own spelling first


@pytest.mark.parametrize("marker", ["IGNORE", "NOENUM"])
def test_excluding_markers(marker):
    assert f.parse_conf(f"#@#MAGICID-{marker}\n#@#MAGICID-Linux\n#@#LABEL = \"x\"\n").enumerable is False
    assert f.parse_conf("#@#MAGICID-Linux\n#     #@#MAGICID-<remove-this>IGNORE\n").enumerable is True


def test_interfaces_pairs_tuples_and_defaults():
    text = "\n".join([
        "#@#MAGICID-Linux",
        '#@#MAC0 = "00:16:3e:aa:bb:01"',
        '#@#IP0 = "10.1.0.5%255.255.0.0%br0%eno1%22%10.1.0.1,10.1.5.5%24%br0%eno1%22-2222%"',
        '#@#MAC1 = "0-16-3E-AA-BB-2"',
        '#@#IP2 = "10.2.0.5"',
        '#@#MAC0 = "00:16:3e:aa:bb:99"',
        '#@#MAC = "02:00:00:00:00:01"',
        '#@#IP3 = "10.3.0.5%255.0.255.0"',
    ])
    conf = f.parse_conf(text, "p")
    got = [(i.mac, i.ip, i.netmask, i.relay, i.ifname, i.ssh_ports, i.gateway) for i in conf.interfaces]
    assert got == [
        ("02:00:00:00:00:01", "", "", "", "0", [], ""),
        ("00:16:3E:AA:BB:01", "10.1.0.5", "255.255.0.0", "br0", "eno1", [22], "10.1.0.1"),
        ("00:16:3E:AA:BB:01", "10.1.5.5", "24", "br0", "eno1", [22, 2222], ""),
        ("00:16:3E:AA:BB:02", "", "", "", "1", [], ""),
        ("", "10.2.0.5", "", "", "2", [], ""),
    ]
    assert [str(i) for i in conf.issues] == [
        "p:6: MAC0 is defined again (first on line 2); the first is kept",
        "p:8: IP3 netmask '255.0.255.0' is not a netmask; address skipped",
    ]


def test_genmconf_writer_round_trips_and_matches_the_layout():
    conf = f.PmConf(
        host="lab02.soho", label="lab02", uuid="44454c4c3900104e8052b3c04f4a4d31", dist="CentOS", distrel="5.4", osrel="2.6.18-164.el5xen",
        serno="20100612143005", arch="x86_64", stackcap="PM-01.10.008-x86_64-WoLTarget", hwcap="CPU:2xIntel,RAM:4018M", vcpu="2",
        vram="4018M", gateway="192.168.1.1",
        interfaces=[
            f.Interface("00:1a:2b:3c:4d:5e", "192.168.1.12", "255.255.255.0", "xenbr0", "eth0", [22], "192.168.1.1"),
            f.Interface("00:1a:2b:3c:4d:5e", "fd00::12", "64", "xenbr0", "eth0", [22], ""),
            f.Interface("00:1a:2b:3c:4d:5f", "", "", "", "eth1", [], ""),
        ],
    )
    text = f.format_pm_conf(conf)
    lines = text.splitlines()
    for line in GENMCONF_EXAMPLE.splitlines():
        if not line.startswith(("#@#USTRG", "#@#MAC0", "#@#IP0", "#@#STACKCAP", "#@#HWCAP", "#@#VCPU", "#@#VRAM")):
            assert line in lines, line
    assert '#@#MAC0             = "00:1A:2B:3C:4D:5E"' in lines
    assert '#@#IP0              = "192.168.1.12%255.255.255.0%xenbr0%eth0%22%192.168.1.1,fd00::12%64%xenbr0%eth0%22%"' in lines
    assert '#@#MAC1             = "00:1A:2B:3C:4D:5F"' in lines and not any(line.startswith("#@#IP1") for line in lines)
    back = f.parse_conf(text, "/etc/ctys.d/pm.conf")
    assert back.enumerable and back.issues == [] and back.get("LABEL") == "lab02" and back.get("SERNO") == "20100612143005"
    assert [(i.mac, i.ip) for i in back.interfaces] == [("00:1A:2B:3C:4D:5E", "192.168.1.12"), ("00:1A:2B:3C:4D:5E", "fd00::12"), ("00:1A:2B:3C:4D:5F", "")]


def test_writer_keeps_values_readable():
    text = f.format_pm_conf(f.PmConf(host="h", label='we"ird lab\'el', dist="Debian GNU/Linux"))
    conf = f.parse_conf(text)
    assert conf.get("LABEL") == "weird%label" and conf.get("DIST") == "Debian%GNU/Linux"


def test_semantic_lines_ignore_date_and_serial():
    a = f.format_pm_conf(f.PmConf(host="h", label="h", serno="1", date="2024"))
    b = f.format_pm_conf(f.PmConf(host="h", label="h", serno="2", date="2025"))
    c = f.format_pm_conf(f.PmConf(host="h", label="h2", serno="2", date="2025"))
    assert a != b and f.conf_semantic_lines(a) == f.conf_semantic_lines(b) != f.conf_semantic_lines(c)


# --- enum.fdb -------------------------------------------------------------------


def _records(rows):
    """enum_rows' field lists as EnumRecords, by field name (fields.FIELDS' order)."""
    return [f.EnumRecord(**dict(zip(f.ENUM_FIELD_NAMES, parts)), line=number) for number, parts in rows]


def test_enum_reference_example():
    rows, issues = f.enum_rows(ENUM_EXAMPLE + "\n", "enum.fdb")
    assert issues == [] and len(rows) == 1
    r = _records(rows)[0]
    assert (r.host, r.session_type, r.label, r.id, r.mac, r.tcp) == (
        "lab02", "PM", "lab02", "/etc/ctys.d/pm.conf", "00:1A:2B:3C:4D:5E", "192.168.1.12")
    assert (r.sshport, r.netname, r.accelerator, r.ifname, r.netmask, r.gateway, r.relay) == (
        "22", "lab02.soho.", "VMX", "eth0", "255.255.255.0", "192.168.1.1", "xenbr0")
    assert (r.arch, r.vram, r.vcpu, r.contextstrg, r.uid, r.gid, r.defhosts, r.defconsole) == (
        "x86_64", "4018M/3584M", "2/2", "Generated%by%genmconf.", "root", "root", "VNC", "VNC")
    assert r.to_line() == ENUM_EXAMPLE


def test_enum_malformed_lines_are_named():
    short = "lab07;PM;lab07"
    bad_mac = ENUM_EXAMPLE.replace("00:1A:2B:3C:4D:5E", "00:1A:2B")
    no_name = ";PM" + ";" * 45
    text = "\n".join([ENUM_EXAMPLE, short, "", "# comment", bad_mac, no_name, ENUM_EXAMPLE + ";"])
    rows, issues = f.enum_rows(text, "db/enum.fdb")
    assert [number for number, _parts in rows] == [1, 7]
    assert [str(i) for i in issues] == [
        "db/enum.fdb:2: has 3 fields instead of 47; line skipped",
        "db/enum.fdb:5: MAC '00:1A:2B' (field 6) is not a MAC address; line skipped",
        "db/enum.fdb:6: has neither host (field 1) nor label (field 3); line skipped",
    ]


def test_enum_rows_are_the_fields_with_the_mac_normalised():
    text = "\n".join([ENUM_EXAMPLE.replace("00:1A:2B:3C:4D:5E", "0-1a-2b-3c-4d-5e"), "short;line", ENUM_EXAMPLE + ";"])
    rows, issues = f.enum_rows(text, "e")
    assert [number for number, _parts in rows] == [1, 3]
    assert [";".join(parts) for _number, parts in rows] == [ENUM_EXAMPLE, ENUM_EXAMPLE]  # MAC normalised, trailing ';' dropped
    assert [i.line for i in issues] == [2]


def test_the_field_table_is_the_records_layout():
    from ansible_collections.ctys.pm.plugins.module_utils._ctys import fields

    assert f.ENUM_FIELD_NAMES == fields.ENUM_FIELD_NAMES and len(fields.FIELDS) == 47
    assert [field.name for field in dataclass_fields(f.EnumRecord)][:47] == list(fields.ENUM_FIELD_NAMES)
    # the fields the reference example names at their ctys positions (1-based in ctys's documentation)
    assert (fields.E_MAC + 1, fields.E_TCP + 1, fields.E_SSHPORT + 1, fields.E_NETMASK + 1) == (6, 7, 27, 35)
    # every host variable the inventory sets from a field, once
    names = [field.host_var for field in fields.HOST_VAR_FIELDS]
    assert len(names) == len(set(names)) and all(name.startswith("pm_") for name in names)


def test_enum_records_from_a_config_one_per_interface_address():
    conf = f.parse_conf(GENMCONF_EXAMPLE.replace('%192.168.1.1"', '%192.168.1.1,10.0.0.12%8%%eth0%22%"'), "/etc/ctys.d/pm.conf")
    records = f.enum_records_for(conf, "lab02", uid="root", gid="root", netnames={"192.168.1.12": "lab02.soho."}, accelerator="VMX")
    assert [r.tcp for r in records] == ["192.168.1.12", "10.0.0.12"]
    assert records[0].to_line() == ENUM_EXAMPLE  # the reference's example record, field for field
    assert len(records[1].to_line().split(";")) == 47


# --- macmap, ethers ------------------------------------------------------------------


def test_macmap_reads_the_n_column_order_and_writes_sorted_upper_case():
    text = ("lab03;00:1a:2b:3c:4d:03;192.168.1.13;\nlab02;00:1A:2B:3C:4D:5E;192.168.1.12;\n# c\n\n"
            "bad;zz;1.2.3.4;\nonly\nx;00:1A:2B:3C:4D:5E;1.2.3;\nnoip;02:00:00:00:00:01\n")
    rows, issues = f.macmap_rows(text, "m")
    assert rows == [("lab03", "00:1A:2B:3C:4D:03", "192.168.1.13", 1), ("lab02", "00:1A:2B:3C:4D:5E", "192.168.1.12", 2),
                    ("noip", "02:00:00:00:00:01", "", 8)]
    assert [i.line for i in issues] == [5, 6, 7]
    entries = [f.MacmapEntry(name, mac, ip) for name, mac, ip, _number in rows]
    assert f.format_macmap(entries) == "lab02;00:1A:2B:3C:4D:5E;192.168.1.12;\nlab03;00:1A:2B:3C:4D:03;192.168.1.13;\nnoip;02:00:00:00:00:01;;\n"


def test_macmap_written_is_read_by_pm_wake_lookup():
    from ansible_collections.ctys.pm.plugins.module_utils._wol import packet as _wol

    text = f.format_macmap([f.MacmapEntry("lab01", "02:c7:5e:00:00:01", "198.18.0.11")])
    assert _wol.read_macmap(text)["lab01"] == {"mac": "02:c7:5e:00:00:01", "ip": "198.18.0.11"}


def test_ethers():
    entries, issues = f.parse_ethers("02:00:00:00:00:03 lab03 # c\n# x\nzz lab9\n1:2:3:4:5:6 a b\n", "e")
    assert [(e.mac, e.name) for e in entries] == [("02:00:00:00:00:03", "lab03")]
    assert [str(i) for i in issues] == ["e:3: MAC 'zz' is not a MAC address; line skipped",
                                        "e:4: has 3 fields instead of 'MAC name'; line skipped"]
    assert f.format_ethers(entries) == "02:00:00:00:00:03 lab03\n"


# --- group files ----------------------------------------------------------------------


def test_real_group_file_with_per_host_options(fixture_text):
    group = f.parse_group(fixture_text("ctys/7.txt"), "ctys-lab")
    assert [(m.user, m.name, m.options) for m in group.members] == [
        ("root", "lab02", "-a create=l:LAB02,reuse -c local -g 1268x992:A11:ALL -b 1,2"),
        ("root", "lab03", "-a create=l:LAB03,reuse -c local -g 1268x994:A21:ALL -b 1,2"),
    ]  # '#root@lab01...' is a comment
    assert group.issues == []


def test_real_plain_group_file(fixture_text):
    group = f.parse_group(fixture_text("ctys/8.txt"), "ctys-tst-001")
    assert [m.name for m in group.members] == ["tst000", "tst001"] and group.includes == []


def test_group_syntax():
    text = '#include a/b, c\nCONTEXT\'(-d 2,s:16 -b sync,par)\'\nh1,h2 "h3"\tu@h4(-x (nested) y)\nbroken(-a\n#include\nbad!name\n'
    group = f.parse_group(text, "g")
    assert group.includes == [("a/b", 1), ("c", 1)]
    assert group.context == "-d 2,s:16 -b sync,par"
    assert [(m.user, m.name, m.options) for m in group.members] == [("", "h1", ""), ("", "h2", ""), ("", "h3", ""), ("u", "h4", "-x (nested) y")]
    assert [str(i) for i in group.issues] == [
        "g:4: has unbalanced parentheses; line skipped",
        "g:5: #include names no group; line skipped",
        "g:6: member 'bad!name' is not [user@]host; member skipped",
    ]


def test_group_resolution_includes_nesting_and_cycles(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "one").write_text("#include two\nh1 three\n")
    (tmp_path / "two").write_text("h2\n#include a/one\n")
    (tmp_path / "three").write_text("root@h3\n#include nowhere\n")
    import os

    groups, issues = f.resolve_groups(["a/one"], [str(tmp_path)], lambda p: open(p).read(), os.path.isfile)
    assert groups["a/one"].children == ["two", "three"] and [m.name for m in groups["a/one"].hosts] == ["h1"]
    assert [m.name for m in groups["two"].hosts] == ["h2"] and groups["two"].children == []
    assert [(m.user, m.name) for m in groups["three"].hosts] == [("root", "h3")]
    messages = sorted(i.message for i in issues)
    assert messages == ["group 'a/one' includes itself; not followed", f"group 'nowhere' was not found in {tmp_path}; skipped"]


# --- capabilities ---------------------------------------------------------------------


def test_hwcap_and_stackcap():
    hw = f.parse_hwcap("CPU:2xIntel-6-15-11-4096KB-2400MHz-VMX-PAE,RAM:4018M,SWAP:8191M,FS:/-50000M%/home-400000M,7")
    assert hw["cpu"] == {"raw": "2xIntel-6-15-11-4096KB-2400MHz-VMX-PAE", "count": 2, "vendor": "Intel", "family": "6", "model": "15",
                         "stepping": "11", "cache": "4096KB", "mhz": 2400, "flags": ["VMX", "PAE"]}
    assert hw["ram_mb"] == 4018 and hw["swap_mb"] == 8191 and hw["other"] == ["7"]
    assert hw["fs"] == [{"mount": "/", "size_mb": 50000}, {"mount": "/home", "size_mb": 400000}]
    assert f.parse_hwcap("CPU:weird,RAM:lots") == {"cpu": {"raw": "weird"}, "ram_mb": "lots"}
    cap = "PM-01.10.008-x86_64-WoLTarget-WoLRemote%VMStack-01.11.007,XEN-01.11"
    assert f.parse_stackcap(cap) == ["PM-01.10.008-x86_64-WoLTarget-WoLRemote%VMStack-01.11.007", "XEN-01.11"]
    assert f.stackcap_wol(cap) is True and f.stackcap_wol("PM-1-x86_64-WoLLocal") is False and f.stackcap_wol("XEN-1") is None


def test_cached_parses_hand_out_independent_copies():
    # HWCAP, STACKCAP and SSH ports are parsed once per distinct text; changing one result must not change the next
    text = "CPU:2xIntel-6-15-11-4096KB-2400MHz-VMX,FS:/-50000M,RAM:4018M,7"
    first = f.parse_hwcap(text)
    first["cpu"]["flags"].append("PAE")
    first["fs"][0]["mount"] = "/changed"
    first["other"].clear()
    assert f.parse_hwcap(text) == {"cpu": {"raw": "2xIntel-6-15-11-4096KB-2400MHz-VMX", "count": 2, "vendor": "Intel", "family": "6", "model": "15",
                                           "stepping": "11", "cache": "4096KB", "mhz": 2400, "flags": ["VMX"]},
                                   "fs": [{"mount": "/", "size_mb": 50000}], "ram_mb": 4018, "other": ["7"]}
    caps = f.parse_stackcap("PM-1-WoLTarget,XEN-1")
    caps.append("x")
    assert f.parse_stackcap("PM-1-WoLTarget,XEN-1") == ["PM-1-WoLTarget", "XEN-1"]
    ports = f.parse_ssh_ports("22-2222")
    ports.append(1)
    assert f.parse_ssh_ports("22-2222") == [22, 2222] and f.parse_ssh_ports("x") is None and f.parse_ssh_ports("") == []


@pytest.mark.parametrize("ip,mask,expected", [("192.168.1.12", "255.255.255.0", "192.168.1.255"), ("10.0.0.6", "24", "10.0.0.255"),
                                              ("198.18.0.11", "16", "198.18.255.255"), ("10.0.0.1", "32", None), ("fd00::1", "64", None), ("", "24", None)])
def test_directed_broadcast(ip, mask, expected):
    assert f.directed_broadcast(ip, mask) == expected

"""The ctys inventory plugin: build_inventory on prepared sources, _populate into a real InventoryData."""

from __future__ import annotations

import pytest

from ansible_collections.ctys.pm.plugins.module_utils._ctys.formats import CtysFileError, EnumRecord
from ansible_collections.ctys.pm.plugins.plugin_utils.ctys_inventory import SourceFile, Sources, build_inventory, collect_sources


def enum_line(**values):
    return EnumRecord(**values).to_line()


PM = dict(host="lab02", session_type="PM", label="lab02", category="PM", os="Linux", netname="lab02.soho.", netmask="255.255.255.0")


def test_one_record_per_interface_merges_into_one_host_and_tcp_comes_from_macmap():
    enum = "\n".join([
        enum_line(**PM, mac="00:1A:2B:3C:4D:5E", tcp="192.168.1.12", sshport="22", ifname="eth0"),
        enum_line(**PM, mac="00:1a:2b:3c:4d:5f", ifname="eth1"),
    ])
    sources = Sources(enum_files=[SourceFile("enum.fdb", enum)], macmap_files=[SourceFile("macmap.fdb", "lab02b;00:1A:2B:3C:4D:5F;10.9.9.9;\n")])
    data = build_inventory(sources)
    assert list(data["hosts"]) == ["lab02"]
    hv = data["hosts"]["lab02"]
    assert hv["ansible_host"] == "192.168.1.12" and hv["ansible_port"] == 22 and hv["pm_mac"] == "00:1a:2b:3c:4d:5e"
    assert hv["pm_wol_broadcast"] == "192.168.1.255"
    assert [(i["ifname"], i["ip"]) for i in hv["pm_interfaces"]] == [("eth0", "192.168.1.12"), ("eth1", "10.9.9.9")]
    assert data["groups"]["ctys_pm"]["hosts"] == ["lab02"] and "ctys_macmap" not in data["groups"]
    assert data["warnings"] == []


@pytest.mark.parametrize("host_key,name", [("label", "lab02"), ("netname", "lab02.soho"), ("host", "lab02")])
def test_host_key(host_key, name):
    sources = Sources(enum_files=[SourceFile("e", enum_line(**PM, tcp="192.168.1.12"))])
    assert list(build_inventory(sources, host_key=host_key)["hosts"]) == [name]


def test_bad_host_key_is_refused():
    with pytest.raises(CtysFileError, match="host_key 'ip' is not valid; use one of label, netname, host"):
        build_inventory(Sources(), host_key="ip")


def test_guests_multipath_and_session_type_groups():
    vm = dict(session_type="QEMU", label="vm1", category="VM", tcp="10.0.0.50", mac="52:54:00:12:34:56")
    enum = "\n".join([enum_line(host="lab02", **vm), enum_line(host="lab03", **vm), enum_line(host="lab03", session_type="PM")])
    data = build_inventory(Sources(enum_files=[SourceFile("e", enum)]))
    assert data["hosts"]["vm1"]["pm_containing_machine"] == "lab02"
    assert data["groups"]["ctys_guests_of_lab02"]["hosts"] == ["vm1"] == data["groups"]["ctys_guests_of_lab03"]["hosts"]
    assert data["groups"]["ctys_qemu"]["hosts"] == ["vm1"] and data["groups"]["ctys_vm"]["hosts"] == ["vm1"]
    # a PM whose config ctys could not read: only host and session type
    assert data["groups"]["ctys_pm"]["hosts"] == ["lab03"] and data["hosts"]["lab03"]["pm_category"] == "PM"


def test_config_files_containing_host_and_templates_skipped(fixture_text):
    vbox = fixture_text("ctys/2.txt").replace("#@#MAGICID-IGNORE", "").replace("MARKER_LABEL", "vb1").replace("MARKER_MAC", "08:00:27:00:00:01")
    vbox = vbox.replace('"MARKER_IP"', '"10.1.7.1%16%%eth0%22%"').replace('"MARKER_CATEGORY"', '"VM"')
    sources = Sources(config_files=[SourceFile("t.ctys", fixture_text("ctys/2.txt")), SourceFile("vb1.ctys", vbox, containing="lab05")])
    data = build_inventory(sources)
    assert list(data["hosts"]) == ["vb1"]
    hv = data["hosts"]["vb1"]
    assert (hv["pm_session_type"], hv["pm_category"], hv["pm_containing_machine"], hv["ansible_host"]) == ("VBOX", "VM", "lab05", "10.1.7.1")
    assert hv["pm_wol_broadcast"] == "10.1.255.255" and hv["pm_ctys_id"] == "vb1.ctys"
    assert data["warnings"] == []  # the template's MARKER_MAC is not reported: the file is not a machine


def test_macmap_only_hosts_and_ethers():
    sources = Sources(
        enum_files=[SourceFile("e", enum_line(host="lab03", session_type="PM"))],
        macmap_files=[SourceFile("m", "lab04.soho.;00:1A:2B:3C:4D:04;192.168.1.14;\n")],
        ethers=SourceFile("ethers", "02:00:00:00:00:03 lab03\nzz x\n"),
    )
    data = build_inventory(sources)
    assert data["hosts"]["lab04"]["pm_mac"] == "00:1a:2b:3c:4d:04" and data["groups"]["ctys_macmap"]["hosts"] == ["lab04"]
    assert data["hosts"]["lab03"]["pm_mac"] == "02:00:00:00:00:03"
    assert data["warnings"] == ["ethers:2: MAC 'zz' is not a MAC address; line skipped"]
    assert "lab04" not in build_inventory(sources, macmap_hosts=False)["hosts"]


def test_groups_users_options_and_aliases(tmp_path):
    (tmp_path / "db").mkdir()
    (tmp_path / "db" / "enum.fdb").write_text(enum_line(**PM, tcp="192.168.1.12") + "\n")
    groups = tmp_path / "groups"
    (groups / "tst").mkdir(parents=True)
    (groups / "tst" / "lab").write_text("CONTEXT'(-b sync)'\nroot@lab02.soho'(-a create=l:X,reuse)' other\n#include tst/more\n")
    (groups / "tst" / "more").write_text("extra\n")
    sources = collect_sources(db_paths=[str(tmp_path / "db")], groups_paths=[str(groups)])
    data = build_inventory(sources)
    lab = data["groups"]["ctys_group_tst_lab"]
    assert lab["hosts"] == ["lab02", "other"] and lab["children"] == ["ctys_group_tst_more"] and lab["vars"] == {"pm_ctys_context": "-b sync"}
    assert data["hosts"]["lab02"]["ansible_user"] == "root"
    assert data["hosts"]["lab02"]["pm_ctys_groups"] == {"ctys_group_tst_lab": {"user": "root", "options": "-a create=l:X,reuse", "context": "-b sync"}}
    assert "ansible_user" not in build_inventory(sources, group_users=False)["hosts"]["lab02"]
    assert "g_tst_more" in build_inventory(sources, groups_prefix="g_")["groups"]


def test_missing_files_named_explicitly_are_errors_defaults_are_not(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert collect_sources(explicit_db=False, explicit_groups=False).enum_files == []
    with pytest.raises(CtysFileError, match="db_paths '.*nope' is not a folder"):
        collect_sources(db_paths=[str(tmp_path / "nope")], groups_paths=[], explicit_groups=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CtysFileError, match="holds neither enum.fdb nor macmap.fdb"):
        collect_sources(db_paths=[str(tmp_path / "empty")], groups_paths=[])
    with pytest.raises(CtysFileError, match="config_files '.*pm.conf' does not exist"):
        collect_sources(db_paths=[], config_files=[str(tmp_path / "pm.conf")], groups_paths=[])
    assert collect_sources(db_paths=[], config_files=[str(tmp_path / "*.conf")], groups_paths=[]).config_files == []
    with pytest.raises(CtysFileError, match="ethers '.*' does not exist"):
        collect_sources(db_paths=[], groups_paths=[], ethers=str(tmp_path / "ethers"))
    with pytest.raises(CtysFileError, match="groups_paths '.*' is not a folder"):
        collect_sources(db_paths=[], groups_paths=[str(tmp_path / "g")])


def test_fingerprint_follows_file_changes(tmp_path):
    (tmp_path / "enum.fdb").write_text(enum_line(**PM) + "\n")
    first = collect_sources(db_paths=[str(tmp_path)], groups_paths=[]).fingerprint
    (tmp_path / "enum.fdb").write_text(enum_line(**PM) + "\n" + enum_line(**{**PM, "label": "lab09"}) + "\n")
    assert collect_sources(db_paths=[str(tmp_path)], groups_paths=[]).fingerprint != first


# --- the plugin itself, with Ansible's real inventory objects ---------------------------------


@pytest.fixture
def plugin():
    from ansible.inventory.data import InventoryData
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar

    from ansible_collections.ctys.pm.plugins.inventory.ctys import InventoryModule

    module = InventoryModule()
    module.inventory = InventoryData()
    module.loader = DataLoader()
    module.templar = Templar(loader=module.loader)
    module._options = {"strict": False, "compose": {}, "groups": {}, "keyed_groups": [], "leading_separator": True,
                       "use_extra_vars": False}
    return module


def test_populate_adds_hosts_groups_and_unsafe_values(plugin):
    data = {
        "hosts": {"lab02": {"ansible_host": "192.168.1.12", "pm_dist": "{{ lookup('pipe', 'id') }}", "pm_interfaces": [{"mac": "{{x}}"}]}},
        "groups": {"ctys_pm": {"hosts": ["lab02"], "children": ["ctys_group_a"], "vars": {"pm_ctys_context": "-b sync"}},
                   "ctys_group_a": {"hosts": [], "children": [], "vars": {}}},
        "warnings": ["enum.fdb:4: has 5 fields instead of 47; line skipped"],
    }
    warnings = []
    plugin.display = type("D", (), {"warning": lambda self, msg: warnings.append(msg)})()
    plugin._populate(data)
    host = plugin.inventory.get_host("lab02")
    assert host.vars["ansible_host"] == "192.168.1.12"
    assert [g.name for g in host.get_groups()] == ["ctys_pm"]
    assert "ctys_group_a" in [g.name for g in plugin.inventory.groups["ctys_pm"].child_groups]
    assert plugin.inventory.groups["ctys_pm"].vars["pm_ctys_context"] == "-b sync"
    assert warnings == ["ctys inventory: enum.fdb:4: has 5 fields instead of 47; line skipped"]
    # untrusted: rendering the value through Ansible's templar leaves the template text alone
    from ansible.template import is_trusted_as_template

    assert not is_trusted_as_template(host.vars["pm_dist"])
    assert plugin.templar.template(host.vars["pm_dist"]) == "{{ lookup('pipe', 'id') }}"


def test_populate_keeps_what_other_sources_set(plugin):
    # host variables go straight to the Host (not through the inventory's per-value visitor): still merged, still untrusted
    plugin.inventory.add_host("lab02")
    plugin.inventory.set_variable("lab02", "site", "a")
    plugin.display = type("D", (), {"warning": lambda self, msg: None})()
    plugin._populate({"hosts": {"lab02": {"pm_dist": "{{ x }}"}, "lab03": {}}, "groups": {"ctys_pm": {"hosts": ["lab02", "lab03"]}}, "warnings": []})
    from ansible.template import is_trusted_as_template

    assert {k: v for k, v in plugin.inventory.get_host("lab02").vars.items() if not k.startswith("inventory_")} == {"site": "a", "pm_dist": "{{ x }}"}
    assert not is_trusted_as_template(plugin.inventory.get_host("lab02").vars["pm_dist"])
    assert sorted(h.name for h in plugin.inventory.groups["ctys_pm"].hosts) == ["lab02", "lab03"]


def test_populate_compose_and_keyed_groups(plugin):
    from ansible.template import trust_as_template  # the configuration file is trusted, the ctys files are not

    plugin._options.update(compose={"pm_wol_port": trust_as_template("9")}, groups={"wol": trust_as_template("pm_wol_capable")},
                           keyed_groups=[{"key": trust_as_template("pm_session_type"), "prefix": "stype", "separator": "_"}])
    plugin._populate({"hosts": {"a": {"pm_session_type": "QEMU", "pm_wol_capable": True}, "b": {"pm_session_type": "PM"}},
                      "groups": {}, "warnings": []})
    assert plugin.inventory.get_host("a").vars["pm_wol_port"] == 9
    assert sorted(h.name for h in plugin.inventory.groups["stype_QEMU"].hosts) == ["a"]
    assert [h.name for h in plugin.inventory.groups["wol"].hosts] == ["a"]


def test_verify_file_wants_ctys_yml(plugin, tmp_path):
    for name, wanted in (("inv.ctys.yml", True), ("inv.ctys.yaml", True), ("inv.yml", False)):
        (tmp_path / name).write_text("plugin: ctys.pm.ctys\n")
        assert bool(plugin.verify_file(str(tmp_path / name))) is wanted

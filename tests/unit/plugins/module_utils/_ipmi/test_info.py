"""pm_bmc_info's IPMI side with pyghmi's Command replaced at its factory by a replay of recorded BMC answers."""

from __future__ import annotations

import time

import pytest
from pyghmi.ipmi.private.util import get_ipmi_error

from ansible_collections.ctys.pm.plugins.module_utils._bmc.options import BmcConnection
from ansible_collections.ctys.pm.plugins.module_utils._errors import PmAuthError, PmConnectionError, PmTimeoutError
from ansible_collections.ctys.pm.plugins.module_utils._ipmi import info
from ansible_collections.ctys.pm.plugins.module_utils._ipmi import session as _ipmi_session
from pmtest.ipmi_recorded import NAMES, colon_fields, fru_print, load, sdr_names, sel_elist, sensor_column


class ReplayBmc:
    """Answers the commands pm_bmc_info sends from one recorded fixture; ``refuse`` maps (netfn, cmd) to a completion code."""

    def __init__(self, recorded, refuse=None, silent=False):
        self.recorded = recorded
        self.refuse = dict(refuse or {})
        self.silent = silent
        self.commands = []
        records = recorded["sel_records"]
        ids = [record[0] | record[1] << 8 for record in records]
        self.sel = {rid: (record, ids[i + 1] if i + 1 < len(ids) else 0xFFFF) for i, (rid, record) in enumerate(zip(ids, records))}
        self.sdr = {entry["id"]: entry for entry in recorded.get("sdr_records", [])}

    def answer(self, netfn, command, data):
        if (netfn, command) in self.refuse:
            return self.refuse[(netfn, command)], b""
        r = self.recorded
        simple = {(0x06, 0x01): "device_id", (0x06, 0x37): "system_guid", (0x06, 0x08): "device_guid", (0x0A, 0x10): "fru_info",
                  (0x0A, 0x40): "sel_info", (0x2C, 0x02): "dcmi_power"}
        if (netfn, command) in simple:
            value = r[simple[(netfn, command)]]
            return (value["cc"], b"") if isinstance(value, dict) else (0, bytes(value))
        if (netfn, command) == (0x0A, 0x11):
            offset, count = data[1] | data[2] << 8, data[3]
            chunk = bytes(r["fru_image"][offset:offset + count])
            return 0, bytes([len(chunk)]) + chunk
        if (netfn, command) in ((0x0A, 0x42), (0x0A, 0x22)):
            return 0, b"\x01\x00"
        if (netfn, command) == (0x0A, 0x43):
            record, nxt = self.sel[data[2] | data[3] << 8] if (data[2] | data[3] << 8) else next(iter(self.sel.values()))
            return 0, nxt.to_bytes(2, "little") + bytes(record)
        if (netfn, command) == (0x0A, 0x23):
            entry = self.sdr.get(data[2] | data[3] << 8) or next(iter(self.sdr.values()))
            return 0, entry["next"].to_bytes(2, "little") + bytes(entry["record"][data[4]:data[4] + data[5]])
        if (netfn, command) == (0x0C, 0x02):
            if data[0] != 1:
                return 0xCC, b""
            value = r["lan"][str(data[1])]
            return (value["cc"], b"") if isinstance(value, dict) else (0, bytes(value))
        return 0xC1, b""


class ReplayCommand:
    bmcs = {}

    def __init__(self, bmc, userid, password, port, kg, privlevel, onlogon, keepalive):
        self.bmc = ReplayCommand.bmcs[bmc]
        onlogon({"success": True}, self)

    def raw_command(self, netfn, command, data=()):
        self.bmc.commands.append((netfn, command, tuple(data)))
        if self.bmc.silent:
            return {}
        code, payload = self.bmc.answer(netfn, command, list(data))
        if code:
            return {"code": code, "error": get_ipmi_error({"code": code, "netfn": netfn, "command": command})}
        return {"code": 0, "data": payload}


@pytest.fixture(autouse=True)
def replay(monkeypatch):
    ReplayCommand.bmcs = {}
    monkeypatch.setattr(_ipmi_session, "command_factory", ReplayCommand)
    monkeypatch.setattr(_ipmi_session, "_pump", lambda seconds: time.sleep(min(seconds, 0.01)))
    monkeypatch.setattr(_ipmi_session, "logout", lambda command: None)


def job_for(host, bmc, **fields):
    ReplayCommand.bmcs[host] = bmc
    conn = BmcConnection.from_params({"bmc": host, "user": "admin", "password": "secret"})
    return info.InfoJob(conn, host, **fields)


@pytest.mark.parametrize("name", NAMES)
def test_every_section_matches_ipmitools_view_of_the_same_bmc(name):
    recorded = load(name)
    bmc = ReplayBmc(recorded)
    [job] = info.run_bounded([job_for("bmc1", bmc)], 10)
    assert job.error is None, job.error and job.error.msg
    views = recorded["ipmitool"]
    fru = fru_print(views["fru print 0"])
    identity = job.data["identity"]
    assert (identity["manufacturer"], identity["product"], identity["model"], identity["part_number"], identity["serial_number"],
            identity["asset_tag"]) == (fru["manufacturer"], fru["product"], fru["part_number"], fru["part_number"], fru["serial_number"],
                                       fru["asset_tag"])
    assert identity["board"] == {"manufacturer": fru["board_manufacturer"], "product": fru["board_product"], "serial_number": fru["board_serial"],
                                 "part_number": fru["board_part_number"], "manufactured": fru["board_manufactured"]}
    assert identity["uuid"] == colon_fields(views["mc guid"])["System GUID"]
    mc = colon_fields(views["mc info"])
    firmware = job.data["firmware"]
    assert firmware["bmc_version"] == mc["Firmware Revision"]
    assert firmware["ipmi_version"] == mc["IPMI Version"]
    assert firmware["manufacturer_id"] == int(mc["Manufacturer ID"])
    assert firmware["product_id"] == int(mc["Product ID"].split()[0])
    assert firmware["items"] == [{"name": "BMC", "version": mc["Firmware Revision"]}]
    rows = sel_elist(views["sel elist"])
    events = job.data["events"]
    assert events["total"] == events["count"] == len(rows)
    assert [(e["id"], e["time"], sensor_column(e), e["message"], e["direction"]) for e in events["entries"]] == [
        (row["id"], row["time"], row["sensor"], row["message"], row["direction"]) for row in rows]
    assert events["critical"] == sum(1 for e in events["entries"] if e["severity"] == "critical")
    lan = colon_fields(views["lan print 1"])
    network = job.data["network"]
    assert (network["address"], network["netmask"], network["gateway"], network["mac"], network["channel"]) == (
        lan["IP Address"], lan["Subnet Mask"], lan["Default Gateway IP"], lan["MAC Address"], 1)
    assert network["vlan"] is None and lan["802.1q VLAN ID"] == "Disabled"
    if name == "ipmi_sim":  # no DCMI: unsupported, not zero
        assert job.unsupported == ["power"] and "power" not in job.data
        assert any(name for name in sdr_names(views["sdr elist"]).values())
    else:
        dcmi = colon_fields(views["dcmi power reading"])
        assert job.unsupported == []
        assert job.data["power"] == {"watts": int(dcmi["Instantaneous power reading"].split()[0]),
                                     "minimum": int(dcmi["Minimum during sampling period"].split()[0]),
                                     "maximum": int(dcmi["Maximum during sampling period"].split()[0]),
                                     "average": int(dcmi["Average power reading over sample period"].split()[0]), "period": 60.0}


def test_only_the_asked_sections_are_read():
    bmc = ReplayBmc(load("lab_bmc"))
    [job] = info.run_bounded([job_for("bmc1", bmc, sections=("firmware",))], 10)
    assert list(job.data) == ["firmware"]
    assert {(netfn, command) for netfn, command, _data in bmc.commands} == {(0x06, 0x01)}


def test_events_since_and_max_keep_the_newest():
    recorded = load("lab_bmc")
    [job] = info.run_bounded([job_for("bmc1", ReplayBmc(recorded), sections=("events",), events_max=1)], 10)
    assert [e["id"] for e in job.data["events"]["entries"]] == [len(recorded["sel_records"])]
    assert job.data["events"]["total"] == len(recorded["sel_records"]) and job.data["events"]["count"] == 1
    [job] = info.run_bounded([job_for("bmc2", ReplayBmc(recorded), sections=("events",), events_since=4102444800.0)], 10)  # 2100
    assert job.data["events"]["entries"] == [] and job.data["events"]["count"] == 0


@pytest.mark.parametrize("code", [0xC1, 0xCB, 0xD4])
def test_sections_refused_by_completion_code_are_unsupported_not_failures(code):
    refuse = {(0x0A, 0x40): code, (0x2C, 0x02): code, (0x0A, 0x10): code, (0x06, 0x37): code, (0x06, 0x08): code, (0x0C, 0x02): code}
    [job] = info.run_bounded([job_for("bmc1", ReplayBmc(load("lab_bmc"), refuse))], 10)
    assert job.error is None
    assert job.unsupported == ["identity", "events", "power", "network"]
    assert list(job.data) == ["firmware"]


def test_other_completion_codes_fail_the_job_naming_the_bmc():
    [job] = info.run_bounded([job_for("bmc1", ReplayBmc(load("lab_bmc"), {(0x06, 0x01): 0xD4}))], 10)
    assert isinstance(job.error, PmAuthError)  # firmware (Get Device ID) is not optional
    [job] = info.run_bounded([job_for("bmc2", ReplayBmc(load("lab_bmc"), {(0x0A, 0x43): 0xFF}), sections=("events",))], 10)
    assert isinstance(job.error, PmConnectionError) and "bmc2" in job.error.msg


def test_a_silent_bmc_fails_within_the_bound_while_the_other_answers():
    good = job_for("good", ReplayBmc(load("lab_bmc")))
    silent = job_for("silent", ReplayBmc(load("lab_bmc"), silent=True))
    jobs = info.run_bounded([good, silent], 2)
    assert jobs[0].error is None and jobs[0].data["firmware"]["bmc_version"] == "1.23"
    assert isinstance(jobs[1].error, PmTimeoutError) and "silent" in jobs[1].error.msg


class OnceRefusingBmc(ReplayBmc):
    """Refuses the first ``times`` requests of a command with a completion code, then answers as recorded."""

    def __init__(self, recorded, command, code, times=1):
        super().__init__(recorded)
        self.once = (command, code, times)

    def answer(self, netfn, command, data):
        wanted, code, times = self.once
        if (netfn, command) == wanted and times:
            self.once = (wanted, code, times - 1)
            return code, b""
        return super().answer(netfn, command, data)


def test_a_cancelled_sel_reservation_is_renewed_and_the_walk_goes_on():
    recorded = load("ipmi_sim")
    bmc = OnceRefusingBmc(recorded, (0x0A, 0x43), 0xC5)
    [job] = info.run_bounded([job_for("bmc1", bmc, sections=("events",))], 10)
    assert job.error is None
    assert job.data["events"]["count"] == len(recorded["sel_records"])
    assert [command for _netfn, command, _data in bmc.commands].count(0x42) == 2  # reserved again


def test_fru_reads_ask_for_less_when_the_bmc_says_the_answer_is_too_long():
    bmc = OnceRefusingBmc(load("lab_bmc"), (0x0A, 0x11), 0xCA)
    [job] = info.run_bounded([job_for("bmc1", bmc, sections=("identity",))], 10)
    assert job.error is None and job.data["identity"]["serial_number"] == "S-lab01"
    counts = [data[3] for netfn, command, data in bmc.commands if (netfn, command) == (0x0A, 0x11)]
    assert counts[0] == 24 and max(counts[1:]) == 12

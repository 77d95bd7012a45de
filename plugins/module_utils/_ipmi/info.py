# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a BMC knows over IPMI: identity (FRU, device GUID), firmware, event log, power draw, LAN settings.

One :class:`InfoJob` per BMC; :func:`run_jobs` logs in to all of them at once and
drives each job's :func:`_flow` on pyghmi's event loop (``_ipmi.flows``), so a slow
BMC delays only itself; :func:`run_bounded` adds the hard bound of ``_bmc.guard``.
Read only. A section the BMC does not offer (decided by the completion code of
its first command, never by message text) goes into ``unsupported``; any other
failure fails the job.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Dict, Generator, List, Optional, Sequence, Tuple

from ansible_collections.ctys.pm.plugins.module_utils._bmc import guard
from ansible_collections.ctys.pm.plugins.module_utils._bmc.info_request import SECTIONS, select_events
from ansible_collections.ctys.pm.plugins.module_utils._bmc.options import BmcConnection
from ansible_collections.ctys.pm.plugins.module_utils._deadline import Deadline
from ansible_collections.ctys.pm.plugins.module_utils._errors import PmError, PmTimeoutError
from ansible_collections.ctys.pm.plugins.module_utils._ipmi import flows, fru, sel
from ansible_collections.ctys.pm.plugins.module_utils._ipmi.flows import Ask, Mark

# completion codes that mean "this BMC does not offer it": invalid command, command not supported for the
# LUN, parameter out of range, requested sensor/data/record not present, invalid data field,
# insufficient privilege, not supported in the present state; 0x80 is Get LAN Configuration
# Parameters' "parameter not supported"
UNSUPPORTED = frozenset((0xC1, 0xC2, 0xC9, 0xCB, 0xCC, 0xD4, 0xD5))
LAN_UNSUPPORTED = UNSUPPORTED | {0x80}
# Read FRU Data asks for at most this many bytes at once (fits every BMC's message size); the image read is bounded
FRU_CHUNK = 24
FRU_MAX = 4096
FRU_TOO_LONG = frozenset((0xC7, 0xC8, 0xCA))  # request/response length: ask for less
RESERVATION_CANCELLED = 0xC5
SEL_MAX = 4096  # records walked at most (the SEL record id space is 16 bits; real logs hold a few thousand)
SDR_MAX = 1024
LAN_CHANNELS = tuple(range(1, 12))
IP_SOURCES = {1: "static", 2: "dhcp", 3: "bios", 4: "other"}


@dataclass
class InfoJob:
    """One BMC: what to gather, and what came back."""

    conn: BmcConnection
    label: str
    sections: Tuple[str, ...] = SECTIONS
    events_since: Optional[float] = None  # epoch seconds
    events_max: Optional[int] = None
    data: Dict[str, Any] = field(default_factory=dict)
    unsupported: List[str] = field(default_factory=list)
    command: Any = None
    error: Optional[PmError] = None
    started: float = field(default_factory=time.monotonic)
    finished: Optional[float] = None
    step: str = guard.LOGIN

    def fail(self, error: PmError) -> None:
        if self.error is None:
            self.error = error
        self.finished = time.monotonic()

    @property
    def elapsed(self) -> float:
        return round((self.finished or time.monotonic()) - self.started, 3)


def code_of(error: PmError) -> Optional[int]:
    return flows.completion_code(error)


Sub = Generator[Any, Any, Any]


def _ask_or_none(ask: Ask, codes: frozenset = UNSUPPORTED) -> Sub:
    """The answer to ``ask``, or None when the BMC answers with one of ``codes``."""
    try:
        return (yield ask)
    except PmError as error:
        if code_of(error) in codes:
            return None
        raise


def _u16(data: Sequence[int], at: int) -> int:
    return data[at] | (data[at + 1] << 8)


# --- firmware ------------------------------------------------------------------------------------

def firmware_of(data: Sequence[int]) -> Dict[str, Any]:
    """Get Device ID's answer as the firmware section (versions in ipmitool ``mc info``'s form)."""
    if len(data) < 11:
        raise PmError(f"Get Device ID answered {len(data)} bytes, fewer than the 11 IPMI requires")
    version = f"{data[2] & 0x7F}.{data[3]:02x}"
    items: List[Dict[str, Any]] = [{"name": "BMC", "version": version}]
    aux = list(data[11:15])
    if len(aux) == 4 and any(aux):
        items.append({"name": "BMC auxiliary", "version": "0x" + bytes(aux).hex()})
    return {
        "bmc_version": version,
        "ipmi_version": f"{data[4] & 0x0F}.{data[4] >> 4}",
        "manufacturer_id": data[6] | (data[7] << 8) | ((data[8] & 0x0F) << 16),
        "product_id": _u16(data, 9),
        "items": items,
    }


# --- identity ------------------------------------------------------------------------------------

def _read_fru(deadline: Deadline) -> Sub:
    """FRU device 0's image (only as far as its chassis, board and product areas reach), or None if absent."""
    info = yield from _ask_or_none(Ask("reading the FRU inventory area info", 0x0A, 0x10, [0x00]))
    if info is None or len(info) < 3:
        return None
    size = min(_u16(info, 0), FRU_MAX)
    words = bool(info[2] & 0x01)  # accessed by 16-bit words: offsets and counts in words
    image = bytearray()
    chunk = FRU_CHUNK
    while len(image) < min(_needed(bytes(image)), size):
        if deadline.expired:
            raise PmTimeoutError(f"reading the FRU inventory did not finish within the timeout of {deadline.seconds:g} s")
        count = min(chunk, size - len(image))
        at = len(image) // 2 if words else len(image)
        try:
            answer = yield Ask("reading the FRU data", 0x0A, 0x11, [0x00, at & 0xFF, at >> 8, count // 2 if words else count])
        except PmError as error:
            if code_of(error) in FRU_TOO_LONG and chunk > 8:
                chunk //= 2
                continue
            if code_of(error) in UNSUPPORTED:
                return None
            raise
        if not answer or answer[0] == 0:
            break  # the BMC returns nothing more: decode what there is
        got = answer[0] * 2 if words else answer[0]
        image.extend(answer[1:1 + got])
    return bytes(image)


def _needed(image: bytes) -> int:
    """How many bytes of the image the header and the areas known so far need (8 at first)."""
    if len(image) < 8:
        return 8
    needed = 8
    for offset in image[2:5]:  # chassis, board, product
        if offset:
            start = offset * 8
            needed = max(needed, start + 2)
            if len(image) >= start + 2:
                needed = max(needed, start + image[start + 1] * 8)
    return needed


def _identity(job: InfoJob, deadline: Deadline) -> Sub:
    # Get System GUID (what ipmitool's "mc guid" asks, the machine's UUID), else Get Device GUID
    guid = yield from _ask_or_none(Ask("reading the system GUID", 0x06, 0x37))
    if guid is None:
        guid = yield from _ask_or_none(Ask("reading the device GUID", 0x06, 0x08))
    uuid = fru.guid(guid) if guid is not None else None
    image = yield from _read_fru(deadline)
    decoded: Optional[Dict[str, Any]] = None
    if image is not None:
        try:
            decoded = fru.decode(image)
        except fru.FruDecodeError:
            decoded = None
    if decoded is None and uuid is None:
        job.unsupported.append("identity")
        return
    job.data["identity"] = fru.identity(decoded, uuid)


# --- events --------------------------------------------------------------------------------------

def _sdr_names(deadline: Deadline) -> Sub:
    """{sensor number: name} from the BMC's SDR repository (full, compact and event-only records); {} if none."""
    names: Dict[int, str] = {}
    reserve = yield from _ask_or_none(Ask("reserving the SDR repository", 0x0A, 0x22))
    if reserve is None or len(reserve) < 2:
        return names
    record_id = 0
    for _record in range(SDR_MAX):
        if deadline.expired:
            break
        head = yield from _ask_or_none(Ask("reading the SDR", 0x0A, 0x23, [reserve[0], reserve[1], record_id & 0xFF, record_id >> 8, 0, 5]))
        if head is None or len(head) < 7:
            break
        following, length = _u16(head, 0), head[6]
        body = bytearray()
        while len(body) < length:
            part = yield from _ask_or_none(Ask("reading the SDR", 0x0A, 0x23, [
                reserve[0], reserve[1], record_id & 0xFF, record_id >> 8, 5 + len(body), min(16, length - len(body))]))
            if part is None or len(part) <= 2:
                break
            body.extend(part[2:])
        name = _sdr_name(head[5], bytes(body))
        if name is not None:
            names.setdefault(body[2], name)
        if following == 0xFFFF or following == record_id:
            break
        record_id = following
    return names


def _sdr_name(kind: int, body: bytes) -> Optional[str]:
    at = {0x01: 42, 0x02: 26, 0x03: 11}.get(kind)  # ID string type/length byte, counted from the record key
    if at is None or len(body) <= at:
        return None
    tl = body[at]
    raw = body[at + 1:at + 1 + (tl & 0x1F)]
    return fru.decode_field(tl >> 6, raw) or None


def _events(job: InfoJob, deadline: Deadline) -> Sub:
    info = yield from _ask_or_none(Ask("reading the SEL info", 0x0A, 0x40))
    if info is None or len(info) < 3:
        job.unsupported.append("events")
        return
    total = _u16(info, 1)
    records: List[bytes] = []
    if total:
        reservation = yield from _reserve_sel()
        record_id, seen = 0x0000, set()
        while record_id != 0xFFFF and record_id not in seen and len(records) < min(SEL_MAX, total + 64):
            if deadline.expired:
                raise PmTimeoutError(f"reading the SEL did not finish within the timeout of {deadline.seconds:g} s ({len(records)} of {total} entries read)")
            try:
                answer = yield Ask("reading a SEL entry", 0x0A, 0x43, [*reservation, record_id & 0xFF, record_id >> 8, 0x00, 0xFF])
            except PmError as error:
                if code_of(error) == RESERVATION_CANCELLED:  # the log changed: reserve again, go on where we were
                    reservation = yield from _reserve_sel()
                    continue
                if code_of(error) == 0xCB and not records:
                    break  # empty after all
                raise
            if len(answer) < 2 + sel.RECORD_LENGTH:
                break
            seen.add(record_id)
            records.append(bytes(answer[2:2 + sel.RECORD_LENGTH]))
            record_id = _u16(answer, 0)
    needs_names = any(record[2] < 0xC0 for record in records)
    names = (yield from _sdr_names(deadline)) if needs_names else {}
    job.data["events"] = select_events([sel.decode(record, names) for record in records], job.events_since, job.events_max, total)


def _reserve_sel() -> Sub:
    answer = yield from _ask_or_none(Ask("reserving the SEL", 0x0A, 0x42))
    return [answer[0], answer[1]] if answer and len(answer) >= 2 else [0, 0]  # no reservation support: 0 is allowed


# --- power ---------------------------------------------------------------------------------------

def power_of(data: Sequence[int]) -> Optional[Dict[str, Any]]:
    """DCMI Get Power Reading's answer as the power section; None when the BMC has no reading."""
    if len(data) < 9 or data[0] != 0xDC:
        return None
    watts = _u16(data, 1)
    active = len(data) > 17 and bool(data[17] & 0x40)
    if not active and not watts:
        return None
    period = int.from_bytes(bytes(data[13:17]), "little") if len(data) >= 17 else 0
    return {
        "watts": watts,
        "minimum": _u16(data, 3),
        "maximum": _u16(data, 5),
        "average": _u16(data, 7),
        "period": round(period / 1000.0, 3) if period else None,
    }


def _power(job: InfoJob) -> Sub:
    answer = yield from _ask_or_none(Ask("reading the DCMI power reading", 0x2C, 0x02, [0xDC, 0x01, 0x00, 0x00]))
    reading = power_of(answer) if answer is not None else None
    if reading is None:
        job.unsupported.append("power")
        return
    job.data["power"] = reading


# --- network -------------------------------------------------------------------------------------

def _lan_param(channel: int, param: int) -> Sub:
    answer = yield from _ask_or_none(Ask(f"reading LAN parameter {param} of channel {channel}", 0x0C, 0x02, [channel, param, 0, 0]), LAN_UNSUPPORTED)
    return list(answer[1:]) if answer else None  # the first byte is the parameter revision


def _dotted(data: Optional[List[int]]) -> Optional[str]:
    return ".".join(str(byte) for byte in data[:4]) if data and len(data) >= 4 else None


def network_of(channel: int, params: Dict[int, Optional[List[int]]]) -> Dict[str, Any]:
    """LAN configuration parameters 3, 4, 5, 6, 12, 20 as the network section."""
    mac = params.get(5)
    source = params.get(4)
    vlan = params.get(20)
    vlan_id: Optional[int] = None
    if vlan and len(vlan) >= 2 and vlan[1] & 0x80:
        vlan_id = ((vlan[1] & 0x0F) << 8) | vlan[0]
    return {
        "address": _dotted(params.get(3)),
        "netmask": _dotted(params.get(6)),
        "gateway": _dotted(params.get(12)),
        "mac": ":".join(f"{byte:02x}" for byte in mac[:6]) if mac and len(mac) >= 6 else None,
        "vlan": vlan_id,
        "source": IP_SOURCES.get(source[0] & 0x0F, "other") if source else None,
        "channel": channel,
    }


def _network(job: InfoJob) -> Sub:
    for channel in LAN_CHANNELS:
        address = yield from _lan_param(channel, 3)
        if address is None:
            continue
        params: Dict[int, Optional[List[int]]] = {3: address}
        for param in (4, 5, 6, 12, 20):
            params[param] = yield from _lan_param(channel, param)
        job.data["network"] = network_of(channel, params)
        return
    job.unsupported.append("network")


# --- the flow ------------------------------------------------------------------------------------

def _flow(job: InfoJob, deadline: Deadline, mark: Mark) -> flows.Flow:
    """What one job does once logged in: each asked section in the order of :data:`SECTIONS`."""
    for section in SECTIONS:
        if section not in job.sections:
            continue
        mark(f"reading {section}")
        if section == "identity":
            yield from _identity(job, deadline)
        elif section == "firmware":
            job.data["firmware"] = firmware_of((yield Ask("reading the device id", 0x06, 0x01)))
        elif section == "events":
            yield from _events(job, deadline)
        elif section == "power":
            yield from _power(job)
        else:
            yield from _network(job)


def run_jobs(jobs: Sequence[InfoJob], deadline_seconds: float, progress: Optional[guard.Progress] = None) -> None:
    """Gather every job's sections concurrently; failures stay per job."""
    deadline = Deadline(deadline_seconds)
    flows.run_jobs(jobs, deadline, lambda job, mark: _flow(job, deadline, mark), progress)


def run_bounded(jobs: List[InfoJob], timeout: float) -> List[InfoJob]:
    """:func:`run_jobs` under the hard bound (``_bmc.guard``): back by ``timeout`` plus ``guard.GRACE``.

    Returns the jobs as they are then; a job the deadline cut off fails naming its BMC and its step.
    """
    progress = guard.Progress()
    outcome = guard.bounded(lambda: run_jobs(jobs, timeout, progress), timeout, name="ctys-pm-ipmi-info")
    if outcome.finished:
        return jobs
    copies = flows.frozen(jobs, progress.close(), timeout, lambda job: True)
    for copy in copies:  # the abandoned worker may still fill the originals
        copy.data, copy.unsupported = dict(copy.data), list(copy.unsupported)
    return copies

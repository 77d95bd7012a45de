# Copyright: ctys.pm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Decode an IPMI FRU inventory image (Platform Management FRU Information Storage Definition v1.0).

:func:`decode` reads the common header and the chassis, board and product info
areas into plain dictionaries; :func:`identity` turns them into pm_bmc_info's
``identity`` section. Strict on lengths (a header or area that does not fit the
image, or a bad header checksum, raises :class:`FruDecodeError`; a field running
past its area's end ends that area), tolerant of junk inside the fields
(unprintable characters are dropped, unknown languages read as Latin-1): no
other exception for any input.
"""

from __future__ import annotations

import datetime
from typing import Any, Dict, List, Optional, Tuple

# board manufacture date: minutes since 1996-01-01 00:00 UTC
EPOCH = datetime.datetime(1996, 1, 1, tzinfo=datetime.timezone.utc)
BCD_PLUS = "0123456789 -.:,_"
END_OF_FIELDS = 0xC1
BOARD_FIELDS = ("manufacturer", "product", "serial_number", "part_number", "fru_file_id")
PRODUCT_FIELDS = ("manufacturer", "product", "part_number", "version", "serial_number", "asset_tag", "fru_file_id")
CHASSIS_FIELDS = ("part_number", "serial_number")


class FruDecodeError(ValueError):
    """The bytes are not a FRU image this decoder can read (the caller reports the identity as unsupported or explains)."""


def _text(raw: bytes) -> str:
    return "".join(ch for ch in raw.decode("latin-1") if ch.isprintable()).strip()


def decode_field(kind: int, raw: bytes) -> str:
    """One type/length field's value; ``kind`` is the type code (bits 7:6 of the type/length byte)."""
    if kind == 0:  # binary or unspecified: shown as hex, as ipmitool does
        return raw.hex()
    if kind == 1:  # BCD plus
        return "".join(BCD_PLUS[byte >> 4] + BCD_PLUS[byte & 0x0F] for byte in raw).strip()
    if kind == 2:  # 6-bit ASCII packed, least significant bits first
        chars: List[str] = []
        bits, count = 0, 0
        for byte in raw:
            bits |= byte << count
            count += 8
            while count >= 6:
                chars.append(chr(0x20 + (bits & 0x3F)))
                bits >>= 6
                count -= 6
        return "".join(chars).strip()
    return _text(raw)  # 8-bit ASCII + Latin-1 (English) or Unicode for other languages: read as Latin-1


def _fields(area: bytes, start: int, names: Tuple[str, ...]) -> Dict[str, Optional[str]]:
    """The type/length fields of ``area`` from ``start``: the named ones, then ``custom`` ones, until 0xC1."""
    values: Dict[str, Optional[str]] = {name: None for name in names}
    custom: List[str] = []
    at, number = start, 0
    while at < len(area):
        tl = area[at]
        if tl == END_OF_FIELDS:
            break
        length = tl & 0x3F
        if at + 1 + length > len(area):
            break  # runs past the area: the area ends here
        value = decode_field(tl >> 6, area[at + 1:at + 1 + length])
        if number < len(names):
            values[names[number]] = value or None
        elif value:
            custom.append(value)
        at += 1 + length
        number += 1
    result: Dict[str, Any] = dict(values)
    result["custom"] = custom
    return result


def _area(image: bytes, offset_units: int, what: str) -> Optional[bytes]:
    if not offset_units:
        return None
    start = offset_units * 8
    if start + 2 > len(image):
        raise FruDecodeError(f"the FRU {what} area starts at byte {start}, past the end of the {len(image)}-byte image")
    length = image[start + 1] * 8
    if length < 8 or start + length > len(image):
        raise FruDecodeError(f"the FRU {what} area (byte {start}, {length} bytes) does not fit the {len(image)}-byte image")
    return image[start:start + length]


def manufactured(minutes: int) -> Optional[str]:
    """The board manufacture date as ISO 8601 UTC; 0 means unspecified."""
    if not minutes:
        return None
    return (EPOCH + datetime.timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def decode(image: bytes) -> Dict[str, Any]:
    """The chassis, board and product areas of a FRU image (an absent area is None)."""
    image = bytes(image)
    if len(image) < 8:
        raise FruDecodeError(f"the FRU image has {len(image)} bytes, fewer than its 8-byte common header")
    header = image[:8]
    if header[0] & 0x0F != 0x01:
        raise FruDecodeError(f"the FRU common header has format version {header[0]:#04x}, not 0x01")
    if sum(header) & 0xFF:
        raise FruDecodeError("the FRU common header checksum does not match")
    result: Dict[str, Any] = {"chassis": None, "board": None, "product": None}
    chassis = _area(image, header[2], "chassis info")
    if chassis is not None:
        result["chassis"] = dict(_fields(chassis, 3, CHASSIS_FIELDS), type=chassis[2])
    board = _area(image, header[3], "board info")
    if board is not None:
        if len(board) < 6:
            raise FruDecodeError("the FRU board info area is shorter than its fixed fields")
        result["board"] = dict(_fields(board, 6, BOARD_FIELDS), manufactured=manufactured(int.from_bytes(board[3:6], "little")))
    product = _area(image, header[4], "product info")
    if product is not None:
        result["product"] = _fields(product, 3, PRODUCT_FIELDS)
    return result


def identity(fru: Optional[Dict[str, Any]], uuid: Optional[str]) -> Dict[str, Any]:
    """pm_bmc_info's identity section from :func:`decode`'s result and the device GUID."""
    product = (fru or {}).get("product") or {}
    board = (fru or {}).get("board")
    data: Dict[str, Any] = {
        "manufacturer": product.get("manufacturer"),
        "product": product.get("product"),
        "model": product.get("part_number"),
        "serial_number": product.get("serial_number"),
        "part_number": product.get("part_number"),
        "asset_tag": product.get("asset_tag"),
        "uuid": uuid,
    }
    if board is not None:
        data["board"] = {key: board.get(key) for key in ("manufacturer", "product", "serial_number", "part_number", "manufactured")}
    return data


def _guid_year(t_low: int, t_mid: int, t_hi: int) -> Optional[int]:
    seconds = ((((t_hi & 0x0FFF) << 48) | (t_mid << 32) | t_low) // 10000000) - 12219292800
    try:
        return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).year
    except (OverflowError, OSError, ValueError):
        return None


def guid(data: List[int], this_year: Optional[int] = None) -> Optional[str]:
    """A GUID's 16 bytes (Get System GUID / Get Device GUID) as ipmitool ``mc guid`` prints it, lower case.

    ipmitool (lib/ipmi_mc.c, ``ipmi_parse_guid``) detects the encoding: it tries RFC 4122 (network order),
    IPMI (all fields least significant byte first) and SMBIOS (time fields little endian, the rest network
    order) in that order, and the *last* whose version nibble is valid (1-5) wins, so SMBIOS before IPMI
    before RFC 4122 when several are valid, except that a time-based one whose time stamp is plausible
    (1970 to this year) ends the search at once. No valid version: the bytes as they came. All zero or
    all 0xFF: None (no GUID).
    """
    if len(data) < 16:
        return None
    raw = bytes(data[:16])
    if raw in (b"\x00" * 16, b"\xff" * 16):
        return None
    little = int.from_bytes
    modes = (  # ipmitool's order: RFC 4122, IPMI, SMBIOS
        (little(raw[0:4], "big"), little(raw[4:6], "big"), little(raw[6:8], "big"), little(raw[8:10], "big"), raw[10:16]),
        (little(raw[12:16], "little"), little(raw[10:12], "little"), little(raw[8:10], "little"), little(raw[6:8], "little"), raw[0:6][::-1]),
        (little(raw[0:4], "little"), little(raw[4:6], "little"), little(raw[6:8], "little"), little(raw[8:10], "big"), raw[10:16]),
    )
    year_now = this_year or datetime.datetime.now(datetime.timezone.utc).year
    chosen = None
    for mode in modes:
        version = mode[2] >> 12
        if not 1 <= version <= 5:
            continue
        chosen = mode  # a later valid encoding takes precedence, as in ipmitool
        if version == 1:
            year = _guid_year(mode[0], mode[1], mode[2])
            if year is not None and 1970 <= year <= year_now:
                break
    if chosen is None:
        text = raw.hex()
        return f"{text[0:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:32]}"
    t_low, t_mid, t_hi, clock, node = chosen
    return f"{t_low:08x}-{t_mid:04x}-{t_hi:04x}-{clock:04x}-{node.hex()}"

"""The lab's guest image: a Debian kernel and a busybox initramfs whose init powers off on the ACPI button.

The kernel comes from /boot when it has the evdev and ACPI button drivers, else from the package
linux-image-cloud-amd64 (``apt-get download``, unpacked once into :func:`cache_dir`). The image is
built once per kernel and init script and made readable by every user (QEMU runs as nobody).
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import lzma
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Tuple

BUSYBOX = "/usr/bin/busybox"
KERNEL_PACKAGE = "linux-image-cloud-amd64"
MODULES = ("kernel/drivers/input/evdev.ko", "kernel/drivers/acpi/button.ko")
READY = "pmguest: ready"

INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for module in /modules/*.ko; do [ -e "$module" ] && insmod "$module" 2>/dev/null; done
delay=0
for word in $(cat /proc/cmdline); do
  case "$word" in pmguest.stop_delay=*) delay="${word#*=}";; esac
done
mkfifo /button
for dir in /sys/class/input/event*; do
  case "$(cat "$dir/device/name" 2>/dev/null)" in
    *"Power Button"*) (head -c 24 "/dev/input/${dir##*/}" >/dev/null && echo pressed > /button) & ;;
  esac
done
echo "pmguest: ready, stop_delay=$delay"
read pressed < /button
echo "pmguest: power button, powering off in $delay s"
sleep "$delay"
poweroff -f
"""


def cache_dir() -> Path:
    return Path(os.environ.get("PMLAB_GUEST_CACHE", "/var/tmp/pmlab-guest"))


def _readable(path: Path) -> None:
    """nobody (the session libvirtd) must read the images: open every directory on the way."""
    path.chmod(0o755 if path.is_dir() else 0o644)


def _module_bytes(path: str) -> bytes:
    data = Path(path).read_bytes()
    return lzma.decompress(data) if path.endswith(".xz") else data


def _modules_for(root: str, version: str) -> Optional[List[Tuple[str, bytes]]]:
    found = []
    for module in MODULES:
        candidates = [c for c in (f"{root}/lib/modules/{version}/{module}", f"{root}/lib/modules/{version}/{module}.xz") if os.path.exists(c)]
        if candidates:
            found.append((os.path.basename(module), _module_bytes(candidates[0])))
            continue
        config = f"{root}/boot/config-{version}"
        name = "CONFIG_INPUT_EVDEV" if "evdev" in module else "CONFIG_ACPI_BUTTON"
        if not (os.path.exists(config) and f"{name}=y" in Path(config).read_text(errors="replace")):
            return None
    return found


def _host_kernel() -> Optional[Tuple[str, List[Tuple[str, bytes]]]]:
    for kernel in sorted(glob.glob("/boot/vmlinuz-*"), reverse=True):
        version = kernel.split("vmlinuz-", 1)[1]
        modules = _modules_for("", version)
        if modules is not None and os.access(kernel, os.R_OK):
            return kernel, modules
    return None


def _kernel_package() -> Optional[str]:
    """The versioned kernel package that linux-image-cloud-amd64 points at today."""
    depends = subprocess.run(["apt-cache", "depends", KERNEL_PACKAGE], capture_output=True, text=True, check=False).stdout
    return next((line.split(":", 1)[1].strip() for line in depends.splitlines() if line.strip().startswith("Depends: linux-image-")), None)


def _package_kernel(cache: Path) -> Tuple[str, List[Tuple[str, bytes]]]:
    root = cache / "kernel"
    kernels = sorted(glob.glob(str(root / "boot" / "vmlinuz-*")))
    if not kernels:
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            package = _kernel_package()
            if package is None:  # package lists not fetched yet on a fresh machine
                subprocess.run(["apt-get", "update"], capture_output=True, check=False)
                package = _kernel_package()
            if package is None:
                raise RuntimeError(f"no guest kernel: /boot has none and apt-cache knows no {KERNEL_PACKAGE}")
            fetched = subprocess.run(["apt-get", "download", package], cwd=tmp, capture_output=True, text=True, check=False)
            debs = glob.glob(f"{tmp}/*.deb")
            if not debs:
                raise RuntimeError(f"no guest kernel: /boot has none and apt-get download {package} failed: {fetched.stderr.strip()[-300:]}")
            unpacked = Path(tmp) / "root"
            subprocess.run(["dpkg-deb", "-x", debs[0], str(unpacked)], check=True, capture_output=True)
            keep = Path(tmp) / "keep"
            (keep / "boot").mkdir(parents=True)
            for item in glob.glob(str(unpacked / "boot" / "*")):
                shutil.copy(item, keep / "boot")
            version = glob.glob(str(unpacked / "boot" / "vmlinuz-*"))[0].split("vmlinuz-", 1)[1]
            for module in MODULES:
                source = unpacked / "lib" / "modules" / version / module
                if source.exists():
                    target = keep / "lib" / "modules" / version / module
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(source, target)
            if root.exists():
                shutil.rmtree(root)
            os.replace(keep, root)
        kernels = sorted(glob.glob(str(root / "boot" / "vmlinuz-*")))
    kernel = kernels[-1]
    version = kernel.split("vmlinuz-", 1)[1]
    modules = _modules_for(str(root), version)
    if modules is None:
        raise RuntimeError(f"the guest kernel {kernel} lacks the ACPI button or evdev driver")
    return kernel, modules


def cpio_newc(entries: List[Tuple[str, int, bytes]]) -> bytes:
    """A cpio archive in the kernel's initramfs format ("newc"); entries are (path, mode, data)."""
    out = bytearray()

    def pad() -> None:
        out.extend(b"\0" * (-len(out) % 4))

    for inode, (name, mode, data) in enumerate(entries + [("TRAILER!!!", 0, b"")], start=1):
        encoded = name.encode() + b"\0"
        links = 2 if mode & 0o040000 else 1
        fields = (inode, mode, 0, 0, links, 0, len(data), 0, 0, 0, 0, len(encoded), 0)
        out.extend(b"070701" + "".join(f"{value:08X}" for value in fields).encode())
        out.extend(encoded)
        pad()
        out.extend(data)
        pad()
    return bytes(out)


def build_initramfs(modules: List[Tuple[str, bytes]]) -> bytes:
    entries: List[Tuple[str, int, bytes]] = [(d, 0o040755, b"") for d in ("bin", "dev", "proc", "sys", "modules")]
    entries.append(("bin/busybox", 0o100755, Path(BUSYBOX).read_bytes()))
    entries.append(("init", 0o100755, INIT.encode()))
    entries += [(f"modules/{name}", 0o100644, data) for name, data in modules]
    return gzip.compress(cpio_newc(entries), compresslevel=1)


def ensure_image() -> Dict[str, str]:
    """Kernel and initramfs paths readable by every user, built once per kernel and init script."""
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    _readable(cache)
    host = _host_kernel()
    kernel, modules = host if host else _package_kernel(cache)
    digest = hashlib.sha256(INIT.encode() + kernel.encode() + b"".join(data for _n, data in modules)).hexdigest()[:12]
    image_dir = cache / f"image-{digest}"
    if not (image_dir / "initrd.gz").exists():
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            staging = Path(tmp) / "image"
            staging.mkdir()
            shutil.copy(kernel, staging / "vmlinuz")
            (staging / "initrd.gz").write_bytes(build_initramfs(modules))
            for item in (staging, staging / "vmlinuz", staging / "initrd.gz"):
                _readable(item)
            try:
                os.replace(staging, image_dir)
            except OSError:  # another lab built it meanwhile
                pass
    return {"kernel": str(image_dir / "vmlinuz"), "initrd": str(image_dir / "initrd.gz")}

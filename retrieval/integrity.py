"""File integrity: each data file read back is checked against the size and CRC-32 its manifest recorded.

What that protects against: a generation is never seen half-written (it is written aside and switched to by one
rename), so the check is for later damage: a truncated or edited file, a bad disk or copy. CRC-32 detects such
damage (every burst of up to 32 bits, otherwise all but 1 in 4e9); it is no defence against someone who means
harm, and neither would a cryptographic digest be, since whoever can rewrite a file can rewrite the manifest.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import numpy as np

_BLOCK = 1 << 24


def file_crc(path: Path) -> int:
    crc = 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_BLOCK), b""):
            crc = zlib.crc32(block, crc)
    return crc


def entries(folder: Path, names: list[str]) -> dict[str, list[int]]:
    """What a manifest records of each file: [size in bytes, CRC-32]."""
    return {name: [(folder / name).stat().st_size, file_crc(folder / name)] for name in names}


def read_verified(path: Path, expected: list) -> bytes:
    """The bytes of a file, or ValueError when they are not the ones the manifest recorded."""
    data = path.read_bytes()
    if [len(data), zlib.crc32(data)] != list(expected):
        raise ValueError(f"{path.name} does not match its manifest")
    return data


def load_npy_verified(path: Path, expected: list) -> np.ndarray:
    """np.load that checks size and CRC-32 on the bytes it reads (one pass, no second copy)."""
    with open(path, "rb") as f:
        read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                       (2, 0): np.lib.format.read_array_header_2_0}.get(np.lib.format.read_magic(f))
        if read_header is None:
            raise ValueError(f"{path.name} has an unknown .npy version")
        shape, fortran, dtype = read_header(f)
        offset = f.tell()
        if fortran or dtype.hasobject or os.fstat(f.fileno()).st_size != offset + dtype.itemsize * int(np.prod(shape)):
            raise ValueError(f"{path.name} does not match its manifest")
        f.seek(0)
        crc = zlib.crc32(f.read(offset))
        array = np.fromfile(f, dtype=dtype, count=int(np.prod(shape))).reshape(shape)
    crc = zlib.crc32(memoryview(array).cast("B") if array.size else b"", crc)
    if [offset + array.nbytes, crc] != list(expected):
        raise ValueError(f"{path.name} does not match its manifest")
    return array


def check_files(folder: Path, files: dict, size_only: tuple[str, ...] = ()) -> None:
    """ValueError unless every file listed has its recorded size and CRC-32 (those in `size_only`: size only)."""
    for name, expected in files.items():
        path = folder / name
        if not path.is_file() or path.stat().st_size != expected[0] \
                or (name not in size_only and file_crc(path) != expected[1]):
            raise ValueError(f"{name} is missing or does not match its manifest")


def fsync_write(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def fsync_files(folder: Path) -> None:
    """Make every file in `folder` durable (before a rename publishes them)."""
    for path in folder.iterdir():
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

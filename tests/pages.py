"""Which pages of memory are mapped in (``mincore``): a page-cache or page-fault test asks without touching them."""

import ctypes
import mmap
import os
from pathlib import Path

import numpy as np


def resident_pages(array: np.ndarray) -> int:
    """How many of ``array``'s pages (page-aligned, as an ``mmap`` is) are resident."""
    pages = -(-array.nbytes // mmap.PAGESIZE)
    vector = (ctypes.c_ubyte * pages)()
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.mincore(ctypes.c_void_p(array.ctypes.data), ctypes.c_size_t(array.nbytes), vector) == 0
    return sum(byte & 1 for byte in vector)


def cached_pages(path: Path) -> int:
    """How many of the file's pages are in the page cache: a read-only mapping of it, never read."""
    fd = os.open(path, os.O_RDONLY)
    try:
        with mmap.mmap(fd, 0, prot=mmap.PROT_READ) as mapping:
            view = np.frombuffer(mapping, np.uint8)
            try:
                return resident_pages(view)
            finally:
                del view  # the mapping cannot close while an array still exports it
    finally:
        os.close(fd)

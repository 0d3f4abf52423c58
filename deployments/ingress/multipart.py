"""Let multipart part headers be as long as a hostile-but-valid file name needs, and keep file parts
in memory.

python-multipart refuses any part-header line over 4,224 bytes, so a ``Content-Disposition`` with a
5,000-character file name fails as "Invalid multipart data" before our code sees it. Such names must
be accepted (and sanitised into a safe key), and Starlette 1.10 does not expose the limit yet
(Kludex/starlette#3240 adds ``max_header_size`` to ``Request.form``). Starlette's form parser is
therefore given a view of python-multipart whose ``MultipartParser`` takes a larger limit; the rest of
python-multipart, and the header-count limit, are untouched. The whole body stays bounded by
MAX_UPLOAD_BYTES.
"""

from __future__ import annotations

import functools
import types

import python_multipart
from starlette import formparsers

MAX_PART_HEADER_BYTES = 64 * 1024


def allow_long_part_headers(max_header_size: int = MAX_PART_HEADER_BYTES) -> None:
    """Idempotent; affects only Starlette's form parsing in this process."""
    view = types.ModuleType("python_multipart_for_starlette")
    view.__dict__.update(vars(python_multipart))
    view.MultipartParser = functools.partial(  # type: ignore[attr-defined]
        python_multipart.MultipartParser, max_header_size=max_header_size
    )
    formparsers.multipart = view  # type: ignore[attr-defined]


def keep_file_parts_in_memory(max_bytes: int) -> None:
    """Starlette spools a file part over 1 MiB to a temporary file on disk, which the route then reads
    back whole: every 4K upload was written to and read from disk once before anything looked at it.
    The route holds the whole upload in memory anyway and the body is bounded by MAX_UPLOAD_BYTES, so
    parts up to that size stay in memory."""
    formparsers.MultiPartParser.spool_max_size = max(max_bytes, formparsers.MultiPartParser.spool_max_size)

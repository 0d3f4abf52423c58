"""Let multipart part headers be as long as a hostile-but-valid file name needs.

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

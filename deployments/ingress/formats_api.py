"""``GET /api/formats``: the image formats the service reads and writes, from ``configs.formats``.

The web page builds its output-format choices and its file input's ``accept`` list from this answer,
so a format added to the table appears on the page without editing it. It is open without a key
(``open_paths``) like the API's description: the same facts as the repository's code, no data.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from configs import formats
from deployments.ingress.open_paths import FORMATS


class FormatSummary(BaseModel):
    name: str  # the value of an upload's ``format`` field
    title: str
    label: str
    media_type: str
    suffixes: list[str]
    output: bool


class FormatList(BaseModel):
    formats: list[FormatSummary]
    inputs: str  # the accepted uploads in words, as the error texts say them


def formats_router() -> APIRouter:
    router = APIRouter()

    @router.get(FORMATS, response_model=FormatList)
    async def list_formats() -> FormatList:
        """Every format an upload may be in; those with ``output`` may be asked as a result's format,
        in the order the page offers them (the first is the default choice)."""
        return FormatList(
            formats=[
                FormatSummary(
                    name=f.name,
                    title=f.title,
                    label=f.label,
                    media_type=f.media_type,
                    suffixes=list(f.suffixes),
                    output=f.output,
                )
                for f in formats.FORMATS
            ],
            inputs=formats.inputs_text(),
        )

    return router

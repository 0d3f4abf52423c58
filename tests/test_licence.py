"""The repository says under which terms it ships: the Apache-2.0 text at the root, and a NOTICE that
names what is vendored (uPlot, at the version vendored, with its MIT licence) and the training data
behind the bundled weights (the sets their model cards name)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UPLOT = ROOT / "serve_app" / "web" / "vendor" / "uplot"


def notice() -> str:
    return (ROOT / "NOTICE").read_text()


def test_the_licence_at_the_root_is_apache_2_0_as_pyproject_declares() -> None:
    text = (ROOT / "LICENSE").read_text()

    assert text.lstrip().startswith("Apache License\n                           Version 2.0, January 2004")
    assert "END OF TERMS AND CONDITIONS" in text
    assert "3. Grant of Patent License." in text
    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"] == {"text": "Apache-2.0"}


def test_the_notice_names_the_vendored_uplot_at_its_version_with_its_licence() -> None:
    banner = (UPLOT / "uPlot.iife.min.js").read_text()[:200]
    version = re.search(r"\(v(\d+\.\d+\.\d+)\)", banner)
    assert version is not None, banner

    assert f"uPlot {version.group(1)}" in notice()
    licence_lines = [line.strip() for line in (UPLOT / "LICENSE").read_text().splitlines() if line.strip()]
    notice_lines = {line.strip() for line in notice().splitlines()}
    assert [line for line in licence_lines if line not in notice_lines] == []


def test_the_notice_names_the_training_sets_every_model_card_names() -> None:
    cards = sorted((ROOT / "models" / "weights").glob("*.md"))
    assert cards
    for card in cards:
        data = next(line for line in card.read_text().splitlines() if line.startswith("- **Data**"))
        named = re.findall(r"\b(T91|BSD200|BSD100|Set5|Set14|DIV2K|Flickr2K|photos)\b", data)
        assert named, f"{card.name}: no data set named in {data!r}"
        for name in named:
            assert f"- {name}:" in notice(), f"{card.name} trains on {name}, which NOTICE does not name"

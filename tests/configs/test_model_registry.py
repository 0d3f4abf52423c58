from pathlib import Path

import pytest

from configs.model_registry import RegistryError, load_registry

ROOT = Path(__file__).resolve().parents[2]


def test_the_shipped_registry_file_is_valid() -> None:
    assert load_registry(ROOT / "configs" / "models.yaml") == []


def test_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    registry = tmp_path / "sub" / "models.yaml"
    registry.write_text("models:\n  - name: mine\n    path: ../weights/m.pth\n    description: test\n")
    (entry,) = load_registry(registry)
    assert entry.name == "mine" and entry.path == tmp_path / "weights" / "m.pth"


def test_a_missing_file_means_no_extra_models(tmp_path: Path) -> None:
    assert load_registry(tmp_path / "none.yaml") == []


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("models:\n  - name: a\n    path: x\n  - name: a\n    path: y\n", "duplicate names ['a']"),
        ("models:\n  - name: ../evil\n    path: x\n", "must be 1-64 letters"),
        ("models:\n  - name: a\n", "path"),
        ("models: [", "models.yaml"),
    ],
)
def test_bad_registries_are_reported_with_the_file(tmp_path: Path, text: str, words: str) -> None:
    registry = tmp_path / "models.yaml"
    registry.write_text(text)
    with pytest.raises(RegistryError) as caught:
        load_registry(registry)
    assert words in str(caught.value) and str(registry) in str(caught.value)

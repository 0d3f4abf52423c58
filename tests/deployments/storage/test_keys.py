import hashlib

import pytest

from deployments.contracts.values import Folder
from deployments.storage.keys import MAX_STEM, object_key, sanitise_stem

DIGEST = hashlib.sha256(b"x").hexdigest()


@pytest.mark.parametrize(
    ("filename", "stem"),
    [
        ("photo.jpg", "photo"),
        ("My Holiday Photo (1).JPEG", "My-Holiday-Photo-1"),
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\system32\\evil.png", "evil"),
        ("a\x00b\nc\rd\x1b.png", "a-b-c-d"),
        ("café crème.png", "cafe-creme"),
        ("照片.jpg", "image"),
        (".hidden.png", "hidden"),
        ("...", "image"),
        ("", "image"),
        (None, "image"),
        ("archive.tar.gz", "archive.tar"),
    ],
)
def test_hostile_names_become_safe_stems(filename: str | None, stem: str) -> None:
    assert sanitise_stem(filename) == stem


def test_very_long_names_are_truncated() -> None:
    stem = sanitise_stem("a" * 5000 + ".png")
    assert stem == "a" * MAX_STEM


def test_keys_put_the_digest_after_the_stem() -> None:
    key = object_key(Folder.UPSCALED, "photo", DIGEST, "png")
    assert key == f"upscaled/photo-{DIGEST[:16]}.png"
    assert object_key(Folder.COULDNT_UPSCALE, "../x", DIGEST, "jpg").startswith("couldn't_upscale/x-")


def test_same_name_different_content_gives_different_keys() -> None:
    other = hashlib.sha256(b"y").hexdigest()
    assert object_key(Folder.GOOD_QUALITY, "photo", DIGEST, "jpg") != object_key(
        Folder.GOOD_QUALITY, "photo", other, "jpg"
    )


@pytest.mark.parametrize(("digest", "extension"), [("XYZ", "png"), (DIGEST, "p/ng"), (DIGEST, "")])
def test_keys_refuse_malformed_parts(digest: str, extension: str) -> None:
    with pytest.raises(ValueError):
        object_key(Folder.UPSCALED, "photo", digest, extension)

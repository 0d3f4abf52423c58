"""The models this repository bundles, written out: what the catalogue and GET /api/models must list."""

BUNDLED = frozenset(
    {
        "vcsr-m-x2",
        "vcsr-m-x4",
        "vcsr-s-x2",
        "vcsr-s-x4",
        "vcsr-real-x2",
        "vcsr-real-x4",
        "vcsr-jpeg-x2",
        "vcsr-jpeg-x4",
    }
)

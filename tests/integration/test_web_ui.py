"""The web UI in headless Chromium against the real service (Ray Serve, the jobs consumer, local storage).

One deployed app for the module, with ``API_KEY`` set: every route but health needs it, so the page
asks for it as it loads (its model list is refused); the first test is the key flow, the others type
the key the same way. Each test asserts what a person would see, and that the page logged no
error of its own (the browser's "Failed to load resource" lines for refusals a test provokes on
purpose are the network's, not the page's, and are allowed only where named).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from configs import formats
from tests.integration.browser import browser, screenshot_path  # noqa: F401  (fixture)
from tests.integration.conftest import deployed
from tests.integration.helpers import open_image, stored_files

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

API_KEY = "web-ui-test-key-0123456789"


def skimage_photo(name: str) -> Image.Image:
    import skimage

    return Image.open(Path(skimage.__file__).parent / "data" / name).convert("RGB")


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 400×300 PNG (upscaled), a 3840×2160 JPEG (good quality), a 320×320 PNG for the key flow and a
    text file named .png."""
    folder = tmp_path_factory.mktemp("images")
    portrait = folder / "astronaut-320.png"
    skimage_photo("astronaut.png").resize((320, 320), Image.Resampling.LANCZOS).save(portrait)
    small = folder / "cat-400x300.png"
    skimage_photo("chelsea.png").resize((400, 300), Image.Resampling.LANCZOS).save(small)
    coffee = skimage_photo("coffee.png")
    big = folder / "coffee-4k.jpg"
    coffee.crop((0, 31, 600, 369)).resize((3840, 2160), Image.Resampling.BICUBIC).save(big, quality=88)
    bad = folder / "notes.png"
    bad.write_bytes(b"these are meeting notes, not a picture\n" * 20)
    return {"small": small, "big": big, "bad": bad, "portrait": portrait}


@pytest.fixture(scope="module")
def service(serve_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, Path]]:
    storage = tmp_path_factory.mktemp("storage")
    jobs = tmp_path_factory.mktemp("jobs")
    with deployed(
        serve_url, storage_dir=str(storage), jobs_dir=str(jobs), upscale_scale=2, device="cpu", api_key=API_KEY
    ) as client:
        client.headers["X-API-Key"] = API_KEY
        yield client, storage


class Console:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def __call__(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def page_errors(self, allowed_statuses: tuple[int, ...] = ()) -> list[str]:
        def expected(error: str) -> bool:
            network = error.startswith("Failed to load resource")
            return network and any(f"status of {s} (" in error for s in allowed_statuses)

        return [e for e in self.errors if not expected(e)]


@pytest.fixture
def page(browser: Any, service: tuple[httpx.Client, Path]) -> Iterator[tuple[Any, Console]]:  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    console = Console()
    page.on("console", console)
    page.on("pageerror", lambda exc: console.errors.append(f"page error: {exc}"))
    page.goto(str(service[0].base_url))
    try:
        yield page, console
    finally:
        context.close()


def type_key(page: Any) -> None:
    """Answer the dialog the page opens as it loads (its model list and statistics need the key)."""
    from playwright.sync_api import expect

    expect(page.locator("#key-dialog")).to_be_visible()
    page.get_by_label("Key", exact=True).fill(API_KEY)
    page.get_by_role("button", name="Save key").click()


def wait_models(page: Any) -> None:
    page.wait_for_selector("#model option[value]:not([value=''])", state="attached")


def test_the_page_asks_for_the_api_key_and_keeps_it_in_the_tab(
    page: tuple[Any, Console], images: dict[str, Path], service: tuple[httpx.Client, Path]
) -> None:
    from playwright.sync_api import expect

    p, console = page
    response = httpx.get(str(service[0].base_url))
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert "unsafe-inline" not in response.headers["content-security-policy"]
    dialog = p.locator("#key-dialog")
    expect(dialog).to_be_visible()  # asked at once: the model list needs the key
    expect(dialog).to_contain_text("valid API key is required")
    # The output choices and the accept list come from the service's table, open without a key.
    expect(p.locator("#format option")).to_have_count(len(formats.outputs()))
    assert p.eval_on_selector_all("#format option", "os => os.map(o => o.value)") == list(formats.output_names())
    assert set(p.get_attribute("#file-input", "accept").split(",")) == {
        t for f in formats.FORMATS for t in (f.media_type, *f.suffixes)
    }
    p.screenshot(path=screenshot_path("api-key"))
    p.get_by_label("Key", exact=True).fill(API_KEY)
    p.get_by_role("button", name="Save key").click()
    expect(p.locator("#key-state")).to_have_text("API key ✓")
    assert p.evaluate("() => sessionStorage.getItem('visioncloud.apiKey')") == API_KEY
    assert API_KEY not in p.url
    wait_models(p)  # loaded again with the key
    p.set_input_files("#file-input", [str(images["portrait"])])
    p.get_by_role("button", name="Upscale 1 image").click()
    expect(p.locator(".card")).to_have_count(1, timeout=120_000)
    expect(p.locator(".card [data-role=folder]")).to_have_text("upscaled")
    assert console.page_errors(allowed_statuses=(401,)) == []


def test_upload_progress_result_compare_and_download(
    page: tuple[Any, Console], images: dict[str, Path], service: tuple[httpx.Client, Path]
) -> None:
    from playwright.sync_api import expect

    p, console = page
    _, storage = service
    type_key(p)
    wait_models(p)
    p.set_input_files("#file-input", [str(images["small"]), str(images["big"])])
    # The route each file will take is shown before anything is sent.
    expect(p.locator("[data-file='cat-400x300.png'] .chip.upscaled")).to_contain_text("upscaled ×2")
    expect(p.locator("[data-file='coffee-4k.jpg'] .chip.good_quality")).to_contain_text("good_quality")
    p.screenshot(path=screenshot_path("queue"))
    p.get_by_role("button", name="Upscale 2 images").click()
    expect(p.locator("#overall-wrap")).to_be_visible()
    p.screenshot(path=screenshot_path("progress"))
    expect(p.locator(".card")).to_have_count(2, timeout=180_000)
    expect(p.locator("#overall-count")).to_have_text("2 of 2")
    expect(p.locator(".queue-item[data-status=success]")).to_have_count(2)
    upscaled = p.locator(".card[data-folder=upscaled]")
    good = p.locator(".card[data-folder=good_quality]")
    expect(upscaled).to_contain_text("800×600")
    expect(good).to_contain_text("3840×2160")
    output = upscaled.locator("img.output")
    expect(output).to_have_js_property("complete", True)
    p.wait_for_timeout(300)
    assert output.evaluate("img => img.naturalWidth") >= 800
    p.screenshot(path=screenshot_path("results"), full_page=True)

    upscaled.get_by_role("button", name="Compare").click()
    dialog = p.locator("#compare")
    expect(dialog).to_be_visible()
    p.locator("#split").fill("35")
    assert "35%" in p.locator("#after-clip").evaluate("e => e.style.clipPath")
    p.screenshot(path=screenshot_path("compare"))
    p.locator("label[for=zoom-1]").click()
    assert p.locator("#canvas").evaluate("e => e.getBoundingClientRect().width") == 800
    assert p.locator("#before").evaluate("e => getComputedStyle(e).imageRendering") == "pixelated"
    p.screenshot(path=screenshot_path("compare-1to1-nearest"))
    p.locator("label[for=interp-smooth]").click()
    assert p.locator("#before").evaluate("e => getComputedStyle(e).imageRendering") == "auto"
    p.screenshot(path=screenshot_path("compare-1to1"))

    with p.expect_download() as download_info:
        p.locator("#compare-download").click()
    downloaded = Path(download_info.value.path()).read_bytes()
    key = upscaled.get_attribute("data-key")
    assert key and downloaded == (storage / key).read_bytes()
    assert open_image(downloaded).size == (800, 600)
    p.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert console.page_errors(allowed_statuses=(401,)) == []


def test_monitoring_shows_the_numbers_of_api_stats(
    page: tuple[Any, Console], service: tuple[httpx.Client, Path]
) -> None:
    from playwright.sync_api import expect

    p, console = page
    client, _ = service
    type_key(p)
    p.get_by_role("link", name="Monitor").click()
    expect(p.locator("#view-monitor")).to_be_visible()
    stats = client.get("/api/stats").json()
    assert stats["images_total"] >= 3  # the two tests above: three images through jobs
    expect(p.locator("#stat-total")).to_have_text(str(stats["images_total"]), timeout=10_000)
    for folder in ("good_quality", "upscaled", "couldn't_upscale"):
        row = p.locator(f'.folder-row[data-folder="{folder}"]')
        expect(row).to_contain_text(f"{folder}/")
        expect(row.locator("[data-role=count]")).to_have_text(str(stats["images_per_folder"][folder]))
    expect(p.locator("#stat-success")).to_have_text("100%")
    expect(p.locator("#hist-chart canvas")).to_have_count(1)
    expect(p.locator("#time-chart canvas")).to_have_count(1)
    p.set_viewport_size({"width": 1280, "height": 1180})
    p.wait_for_timeout(2500)  # a refresh after the resize
    p.screenshot(path=screenshot_path("monitor"))
    p.set_viewport_size({"width": 390, "height": 844})
    p.wait_for_timeout(300)
    p.screenshot(path=screenshot_path("monitor-phone"), full_page=True)
    assert console.page_errors(allowed_statuses=(401,)) == []


def test_a_bad_file_shows_the_services_message(
    page: tuple[Any, Console], images: dict[str, Path], service: tuple[httpx.Client, Path]
) -> None:
    from playwright.sync_api import expect

    p, console = page
    _, storage = service
    before = stored_files(storage)
    type_key(p)
    wait_models(p)
    p.set_viewport_size({"width": 390, "height": 844})
    p.set_input_files("#file-input", [str(images["bad"])])
    p.get_by_role("button", name="Upscale 1 image").click()
    expected = "The uploaded file is not an image; send a JPEG, PNG or WebP file."
    expect(p.locator("[data-file='notes.png'] .qi-error")).to_have_text(expected)
    expect(p.locator("#message")).to_contain_text(expected)
    p.screenshot(path=screenshot_path("bad-file-phone"))
    assert stored_files(storage) == before
    assert console.page_errors(allowed_statuses=(401, 415)) == []


def test_keyboard_reaches_every_control_with_a_label(page: tuple[Any, Console]) -> None:
    p, _ = page
    type_key(p)
    wait_models(p)
    unlabelled = p.evaluate(
        """() => [...document.querySelectorAll('input, select, button')]
            .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim())
            .map(e => e.id || e.outerHTML)"""
    )
    assert unlabelled == []
    focused = []
    for _ in range(8):
        p.keyboard.press("Tab")
        focused.append(p.evaluate("() => document.activeElement.id || document.activeElement.textContent.trim()"))
    assert "file-input" in focused and "model" in focused and "format" in focused


def test_a_refusal_that_arrives_after_the_key_is_saved_neither_reopens_the_dialog_nor_wipes_the_models(
    browser: Any,  # noqa: F811
    service: tuple[httpx.Client, Path],
) -> None:
    """The page asks for models and statistics as it loads, without a key; on a busy machine those
    refusals can arrive after the person has saved a key and the page has asked again with it. A
    refusal of a key the tab no longer holds is stale: it must not open the dialog over the page (focus
    trapped in it) or replace the listed models with "Models unavailable"."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    p = context.new_page()
    console = Console()
    p.on("console", console)
    held: dict[str, Any] = {}

    def hold_the_first(route: Any) -> None:
        path = route.request.url.split("?")[0].rsplit("/", 1)[-1]
        if path in held:
            route.continue_()
        else:
            held[path] = route  # answered below, after the key is saved

    try:
        p.route("**/api/models", hold_the_first)
        p.route("**/api/stats", hold_the_first)
        p.goto(str(service[0].base_url))
        type_key(p)  # the dialog was opened by the limits' refusal
        wait_models(p)
        expect(p.locator("#key-dialog")).to_be_hidden()
        models = p.eval_on_selector_all("#model option", "os => os.map(o => o.value)")
        assert set(held) == {"models", "stats"}
        for name in ("models", "stats"):
            with p.expect_response(lambda r, n=name: r.url.endswith(f"/api/{n}") and r.status == 401):
                held[name].continue_()  # sent without a key: refused now
        p.wait_for_timeout(300)
        expect(p.locator("#key-dialog")).to_be_hidden()
        assert p.eval_on_selector_all("#model option", "os => os.map(o => o.value)") == models
        expect(p.locator("#message")).not_to_contain_text("Could not list models")
        assert console.page_errors(allowed_statuses=(401,)) == []
    finally:
        context.close()

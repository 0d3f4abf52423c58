// Before/after: the input scaled up by the browser (nearest-neighbour or smooth) under the output,
// a draggable split (mouse, touch, or the range input's arrow keys), and zoom to fit, 1:1 or 2:1
// output pixels per screen pixel, scrollable to pan.

export class Compare {
  constructor() {
    this.dialog = document.getElementById("compare");
    this.stage = document.getElementById("stage");
    this.canvas = document.getElementById("canvas");
    this.before = document.getElementById("before");
    this.after = document.getElementById("after");
    this.clip = document.getElementById("after-clip");
    this.divider = document.getElementById("divider");
    this.split = document.getElementById("split");
    this.entry = null;
    this.split.addEventListener("input", () => this.setSplit(Number(this.split.value)));
    for (const radio of this.dialog.querySelectorAll("input[name=interp], input[name=zoom]")) {
      radio.addEventListener("change", () => this.layout());
    }
    document.getElementById("compare-close").addEventListener("click", () => this.dialog.close());
    document.getElementById("compare-download").addEventListener("click", () => this.onDownload && this.onDownload());
    this.dialog.addEventListener("close", () => { this.entry = null; });
    window.addEventListener("resize", () => this.entry && this.layout());
    this.canvas.addEventListener("pointerdown", (e) => this.drag(e));
  }

  open(entry, onDownload) {
    this.entry = entry;
    this.onDownload = onDownload;
    const r = entry.result;
    document.getElementById("compare-title").textContent = r.original_key || entry.item.file.name;
    document.getElementById("compare-sub").textContent =
      `${r.width}×${r.height} → ${r.output_width}×${r.output_height} · ${r.folder}${r.model ? ` · ${r.model}` : ""}`;
    this.before.src = entry.item.url;
    this.after.src = entry.outputUrl;
    this.split.value = 50;
    this.setSplit(50);
    this.dialog.showModal();
    this.layout();
    this.split.focus();
  }

  zoom() { return this.dialog.querySelector("input[name=zoom]:checked").value; }

  layout() {
    if (!this.entry) return;
    const r = this.entry.result;
    const smooth = this.dialog.querySelector("input[name=interp]:checked").value === "smooth";
    this.before.classList.toggle("smooth", smooth);
    this.before.classList.toggle("nearest", !smooth);
    const zoom = this.zoom();
    let scale = Number(zoom);
    if (zoom === "fit") {
      const box = this.stage.getBoundingClientRect();
      scale = Math.min((box.width - 16) / r.output_width, (box.height - 16) / r.output_height);
    }
    // Output pixels → CSS pixels (1:1 means one output pixel per device pixel).
    const css = zoom === "fit" ? scale : scale / (window.devicePixelRatio || 1);
    this.canvas.style.width = `${Math.max(1, Math.round(r.output_width * css))}px`;
    this.canvas.style.height = `${Math.max(1, Math.round(r.output_height * css))}px`;
    this.stage.classList.toggle("zoomed", zoom !== "fit");
    this.canvas.dataset.scale = String(css);
  }

  setSplit(percent) {
    this.clip.style.clipPath = `inset(0 0 0 ${percent}%)`;
    this.divider.style.left = `${percent}%`;
  }

  drag(event) {
    const move = (e) => {
      const box = this.canvas.getBoundingClientRect();
      const percent = Math.max(0, Math.min(100, ((e.clientX - box.left) / box.width) * 100));
      this.split.value = Math.round(percent);
      this.setSplit(percent);
    };
    move(event);
    this.canvas.setPointerCapture(event.pointerId);
    const stop = () => {
      this.canvas.removeEventListener("pointermove", move);
      this.canvas.removeEventListener("pointerup", stop);
    };
    this.canvas.addEventListener("pointermove", move);
    this.canvas.addEventListener("pointerup", stop);
  }
}

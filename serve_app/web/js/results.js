// Result cards: folder, status, sizes, score, model, time; compare and download. Output bytes come
// through GET /api/objects/{key} with the API key header, then live as blob: URLs in this tab.

import { getObject } from "./api.js";
import { bytes, dims, el, folderClass, ms } from "./format.js";

export class Results {
  constructor({ compare, showMessage }) {
    this.compare = compare;
    this.showMessage = showMessage;
    this.grid = document.getElementById("results");
    this.cards = new Map();
  }

  async output(entry) {
    if (!entry.outputUrl) {
      const blob = await getObject(entry.result.key);
      entry.outputUrl = URL.createObjectURL(blob);
      entry.outputBlob = blob;
    }
    return entry.outputUrl;
  }

  add(item, result) {
    if (this.cards.has(item.id)) return;
    const entry = { item, result, outputUrl: null };
    const card = this.card(entry);
    this.cards.set(item.id, { entry, card });
    this.grid.prepend(card);
    document.getElementById("results-empty").hidden = true;
    document.getElementById("results-count").textContent = `${this.cards.size} image${this.cards.size > 1 ? "s" : ""}`;
    const img = card.querySelector(".card-media img");
    this.output(entry).then((url) => { img.src = url; }).catch((error) => this.showMessage(error.message));
  }

  card(entry) {
    const r = entry.result;
    const failed = r.status !== "success";
    const model = r.model ? `${r.model}${r.upscale_scale ? ` ×${r.upscale_scale}` : ""}` : "– (stored as is)";
    const name = r.original_key || entry.item.file.name;
    const facts = [
      ["Status", r.status], ["Input", `${dims(r.width, r.height)} · ${bytes(entry.item.file.size)}`],
      ["Output", `${dims(r.output_width, r.output_height)} · ${bytes(r.size_bytes)}`],
      ["Quality score", Number(r.quality_score).toFixed(3)], ["Model", model],
      ["Time", ms(r.timings_ms && r.timings_ms.total)],
    ];
    return el("article", { class: `card${failed ? " failed" : ""}`, "data-folder": r.folder, "data-key": r.key, "aria-label": `Result for ${name}` },
      el("div", { class: "card-media" },
        el("img", { alt: `Output of ${name}`, class: "output", "data-key": r.key }),
        el("span", { class: `chip ${folderClass(r.folder)}`, "data-role": "folder", text: r.folder })),
      el("div", { class: "card-body" },
        el("div", { class: "card-title", title: r.key, text: name }),
        el("dl", { class: "facts" }, facts.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v, title: v })])),
        r.duplicate ? el("p", { class: "message", text: "Already stored earlier: same key, nothing new written." }) : null,
        failed ? el("p", { class: "message", text: "Upscaling failed; the original was kept." }) : null,
        el("div", { class: "card-actions" },
          el("button", { type: "button", class: "button small", onclick: () => this.openCompare(entry) }, "Compare"),
          el("button", { type: "button", class: "button small primary", onclick: () => this.download(entry) }, "Download"))));
  }

  async openCompare(entry) {
    try {
      await this.output(entry);
      this.compare.open(entry, () => this.download(entry));
    } catch (error) {
      this.showMessage(error.message);
    }
  }

  async download(entry) {
    try {
      const url = await this.output(entry);
      const link = el("a", { href: url, download: entry.result.key.split("/").pop() });
      document.body.append(link);
      link.click();
      link.remove();
    } catch (error) {
      this.showMessage(error.message);
    }
  }
}

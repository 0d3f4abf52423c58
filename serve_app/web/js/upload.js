// The queue: files picked or dropped, their predicted route, one job per "Upscale" press, progress
// from polling GET /api/jobs/{id}, cancel, and the API's own messages for anything refused.

import { ApiError, deleteJSON, getJSON, submitJob } from "./api.js";
import { bytes, dims, el, folderClass } from "./format.js";

const UHD_PIXELS = 3840 * 2160;
const POLL_MS = 500;
const ENDED = new Set(["success", "error", "cancelled"]);
const JOB_ENDED = new Set(["completed", "failed", "cancelled"]);

export class UploadQueue {
  constructor({ settings, onResult, showMessage }) {
    this.settings = settings; // { threshold, model(): {name, scale} | null, format() }
    this.onResult = onResult;
    this.showMessage = showMessage;
    this.items = [];
    this.job = null;
    this.nextId = 1;
    this.list = document.getElementById("queue");
    this.start = document.getElementById("start");
    this.cancel = document.getElementById("cancel");
    this.clear = document.getElementById("clear");
    this.start.addEventListener("click", () => this.submit());
    this.cancel.addEventListener("click", () => this.cancelJob());
    this.clear.addEventListener("click", () => this.clearQueue());
  }

  add(files) {
    for (const file of files) {
      const item = { id: this.nextId++, file, url: URL.createObjectURL(file), status: "ready", width: 0, height: 0 };
      this.items.push(item);
      this.measure(item);
    }
    this.showMessage(null);
    this.render();
  }

  measure(item) {
    const probe = new Image();
    probe.addEventListener("load", () => {
      item.width = probe.naturalWidth;
      item.height = probe.naturalHeight;
      this.render();
    });
    probe.addEventListener("error", () => { item.unreadable = true; this.render(); });
    probe.src = item.url;
  }

  /** Where an image will go, from its size alone, as the service routes it. */
  route(item) {
    if (!item.width) return item.unreadable ? { label: "not readable here", cls: "error" } : { label: "measuring…", cls: "" };
    const score = (item.width * item.height) / UHD_PIXELS;
    if (score >= this.settings.threshold) return { label: `good_quality · score ${score.toFixed(2)}`, cls: "good_quality" };
    const model = this.settings.model();
    const scale = model ? model.scale : "?";
    return { label: `upscaled ×${scale} · score ${score.toFixed(2)}`, cls: "upscaled" };
  }

  render() {
    this.list.replaceChildren(...this.items.map((item) => this.row(item)));
    const ready = this.items.filter((i) => i.status === "ready").length;
    const busy = Boolean(this.job);
    document.getElementById("queue-empty").hidden = this.items.length > 0;
    document.getElementById("queue-count").textContent = this.items.length ? `${this.items.length} file${this.items.length > 1 ? "s" : ""}` : "";
    this.start.disabled = busy || ready === 0;
    this.start.textContent = ready ? `Upscale ${ready} image${ready > 1 ? "s" : ""}` : "Upscale";
    this.cancel.hidden = !busy;
    this.clear.disabled = busy || this.items.length === 0;
  }

  row(item) {
    const route = this.route(item);
    const state = {
      ready: ["Ready", ""], uploading: ["Uploading", "running"], pending: ["Queued", "running"], running: ["Processing", "running"],
      success: ["Done", "done"], error: ["Failed", "failed"], cancelled: ["Cancelled", "failed"],
    }[item.status];
    const folder = item.result ? item.result.folder : null;
    const remove = item.status === "ready" || ENDED.has(item.status)
      ? el("button", { type: "button", class: "icon-button", "aria-label": `Remove ${item.file.name}`, onclick: () => this.remove(item) }, "×")
      : null;
    return el("li", { class: `queue-item ${item.status}`, "data-file": item.file.name, "data-status": item.status },
      item.unreadable
        ? el("div", { class: "thumb placeholder", "aria-hidden": "true" }, "?")
        : el("img", { class: "thumb", src: item.url, alt: "" }),
      el("div", { class: "qi-main" },
        el("div", { class: "qi-name", title: item.file.name, text: item.file.name }),
        el("div", { class: "qi-meta" },
          el("span", { text: `${dims(item.width, item.height)} · ${bytes(item.file.size)}` }),
          folder
            ? el("span", { class: `chip ${folderClass(folder)}`, text: folder })
            : el("span", { class: `chip ${route.cls}`, title: "Predicted route", text: `→ ${route.label}` }),
          el("span", { class: `chip ${item.status}`, "data-role": "status", text: state[0] })),
        item.error ? el("div", { class: "qi-error", role: "alert", text: item.error }) : null,
        el("div", { class: `qi-bar ${state[1]}`, role: "progressbar", "aria-label": `Progress of ${item.file.name}`,
          "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": state[1] === "done" || state[1] === "failed" ? 100 : 0 }, el("span"))),
      remove || el("span"));
  }

  remove(item) {
    this.items = this.items.filter((i) => i !== item);
    URL.revokeObjectURL(item.url);
    this.render();
  }

  clearQueue() {
    for (const item of this.items) if (!item.result) URL.revokeObjectURL(item.url);
    this.items = [];
    this.showMessage(null);
    this.setOverall(null);
    this.render();
  }

  setOverall(fraction, label = "", detail = "") {
    const wrap = document.getElementById("overall-wrap");
    wrap.hidden = fraction === null;
    if (fraction === null) return;
    document.getElementById("overall").value = Math.round(fraction * 100);
    document.getElementById("overall-label").textContent = label;
    document.getElementById("overall-count").textContent = detail;
  }

  async submit() {
    const batch = this.items.filter((i) => i.status === "ready");
    if (!batch.length || this.job) return;
    this.showMessage(null);
    for (const item of batch) { item.status = "uploading"; item.error = null; }
    this.job = { id: null, status: "uploading", items: batch };
    this.render();
    const options = { model: this.settings.model()?.name, format: this.settings.format() };
    try {
      const answer = await submitJob(batch.map((i) => i.file), options, (f) => this.setOverall(f, "Uploading…", `${Math.round(f * 100)}%`));
      this.job.id = answer.job_id;
      this.job.status = answer.status;
      for (const item of batch) item.status = "pending";
      this.setOverall(0, "Queued", `0 of ${batch.length}`);
      this.render();
      await this.poll();
    } catch (error) {
      this.refused(batch, error);
    }
  }

  refused(batch, error) {
    const files = (error instanceof ApiError && Array.isArray(error.body.files)) ? error.body.files : [];
    for (const item of batch) item.status = "ready";
    for (const bad of files) {
      const item = batch[bad.index];
      if (item) { item.status = "error"; item.error = bad.message; }
    }
    if (!files.length && batch.length === 1 && error instanceof ApiError && error.status >= 400 && error.status < 500 && error.status !== 401) {
      batch[0].status = "error";
      batch[0].error = error.message;
    }
    this.job = null;
    this.setOverall(null);
    const hint = files.length ? " Remove the refused files (×) and press Upscale again." : "";
    this.showMessage(error.message + hint);
    this.render();
  }

  async poll() {
    let delay = POLL_MS;
    while (this.job) {
      try {
        const job = await getJSON(`/api/jobs/${encodeURIComponent(this.job.id)}`);
        this.apply(job);
        delay = POLL_MS;
        if (JOB_ENDED.has(job.status)) break;
      } catch (error) {
        if (error instanceof ApiError && error.status === 404) { this.showMessage(error.message); break; }
        delay = Math.min(delay * 2, 5000); // the service is restarting or unreachable: keep the job, try again
      }
      await new Promise((r) => setTimeout(r, delay));
    }
    this.job = null;
    this.render();
  }

  apply(job) {
    this.job.status = job.status;
    const batch = this.job.items;
    for (const remote of job.items) {
      const item = batch[remote.index];
      if (!item || ENDED.has(item.status)) continue;
      if (remote.status === "pending" || remote.status === "running") {
        item.status = remote.status;
        continue;
      }
      item.status = remote.status;
      item.result = remote.result || null;
      item.error = remote.error ? remote.error.message : (remote.result && remote.result.status === "error" ? "Upscaling failed; the original was kept in couldn't_upscale/." : null);
      if (item.result) this.onResult(item, item.result);
    }
    const ended = job.items.filter((i) => ENDED.has(i.status)).length;
    const label = { queued: "Queued", running: "Processing", completed: "Completed", failed: "Finished with errors", cancelled: "Cancelled" }[job.status] || job.status;
    const failed = job.failed ? ` · ${job.failed} failed` : "";
    this.setOverall(ended / Math.max(1, job.total), label, `${ended} of ${job.total}${failed}`);
    this.render();
  }

  async cancelJob() {
    if (!this.job || !this.job.id) return;
    this.cancel.disabled = true;
    try {
      const job = await deleteJSON(`/api/jobs/${encodeURIComponent(this.job.id)}`);
      this.apply(job);
    } catch (error) {
      this.showMessage(error.message);
    } finally {
      this.cancel.disabled = false;
    }
  }
}

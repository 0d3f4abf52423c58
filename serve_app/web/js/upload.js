// The queue: files picked or dropped, their predicted route, one run per "Upscale" press, cancel, and
// the API's own messages for anything refused. A run splits its files into jobs within the service's
// limits (GET /api/limits: images and bytes per job), sends them one after another (waiting out 429 and
// 503 as their Retry-After says), and polls the oldest unfinished job, never faster than its share of
// the rate limit; the overall bar counts the run's files, whichever job they are in.

import { ApiError, deleteJSON, getJSON, patiently, submitJob } from "./api.js";
import { chunks, PollDelay } from "./batches.js";
import { bytes, dims, el, folderClass } from "./format.js";

const UHD_PIXELS = 3840 * 2160;
const IDLE_MS = 200; // while the first job is still being sent there is nothing to poll
const ENDED = new Set(["success", "error", "cancelled"]);
const JOB_ENDED = new Set(["completed", "failed", "cancelled"]);
const SPLIT = new Set(["upload_too_large", "too_many_images"]); // over a limit the page did not know of
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export class UploadQueue {
  constructor({ settings, onResult, showMessage }) {
    this.settings = settings; // { threshold, model(): {name, scale} | null, format(), limits(): Promise }
    this.onResult = onResult;
    this.showMessage = showMessage;
    this.items = [];
    this.run = null;
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
    const busy = Boolean(this.run);
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
      ready: ["Ready", ""], waiting: ["Waiting", "running"], uploading: ["Uploading", "running"], pending: ["Queued", "running"], running: ["Processing", "running"],
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

  /** The overall bar for a run: its files that have ended, whichever job they are in; `note` (an
   * upload in progress, a wait) replaces the label while it lasts. */
  progress(run, note = null) {
    const total = run.items.length;
    const ended = run.items.filter((i) => ENDED.has(i.status)).length;
    const failed = run.items.filter((i) => i.status === "error").length;
    const state = ended === total
      ? (run.cancelled ? "Cancelled" : failed ? "Finished with errors" : "Completed")
      : run.items.some((i) => i.status === "running") ? "Processing" : "Queued";
    this.setOverall(ended / Math.max(1, total), note || state, `${ended} of ${total}${failed ? ` · ${failed} failed` : ""}`);
  }

  async submit() {
    const ready = this.items.filter((i) => i.status === "ready");
    if (!ready.length || this.run) return;
    this.showMessage(null);
    const run = { items: ready, jobs: [], sending: true, cancelled: false };
    this.run = run;
    for (const item of ready) { item.status = "waiting"; item.error = null; }
    this.render();
    try {
      const limits = await this.settings.limits();
      const polling = this.poll(run, new PollDelay(limits));
      const groups = chunks(ready, limits);
      const options = { model: this.settings.model()?.name, format: this.settings.format() };
      for (let n = 0; n < groups.length && !run.cancelled; n += 1) {
        if (!(await this.send(run, groups[n], options, groups.length > 1 ? ` ${n + 1} of ${groups.length}` : ""))) break;
      }
      run.sending = false;
      await polling;
    } catch (error) {
      this.showMessage(error.message);
    } finally {
      run.sending = false;
      for (const item of ready) if (item.status === "waiting") item.status = run.cancelled ? "cancelled" : "ready";
      this.run = null;
      if (run.jobs.length) this.progress(run); else this.setOverall(null);
      this.render();
    }
  }

  /** POST one group as a job; false when the run must stop (no key, the service unreachable). Files the
   * service refuses are marked with its message and the rest sent again without them. */
  async send(run, group, options, label) {
    let files = group;
    while (files.length) {
      for (const item of files) item.status = "uploading";
      this.render();
      try {
        const answer = await patiently(
          () => submitJob(files.map((i) => i.file), options, (f) => this.progress(run, `Uploading job${label}… ${Math.round(f * 100)}%`)),
          { onWait: (seconds, error) => this.progress(run, `Waiting ${Math.ceil(seconds)} s: ${error.message}`) });
        run.jobs.push({ id: answer.job_id, items: files, ended: false });
        for (const item of files) item.status = "pending";
        this.progress(run);
        this.render();
        if (run.cancelled) await this.cancelJobs(run);
        return true;
      } catch (error) {
        const refused = (error instanceof ApiError && Array.isArray(error.body.files)) ? error.body.files : [];
        if (refused.length) {
          for (const bad of refused) if (files[bad.index]) { files[bad.index].status = "error"; files[bad.index].error = bad.message; }
          files = files.filter((item) => item.status === "uploading");
          this.showMessage(error.message);
          continue;
        }
        const status = error instanceof ApiError ? error.status : 0;
        if (files.length > 1 && SPLIT.has(error.code)) {
          const half = Math.ceil(files.length / 2);
          return (await this.send(run, files.slice(0, half), options, label)) && this.send(run, files.slice(half), options, label);
        }
        if (files.length === 1 && status >= 400 && status < 500 && status !== 401 && status !== 429) {
          files[0].status = "error";
          files[0].error = error.message;
          this.showMessage(error.message);
          return true;
        }
        for (const item of files) item.status = "ready";
        this.showMessage(error.message);
        return false;
      }
    }
    return true;
  }

  /** Poll the oldest unfinished job (the service works through jobs in order) until every job has ended. */
  async poll(run, delay) {
    while (run.sending || run.jobs.some((j) => !j.ended)) {
      const job = run.jobs.find((j) => !j.ended);
      if (!job) { await sleep(IDLE_MS); continue; }
      let progressed = false;
      let asked = 0;
      try {
        progressed = this.apply(job, await getJSON(`/api/jobs/${encodeURIComponent(job.id)}`));
      } catch (error) {
        if (error instanceof ApiError && error.status === 404) { job.ended = true; this.showMessage(error.message); }
        asked = error instanceof ApiError && error.retryAfter !== null ? error.retryAfter * 1000 : 0;
        // otherwise the service is restarting or unreachable: keep the job, ask again later
      }
      if (run.sending || run.jobs.some((j) => !j.ended)) await sleep(Math.max(delay.next(progressed), asked));
    }
  }

  /** Takes in a job's news; whether any of its files moved on (or the job ended). */
  apply(job, view) {
    let progressed = false;
    for (const remote of view.items) {
      const item = job.items[remote.index];
      if (!item || ENDED.has(item.status) || item.status === remote.status) continue;
      progressed = true;
      item.status = remote.status;
      if (!ENDED.has(remote.status)) continue;
      item.result = remote.result || null;
      item.error = remote.error ? remote.error.message : (remote.result && remote.result.status === "error" ? "Upscaling failed; the original was kept in couldn't_upscale/." : null);
      if (item.result) this.onResult(item, item.result);
    }
    if (JOB_ENDED.has(view.status)) { job.ended = true; progressed = true; }
    this.progress(this.run || { items: job.items, cancelled: false });
    this.render();
    return progressed;
  }

  /** Cancel: nothing more is sent, and every job sent and not ended is cancelled on the service. */
  async cancelJob() {
    if (!this.run) return;
    this.run.cancelled = true;
    this.cancel.disabled = true;
    try {
      await this.cancelJobs(this.run);
    } finally {
      this.cancel.disabled = false;
    }
  }

  async cancelJobs(run) {
    for (const job of run.jobs.filter((j) => !j.ended)) {
      try {
        this.apply(job, await deleteJSON(`/api/jobs/${encodeURIComponent(job.id)}`));
      } catch (error) {
        this.showMessage(error.message);
      }
    }
  }
}

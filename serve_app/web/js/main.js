// Wiring: views (#/upscale, #/monitor), health, models, the API key dialog, drag and drop.

import { apiKey, getJSON, getLimits } from "./api.js";
import { Compare } from "./compare.js";
import { bytes } from "./format.js";
import { Monitor } from "./monitor.js";
import { Results } from "./results.js";
import { UploadQueue } from "./upload.js";

const state = { models: [], threshold: 0.5 };

function showMessage(text, kind = "error") {
  const banner = document.getElementById("message");
  banner.hidden = !text;
  banner.textContent = text || "";
  banner.className = `banner${kind === "info" ? " info" : ""}`;
}

function selectedModel() {
  const name = document.getElementById("model").value;
  return state.models.find((m) => m.name === name) || null;
}

function describeModel() {
  const m = selectedModel();
  const info = document.getElementById("model-info");
  if (!m) { info.textContent = ""; return; }
  const psnr = Object.entries(m.psnr || {}).map(([set, db]) => `${set} ${db.toFixed(2)} dB`).join(" · ");
  info.textContent = `×${m.scale} · ${(m.parameters / 1000).toFixed(0)} k parameters${psnr ? ` · PSNR-Y ${psnr}` : ""}. ${m.description || ""}`;
}

// Each load numbered: an answer to an older ask (the one refused before a key was saved) is dropped.
let modelsAsked = 0;

async function loadModels(queue) {
  const select = document.getElementById("model");
  const asked = ++modelsAsked;
  let models;
  try {
    models = await getJSON("/api/models");
  } catch (error) {
    if (asked !== modelsAsked) return;
    select.replaceChildren(new Option("Models unavailable", ""));
    showMessage(`Could not list models: ${error.message}`);
    return;
  }
  if (asked !== modelsAsked) return;
  state.models = models;
  select.replaceChildren(...state.models.map((m) => {
    const psnr = m.psnr && Object.values(m.psnr).length ? ` · ${Object.values(m.psnr)[0].toFixed(2)} dB` : "";
    const option = new Option(`${m.name} · ×${m.scale}${psnr}${m.default ? " · default" : ""}`, m.name);
    option.selected = m.default;
    return option;
  }));
  describeModel();
  queue.render();
}

// The formats come from the service's table (GET /api/formats, open without a key): the output choices,
// the file input's accept list and the drop zone's words. Until it answers (or if it cannot), the
// page offers the service's default format and any image.
async function loadFormats() {
  let answer;
  try {
    answer = await getJSON("/api/formats");
  } catch { return; }
  const outputs = answer.formats.filter((f) => f.output);
  document.getElementById("format").replaceChildren(...outputs.map((f) => new Option(f.label, f.name)));
  document.getElementById("file-input").accept = answer.formats
    .flatMap((f) => [f.media_type, ...f.suffixes]).join(",");
  document.getElementById("drop-formats").textContent = `${answer.inputs} · as many as you like`;
}

// The service's limits (GET /api/limits), asked once and again after a key is saved; a failed ask is
// forgotten, so the next Upscale asks again.
let limitsAsked = null;

function limits() {
  if (!limitsAsked) {
    limitsAsked = getLimits().then((found) => { describeLimits(found); return found; });
    limitsAsked.catch(() => { limitsAsked = null; });
  }
  return limitsAsked;
}

function describeLimits(found) {
  const note = document.getElementById("drop-limits");
  note.textContent = `up to ${bytes(found.max_upload_bytes)} a file · sent ${found.max_job_images} to a job`;
  note.hidden = false;
}

async function loadSettings(queue) {
  try {
    const stats = await getJSON("/api/stats");
    state.threshold = stats.quality_threshold;
    queue.render();
  } catch { /* the default threshold stands */ }
}

async function checkHealth() {
  const pill = document.getElementById("health");
  try {
    const response = await fetch("/api/health", { headers: { Accept: "application/json" } });
    const body = await response.json();
    pill.className = `pill ${response.ok ? "ok" : "bad"}`;
    pill.textContent = response.ok ? "Healthy" : "Degraded";
    pill.title = (body.reasons || []).join("\n");
  } catch {
    pill.className = "pill bad";
    pill.textContent = "Unreachable";
  }
}

// onSaved: what to load again once a key is saved (with keys configured, every route but health needs one).
function keyDialog(onSaved) {
  const dialog = document.getElementById("key-dialog");
  const input = document.getElementById("key-input");
  const label = document.getElementById("key-state");
  const reason = document.getElementById("key-reason");
  const defaultReason = reason.textContent;
  const refresh = () => { label.textContent = apiKey.get() ? "API key ✓" : "API key"; };
  const open = (why) => {
    reason.textContent = why || defaultReason;
    if (!dialog.open) {  // a second refusal while it is open must not wipe what is being typed
      input.value = "";
      dialog.showModal();
    }
    input.focus();
  };
  document.getElementById("key-button").addEventListener("click", () => open());
  dialog.addEventListener("close", () => {
    if (dialog.returnValue === "save" && input.value) apiKey.set(input.value.trim());
    if (dialog.returnValue === "forget") apiKey.set("");
    input.value = "";
    refresh();
    if (dialog.returnValue === "save") {
      showMessage("API key saved for this tab. Press Upscale to try again.", "info");
      onSaved();
    }
  });
  window.addEventListener("needkey", (e) => {
    const message = (e.detail && e.detail.message) || "This service needs an API key.";
    open(`${message} The key stays in this tab only.`);
  });
  refresh();
}

function dropzone(queue) {
  const zone = document.getElementById("dropzone");
  const input = document.getElementById("file-input");
  input.addEventListener("change", () => { queue.add([...input.files]); input.value = ""; });
  for (const name of ["dragenter", "dragover"]) {
    zone.addEventListener(name, (e) => { e.preventDefault(); zone.classList.add("dragging"); });
  }
  for (const name of ["dragleave", "drop"]) zone.addEventListener(name, () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (e) => { e.preventDefault(); queue.add([...e.dataTransfer.files]); });
  // Dropping anywhere else must not navigate away from the page.
  window.addEventListener("dragover", (e) => e.preventDefault());
  window.addEventListener("drop", (e) => e.preventDefault());
}

function router(monitor) {
  const show = () => {
    const view = location.hash === "#/monitor" ? "monitor" : "upscale";
    for (const name of ["upscale", "monitor"]) {
      document.getElementById(`view-${name}`).hidden = name !== view;
      const tab = document.getElementById(`tab-${name}`);
      if (name === view) tab.setAttribute("aria-current", "page"); else tab.removeAttribute("aria-current");
    }
    document.title = `${view === "monitor" ? "Monitoring" : "Upscale"} · VisionCloud Upscaler`;
    if (view === "monitor") { monitor.start(); requestAnimationFrame(() => monitor.resize()); } else monitor.stop();
  };
  window.addEventListener("hashchange", show);
  window.addEventListener("resize", () => monitor.resize());
  show();
}

function init() {
  const compare = new Compare();
  const results = new Results({ compare, showMessage });
  const queue = new UploadQueue({
    settings: {
      get threshold() { return state.threshold; },
      model: selectedModel,
      format: () => document.getElementById("format").value,
      limits,
    },
    onResult: (item, result) => results.add(item, result),
    showMessage,
  });
  document.getElementById("model").addEventListener("change", () => { describeModel(); queue.render(); });
  keyDialog(() => { limitsAsked = null; loadModels(queue); loadSettings(queue); limits().catch(() => {}); });
  dropzone(queue);
  router(new Monitor({ showMessage, limits }));
  queue.render();
  loadFormats();
  loadModels(queue);
  loadSettings(queue);
  limits().catch(() => {}); // shown under the drop zone; a refusal here is the model list's too
  checkHealth();
  setInterval(checkHealth, 15000);
}

init();

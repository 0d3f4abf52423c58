// The monitoring view: GET /api/stats every few seconds while it is shown; tiles, per-folder bars and
// two uPlot charts (vendored in vendor/uplot, no CDN). Its refreshes count against the key's rate limit
// like any request, so they are paced to a share of it and wait out a 429's Retry-After: an open
// Monitor tab must never spend the budget the uploads need.

import { ApiError, getJSON } from "./api.js";
import { count, el, FOLDERS, folderClass, ms, percent } from "./format.js";

const REFRESH_MS = 2000;
const STATS_SHARE = 0.25; // of the tightest rate-limit window: submits and job polls need the rest

/** The pause between two refreshes: 2 s, or longer where the rate limit would let the monitor use more
 * than its share (20/minute → 12 s). */
export function refreshDelay(limits) {
  const windows = (limits && limits.rate_limits) || [];
  return Math.max(REFRESH_MS, ...windows.map((w) => (w.period_s / w.amount / STATS_SHARE) * 1000));
}
const AXIS = { stroke: "#93a0b8", grid: { stroke: "#1f2738", width: 1 }, ticks: { stroke: "#263044", width: 1 } };

export class Monitor {
  constructor({ showMessage, limits = async () => null }) {
    this.showMessage = showMessage;
    this.limits = limits; // () => Promise of GET /api/limits' answer
    this.timer = null;
    this.hist = null;
    this.time = null;
    this.last = null;
  }

  start() {
    if (this.timer !== null) return;
    const tick = async () => {
      const wait = await this.refresh();
      if (this.timer !== null) this.timer = setTimeout(tick, wait);
    };
    this.timer = 0; // started: stop() before the first answer ends the loop
    tick();
  }

  stop() {
    clearTimeout(this.timer);
    this.timer = null;
  }

  /** Fetch and show the numbers once; the milliseconds to wait before the next refresh. */
  async refresh() {
    const pace = refreshDelay(await this.limits().catch(() => null));
    try {
      const stats = await getJSON("/api/stats");
      this.last = stats;
      this.render(stats);
      return pace;
    } catch (error) {
      const asked = error instanceof ApiError && error.retryAfter !== null ? error.retryAfter * 1000 : 0;
      const note = asked ? ` (next in ${Math.ceil(asked / 1000)} s, as the service asked)` : "";
      document.getElementById("stats-updated").textContent = `Not updated: ${error.message}${note}`;
      return Math.max(pace, asked);
    }
  }

  render(s) {
    const set = (id, text) => { document.getElementById(id).textContent = text; };
    set("stat-total", count(s.images_total));
    set("stat-success", percent(s.upscale.success_rate));
    set("stat-success-sub", `${s.upscale.succeeded} of ${s.upscale.attempted} upscales`);
    set("stat-p50", ms(s.processing_ms.p50));
    set("stat-p95", ms(s.processing_ms.p95));
    set("stat-queue", s.queue_depth === null ? "n/a" : count(s.queue_depth));
    set("stat-spool", s.spool_depth === null ? "n/a" : count(s.spool_depth));
    const replicas = s.replicas ? Object.values(s.replicas).reduce((a, b) => a + b, 0) : null;
    set("stat-replicas", replicas === null ? "n/a" : count(replicas));
    set("stat-replicas-sub", s.replicas ? Object.entries(s.replicas).map(([k, v]) => `${k} ${v}`).join(" · ") : "");
    set("stats-updated", `Live · updated ${new Date(s.generated_at * 1000).toLocaleTimeString()}`);
    set("hist-hint", `score = width × height / (3840 × 2160); stored as is at ≥ ${s.quality_threshold}`);
    this.folders(s);
    if (window.uPlot) {
      this.histogram(s.quality_score_histogram);
      this.timeline(s.timeline);
    }
  }

  folders(s) {
    const max = Math.max(1, ...FOLDERS.map((f) => s.images_per_folder[f] || 0));
    const rows = FOLDERS.map((folder) => {
      const n = s.images_per_folder[folder] || 0;
      const fill = el("div", { class: `folder-fill ${folderClass(folder)}` });
      fill.style.width = `${(n / max) * 100}%`;
      return el("li", { class: "folder-row", "data-folder": folder },
        el("span", { class: "folder-name", text: `${folder}/` }),
        el("span", { class: "folder-count", "data-role": "count", text: count(n) }),
        el("div", { class: "folder-track", role: "presentation" }, fill));
    });
    document.getElementById("folder-bars").replaceChildren(...rows);
  }

  size(node) {
    // The panel's inner width, not the chart's own (its canvas would keep it as wide as it was).
    const panel = node.parentElement;
    const style = getComputedStyle(panel);
    const inner = panel.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    return { width: Math.max(240, Math.floor(inner || 300)), height: 240 };
  }

  histogram(bins) {
    const node = document.getElementById("hist-chart");
    const xs = bins.map((_, i) => i);
    const ys = bins.map((b) => b.count);
    // Ranges where there is room; each bin's lower edge on a phone.
    const label = (u, i) => {
      const b = bins[i];
      if (!b) return "";
      if (b.to === null) return `≥${b.from}`;
      return u.width < 600 ? String(b.from).replace(/^0\./, ".") : `${b.from}–${b.to}`;
    };
    if (!this.hist || this.hist.bins !== bins.length) {
      if (this.hist) this.hist.plot.destroy();
      const opts = {
        ...this.size(node),
        legend: { show: false },
        cursor: { drag: { x: false, y: false } },
        scales: { x: { time: false, range: [-0.6, bins.length - 0.4] }, y: { range: (u, lo, hi) => [0, Math.max(1, hi * 1.15)] } },
        axes: [
          { ...AXIS, values: (u, splits) => splits.map((v) => (Number.isInteger(v) ? label(u, v) : "")), splits: () => xs, size: 38, font: "11px system-ui" },
          { ...AXIS, size: 44, values: (u, splits) => splits.map((v) => (Number.isInteger(v) ? String(v) : "")) },
        ],
        series: [{}, { label: "images", fill: "rgba(124,140,255,0.55)", stroke: "#7c8cff", width: 1, paths: window.uPlot.paths.bars({ size: [0.75, 80] }), points: { show: false } }],
      };
      this.hist = { bins: bins.length, plot: new window.uPlot(opts, [xs, ys], node) };
    } else {
      this.hist.plot.setData([xs, ys]);
    }
  }

  timeline(points) {
    const node = document.getElementById("time-chart");
    const data = [points.map((p) => p.t), points.map((p) => p.p50_ms), points.map((p) => p.p95_ms)];
    // The x range is set here, not left to uPlot: a single minute of data would otherwise span years.
    const now = Date.now() / 1000;
    const first = points.length ? points[0].t : now - 600;
    const last = points.length ? points[points.length - 1].t + 60 : now;
    const x = { min: Math.min(first, last - 600), max: Math.max(last, first + 600) };
    if (!this.time) {
      const opts = {
        ...this.size(node),
        scales: { x: { time: true, auto: false, range: () => [x.min, x.max] }, y: { range: (u, lo, hi) => [0, Math.max(10, (hi || 0) * 1.15)] } },
        axes: [{ ...AXIS }, { ...AXIS, size: 60, values: (u, splits) => splits.map((v) => ms(v)) }],
        series: [
          {},
          { label: "p50", stroke: "#3ecf8e", width: 2, points: { size: 8, fill: "#3ecf8e" }, value: (u, v) => ms(v) },
          { label: "p95", stroke: "#b07cff", width: 2, points: { size: 8, fill: "#b07cff" }, value: (u, v) => ms(v) },
        ],
      };
      this.time = new window.uPlot(opts, data, node);
    } else {
      this.time.setData(data, false);
    }
    this.time.setScale("x", x);
  }

  resize() {
    for (const [plot, id] of [[this.hist && this.hist.plot, "hist-chart"], [this.time, "time-chart"]]) {
      if (plot) plot.setSize(this.size(document.getElementById(id)));
    }
  }
}

// Small formatting helpers and a DOM builder (textContent only: nothing from the API becomes HTML).

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}

export function bytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KB", "MB", "GB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i += 1; }
  return `${n.toFixed(i === 0 || n >= 100 ? 0 : 1)} ${units[i]}`;
}

export function ms(value) {
  if (value === null || value === undefined) return "–";
  return value >= 1000 ? `${(value / 1000).toFixed(value >= 10000 ? 0 : 1)} s` : `${Math.round(value)} ms`;
}

export const dims = (w, h) => (w && h ? `${w}×${h}` : "–");
export const percent = (x) => (x === null || x === undefined ? "–" : `${(x * 100).toFixed(x === 1 ? 0 : 1)}%`);
export const count = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en"));

/** CSS-safe class for a folder name ("couldn't_upscale" → "couldnt_upscale"). */
export const folderClass = (folder) => String(folder || "").replace(/[^a-z_]/g, "");

export const FOLDERS = ["good_quality", "upscaled", "couldn't_upscale"];

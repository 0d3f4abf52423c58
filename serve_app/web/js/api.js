// The service's HTTP API as the page uses it. The API key lives in this tab's sessionStorage and is
// sent as the X-API-Key header, never in a URL. A 401 asks the page for a key (event "needkey"), unless
// the request went out with a key the tab no longer holds: that refusal is stale (the page asks again).
// A 429 or 503 is a "not now": `patiently` waits what its Retry-After says and asks again.

const KEY_ITEM = "visioncloud.apiKey";

export const apiKey = {
  get: () => sessionStorage.getItem(KEY_ITEM) || "",
  set: (key) => (key ? sessionStorage.setItem(KEY_ITEM, key) : sessionStorage.removeItem(KEY_ITEM)),
};

export class ApiError extends Error {
  constructor(status, body, retryAfter = null) {
    super((body && body.message) || `The service answered ${status}.`);
    this.status = status;
    this.body = body || {};
    this.code = this.body.error || `http_${status}`;
    this.retryAfter = retryAfterSeconds(retryAfter); // seconds the answer asked to wait, or null
  }
}

/** Retry-After in seconds: delay-seconds or an HTTP-date (RFC 9110); null when absent or unreadable. */
function retryAfterSeconds(value) {
  if (value === null || value === undefined || value === "") return null;
  if (/^\s*\d+\s*$/.test(value)) return Number(value);
  const when = Date.parse(value);
  return Number.isNaN(when) ? null : Math.max(0, (when - Date.now()) / 1000);
}

const RETRIED = new Set([429, 503]);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** `call()` until it is not refused with 429 or 503: each wait is the refusal's Retry-After (plus up to
 * half a second, so tabs refused together do not return together), or without one an exponential
 * backoff from 1 s to 30 s with jitter. Past `maxWaitS` in all, the refusal stands. `onWait(seconds,
 * error)` hears of each wait, for the page to show it. */
export async function patiently(call, { onWait = () => {}, maxWaitS = 600 } = {}) {
  let waited = 0;
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await call();
    } catch (error) {
      if (!(error instanceof ApiError) || !RETRIED.has(error.status)) throw error;
      const backoff = Math.min(2 ** attempt, 30) + Math.random();
      const seconds = error.retryAfter !== null ? error.retryAfter + Math.random() / 2 : backoff;
      if (waited + seconds > maxWaitS) throw error;
      onWait(seconds, error);
      await sleep(seconds * 1000);
      waited += seconds;
    }
  }
}

function headers(key, extra = {}) {
  return key ? { ...extra, "X-API-Key": key } : extra;
}

/** A 401 of the key this tab holds now asks for one; a 401 of a key since replaced (sent before the
 * person saved one) asks nothing: whoever sent it asks again with the new key. */
function refused(status, body, sentKey) {
  if (status === 401 && sentKey === apiKey.get()) window.dispatchEvent(new CustomEvent("needkey", { detail: body }));
}

async function parse(response, sentKey) {
  const type = response.headers.get("content-type") || "";
  const body = type.includes("json") ? await response.json().catch(() => null) : null;
  if (!response.ok) {
    refused(response.status, body, sentKey);
    throw new ApiError(response.status, body, response.headers.get("Retry-After"));
  }
  return body;
}

async function send(path, method = "GET") {
  const key = apiKey.get();
  return parse(await fetch(path, { method, headers: headers(key, { Accept: "application/json" }) }), key);
}

export const getJSON = (path) => send(path);
export const deleteJSON = (path) => send(path, "DELETE");

/** A stored result's bytes as a Blob, through the service's object route (same origin for both
 * storage backends, so the page's Content-Security-Policy needs no bucket origin). */
export async function getObject(key) {
  const path = "/api/objects/" + key.split("/").map(encodeURIComponent).join("/");
  const sent = apiKey.get();
  const response = await fetch(path, { headers: headers(sent) });
  if (!response.ok) await parse(response, sent);
  return response.blob();
}

/** POST /api/jobs with upload progress (fetch cannot report it; XMLHttpRequest can). */
export function submitJob(files, { model, format }, onProgress) {
  const form = new FormData();
  for (const file of files) form.append("images", file, file.name);
  if (model) form.append("model", model);
  if (format) form.append("format", format);
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    const key = apiKey.get();
    xhr.open("POST", "/api/jobs");
    for (const [name, value] of Object.entries(headers(key, { Accept: "application/json" }))) xhr.setRequestHeader(name, value);
    xhr.upload.addEventListener("progress", (e) => e.lengthComputable && onProgress(e.loaded / e.total));
    xhr.addEventListener("load", () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch { body = null; }
      if (xhr.status >= 200 && xhr.status < 300) return resolve(body);
      refused(xhr.status, body, key);
      reject(new ApiError(xhr.status, body, xhr.getResponseHeader("Retry-After")));
    });
    xhr.addEventListener("error", () => reject(new ApiError(0, { message: "The service could not be reached." })));
    xhr.send(form);
  });
}

// What the page assumes of a service too old to publish its limits (it answers 404): its defaults.
export const DEFAULT_LIMITS = { max_job_images: 100, max_job_bytes: 50 * 1024 * 1024, max_upload_bytes: 50 * 1024 * 1024, rate_limits: [] };

/** GET /api/limits (images and bytes per job, the rate limit), or DEFAULT_LIMITS from an older service. */
export async function getLimits() {
  try {
    return await patiently(() => getJSON("/api/limits"));
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return DEFAULT_LIMITS;
    throw error;
  }
}

// The service's HTTP API as the page uses it. The API key lives in this tab's sessionStorage and is
// sent as the X-API-Key header, never in a URL. A 401 asks the page for a key (event "needkey").

const KEY_ITEM = "visioncloud.apiKey";

export const apiKey = {
  get: () => sessionStorage.getItem(KEY_ITEM) || "",
  set: (key) => (key ? sessionStorage.setItem(KEY_ITEM, key) : sessionStorage.removeItem(KEY_ITEM)),
};

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `The service answered ${status}.`);
    this.status = status;
    this.body = body || {};
    this.code = this.body.error || `http_${status}`;
  }
}

function headers(extra = {}) {
  const key = apiKey.get();
  return key ? { ...extra, "X-API-Key": key } : extra;
}

async function parse(response) {
  const type = response.headers.get("content-type") || "";
  const body = type.includes("json") ? await response.json().catch(() => null) : null;
  if (!response.ok) {
    if (response.status === 401) window.dispatchEvent(new CustomEvent("needkey", { detail: body }));
    throw new ApiError(response.status, body);
  }
  return body;
}

export async function getJSON(path) {
  return parse(await fetch(path, { headers: headers({ Accept: "application/json" }) }));
}

export async function deleteJSON(path) {
  return parse(await fetch(path, { method: "DELETE", headers: headers({ Accept: "application/json" }) }));
}

/** A stored result's bytes as a Blob, through the service's object route (same origin for both
 * storage backends, so the page's Content-Security-Policy needs no bucket origin). */
export async function getObject(key) {
  const path = "/api/objects/" + key.split("/").map(encodeURIComponent).join("/");
  const response = await fetch(path, { headers: headers() });
  if (!response.ok) await parse(response);
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
    xhr.open("POST", "/api/jobs");
    for (const [name, value] of Object.entries(headers({ Accept: "application/json" }))) xhr.setRequestHeader(name, value);
    xhr.upload.addEventListener("progress", (e) => e.lengthComputable && onProgress(e.loaded / e.total));
    xhr.addEventListener("load", () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch { body = null; }
      if (xhr.status >= 200 && xhr.status < 300) return resolve(body);
      if (xhr.status === 401) window.dispatchEvent(new CustomEvent("needkey", { detail: body }));
      reject(new ApiError(xhr.status, body));
    });
    xhr.addEventListener("error", () => reject(new ApiError(0, { message: "The service could not be reached." })));
    xhr.send(form);
  });
}

// How a drop becomes jobs the service accepts, and how often the page may ask about them.
//
// One job's request is one multipart body, and the service's body limit (max_job_bytes from
// GET /api/limits) counts all of it: each file plus its part's headers, plus the form fields. The
// overheads below bound those generously, so a planned job is never refused for its framing.

const PART_OVERHEAD_BYTES = 512;
const FORM_OVERHEAD_BYTES = 4096;
const POLL_SHARE = 0.5; // polls may use at most half the rate limit: the rest is for submits
const POLL_FIRST_MS = 500;
const POLL_MAX_MS = 10000;

/** Consecutive groups of at most max_job_images files whose bytes stay within the body limit (a file
 * over it goes alone: the service refuses it with its own message). */
export function chunks(items, limits) {
  const maxFiles = Math.max(1, limits.max_job_images);
  const maxBytes = Math.max(1, limits.max_job_bytes - FORM_OVERHEAD_BYTES);
  const groups = [];
  let group = [];
  let size = 0;
  for (const item of items) {
    const cost = item.file.size + PART_OVERHEAD_BYTES;
    if (group.length && (group.length >= maxFiles || size + cost > maxBytes)) {
      groups.push(group);
      group = [];
      size = 0;
    }
    group.push(item);
    size += cost;
  }
  if (group.length) groups.push(group);
  return groups;
}

/** The wait before the next poll: short after progress, doubled while nothing changes (up to 10 s),
 * never under the share of the rate limit's tightest window that polls may use (20/minute → 6 s). */
export class PollDelay {
  constructor(limits) {
    const windows = (limits && limits.rate_limits) || [];
    this.floorMs = Math.max(0, ...windows.map((w) => (w.period_s / w.amount / POLL_SHARE) * 1000));
    this.current = POLL_FIRST_MS;
  }

  next(progressed) {
    this.current = progressed ? POLL_FIRST_MS : Math.min(this.current * 2, POLL_MAX_MS);
    return Math.max(this.current, this.floorMs);
  }
}

/**
 * The one way the crash browser writes HTML: the `html` tagged template
 * escapes every interpolated value unless it is already `SafeHtml` (the
 * result of another `html` template, or `raw()` for the few constant
 * strings that must pass through). Everything from a dump or an event —
 * function names, args, file names, pod names, abort texts — is attacker-
 * controlled, so there is no other string-to-HTML path in api/ui/.
 *
 * Values: strings and numbers are escaped; null, undefined and false render
 * nothing; arrays render each element by the same rules (so `${rows.map(...)}`
 * needs no join); SafeHtml passes through. Interpolate into quoted
 * attributes only (`href="${...}"`): the escape covers `"` and `'`, and URLs
 * come from `hrefOf`, which builds same-site paths only.
 */

export class SafeHtml {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

export type HtmlValue = SafeHtml | string | number | boolean | null | undefined | readonly HtmlValue[];

const ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;", "`": "&#96;" };

/** Text made safe for an element's content or a quoted attribute value. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"'`]/g, (c) => ESCAPES[c]!);
}

function render(v: HtmlValue): string {
  if (v instanceof SafeHtml) return v.text;
  if (v === null || v === undefined || v === false || v === true) return "";
  if (Array.isArray(v)) return v.map(render).join("");
  return escapeHtml(String(v));
}

export function html(strings: TemplateStringsArray, ...values: HtmlValue[]): SafeHtml {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1]!;
  return new SafeHtml(out);
}

/** Trusted markup (a constant of this code, never data). */
export function raw(s: string): SafeHtml {
  return new SafeHtml(s);
}

/**
 * A same-site link: `path` must start with "/" (not "//"), and the query is
 * built from `params` (empty values left out). The caller still
 * interpolates it through `html`, which escapes the `&`.
 */
export function hrefOf(path: string, params: Record<string, string | number | null | undefined> = {}): string {
  if (!path.startsWith("/") || path.startsWith("//")) throw new Error(`hrefOf: not a same-site path: ${path}`);
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== "") q.set(k, String(v));
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

/** A path segment from data (a signature hash, an analysis id), percent-encoded. */
export function seg(s: string): string {
  return encodeURIComponent(s);
}

/** The login form (api/ui/session.ts has the design) and the page of an error. */
import { page, type PageContext } from "./components.js";
import { html, type SafeHtml } from "./html.js";

export function loginPage(ctx: PageContext, next: string, problem: string | null): SafeHtml {
  return page(
    ctx,
    "Sign in",
    html`<div class="login"><h1>Sign in to the crash browser</h1>
<p class="muted">Paste a read or worker token (<code>CORESIGHT_READ_TOKENS</code>, <code>CORESIGHT_WORKER_TOKENS</code>, or one made with <code>coresight-worker token create</code>). A worker token can also resolve groups and reprocess analyses.</p>
${problem ? html`<p class="error" role="alert">${problem}</p>` : null}
<form method="post" action="/ui/login"><label for="token">token</label><input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<input type="hidden" name="next" value="${next}"><button class="primary" type="submit">Sign in</button></form>
<p class="small muted">The token is kept in an HttpOnly, SameSite=Strict cookie for 12 hours; sign out removes it.</p></div>`,
  );
}

export function errorPage(ctx: PageContext, status: number, message: string): SafeHtml {
  return page(
    ctx,
    `Error ${status}`,
    html`<h1>${status === 404 ? "Not found" : status === 403 ? "Not allowed" : "Request failed"}</h1><p class="error">${message}</p><p><a href="/ui/groups">crash groups</a></p>`,
  );
}

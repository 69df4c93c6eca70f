/**
 * The crash browser's one stylesheet, served as /ui/static/app.css (the
 * CSP allows styles from 'self' only: no inline style, no CDN). Light and
 * dark from prefers-color-scheme; tables turn into stacked rows on a phone.
 */
export const STYLESHEET = `
:root { color-scheme: light dark; --bg: #fff; --fg: #1b1f24; --muted: #5b6570; --line: #d8dee4; --panel: #f6f8fa; --link: #0b57d0;
  --new: #0a7d38; --regressed: #b3261e; --resolved: #5b6570; --ongoing: #8a5a00; --crash: #fff4d6; --code: #f0f2f4; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #0f1216; --fg: #e3e7eb; --muted: #9aa5b1; --line: #2d343c; --panel: #171b21; --link: #8ab4f8;
    --new: #5fd38d; --regressed: #ff8a80; --resolved: #9aa5b1; --ongoing: #f2c063; --crash: #3a3116; --code: #1d232a; }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg); font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
a { color: var(--link); }
header { border-bottom: 1px solid var(--line); background: var(--panel); }
nav { display: flex; flex-wrap: wrap; gap: .25rem 1rem; align-items: center; max-width: 78rem; margin: 0 auto; padding: .5rem 1rem; }
nav .brand { font-weight: 700; text-decoration: none; color: var(--fg); }
nav form { margin-left: auto; }
main { max-width: 78rem; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.35rem; margin: .25rem 0 .75rem; word-break: break-word; }
h2 { font-size: 1.1rem; margin: 1.5rem 0 .5rem; border-bottom: 1px solid var(--line); padding-bottom: .25rem; }
code, pre, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .88em; }
.mono { overflow-wrap: anywhere; }
code { background: var(--code); padding: 0 .25em; border-radius: 3px; word-break: break-all; }
pre { background: var(--code); padding: .75rem; overflow: auto; border-radius: 4px; max-height: 40rem; }
.muted { color: var(--muted); }
.small { font-size: .85em; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; overflow-wrap: anywhere; }
th { font-weight: 600; font-size: .85em; color: var(--muted); }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.crash td { background: var(--crash); }
.badge { display: inline-block; padding: 0 .45em; border-radius: 999px; font-size: .78em; font-weight: 600; border: 1px solid currentColor; white-space: nowrap; }
.badge.new { color: var(--new); } .badge.regressed { color: var(--regressed); } .badge.resolved { color: var(--resolved); } .badge.ongoing { color: var(--ongoing); }
.badge.failed { color: var(--regressed); } .badge.completed { color: var(--new); } .badge.queued, .badge.running { color: var(--ongoing); }
.badge.found { color: var(--new); } .badge.missing, .badge.mismatched, .badge.invalid { color: var(--regressed); }
form.filters { display: flex; flex-wrap: wrap; gap: .5rem; align-items: end; background: var(--panel); padding: .75rem; border-radius: 6px; margin-bottom: 1rem; }
form.filters label { display: flex; flex-direction: column; font-size: .8em; color: var(--muted); gap: .15rem; }
select, input, button { font: inherit; padding: .3rem .5rem; border: 1px solid var(--line); border-radius: 4px; background: var(--bg); color: var(--fg); max-width: 16rem; }
button { cursor: pointer; background: var(--panel); }
button.primary { background: var(--link); color: var(--bg); border-color: var(--link); }
form.inline { display: inline; }
.summary { background: var(--panel); border-left: 4px solid var(--regressed); padding: .75rem 1rem; border-radius: 4px; }
.summary p { margin: .3rem 0; }
.callout { border: 1px solid var(--regressed); padding: .5rem .75rem; border-radius: 4px; white-space: pre-wrap; word-break: break-word; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; margin: 0; }
dl.facts dt { color: var(--muted); } dl.facts dd { margin: 0; word-break: break-word; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(9rem, 1fr)); gap: .75rem; }
.card { background: var(--panel); border-radius: 6px; padding: .75rem 1rem; }
.card .n { font-size: 2rem; font-weight: 700; font-variant-numeric: tabular-nums; }
.spark { color: var(--link); vertical-align: middle; } .spark rect { fill: currentColor; }
.pager { display: flex; gap: 1rem; align-items: center; margin-top: 1rem; }
details { margin: .35rem 0; } details > summary { cursor: pointer; }
.actions { display: flex; flex-wrap: wrap; gap: .5rem; margin: .5rem 0 1rem; }
.login { max-width: 26rem; margin: 3rem auto; } .login input { width: 100%; max-width: none; margin: .25rem 0 .75rem; }
.error { color: var(--regressed); }
@media (max-width: 720px) {
  table.stack, table.stack tbody { display: block; }
  table.stack thead { display: none; }
  table.stack tr { display: block; border-bottom: 1px solid var(--line); padding: .4rem 0; }
  table.stack td { display: block; border: 0; padding: .1rem .25rem; }
  table.stack td[data-label]::before { content: attr(data-label) ": "; color: var(--muted); font-size: .85em; }
  td.num { text-align: left; }
}
`;

// The web admin's pages: server-rendered HTML (hono's `html` template, which escapes every value), no JavaScript.
import { html, raw } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';
import type { MailboxRow, ViewData, Who } from '../access/index.js';
import { autoresponders, spamForm } from './more-pages.js';

export type Html = HtmlEscapedString | Promise<HtmlEscapedString>;

/** Contrast ≥ 7:1 for text (WCAG AAA), visible focus, one column on a phone; about 1.5 kB, inline (one request). */
const CSS = `
*{box-sizing:border-box}body{font:16px/1.5 system-ui,sans-serif;margin:0;color:#111;background:#fff}
header,main{max-width:60rem;margin:0 auto;padding:0 1rem}header{display:flex;flex-wrap:wrap;gap:1rem;align-items:center;
border-bottom:2px solid #111}header nav{flex:1}a{color:#0645ad}a:focus,button:focus,input:focus,select:focus{outline:3px
solid #b35900;outline-offset:2px}.skip{position:absolute;left:-999px}.skip:focus{left:1rem;top:1rem;background:#fff}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.4rem;border-bottom:1px solid #555;vertical-align:top}
form.inline{display:inline}label{display:block;font-weight:600}input,select,button{font:inherit;padding:.35rem;
border:1px solid #333;border-radius:3px}button{background:#0645ad;color:#fff;border-color:#0645ad;cursor:pointer}
button.danger{background:#a00;border-color:#a00}fieldset{border:1px solid #333;margin:1rem 0}.msg{padding:.5rem;
border:2px solid #060;background:#e6f4e6}.err{padding:.5rem;border:2px solid #a00;background:#fde8e8}meter{width:8rem}
input,select,textarea{max-width:100%}textarea{font:inherit}fieldset{min-width:0}main{overflow-wrap:anywhere}
@media (max-width:40rem){td,th{display:block;border:0}tr{display:block;border-bottom:1px solid #555}}`;

export interface Frame {
  readonly title: string;
  readonly who?: Who;
  readonly flash?: { readonly ok: boolean; readonly text: string };
}

export function layout(f: Frame, body: Html): Html {
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width,initial-scale=1" />
        <title>${f.title} — quail</title>
        <style>
          ${raw(CSS)}
        </style>
      </head>
      <body>
        <a class="skip" href="#main">Skip to content</a>
        <header>
          <strong>quail</strong>
          <nav aria-label="main">
            ${
              f.who
                ? html`<a href="/">Domains</a> · <a href="/me">My mailbox</a> · <a href="/lists">Lists</a>${
                      f.who.systemAdmin ? html` · <a href="/admins">Administrators</a>` : ''
                    }`
                : ''
            }
          </nav>
          ${
            f.who
              ? html`<form class="inline" method="post" action="/logout">
                  <input type="hidden" name="csrf" value="${f.who.csrf}" /> <span>${f.who.login}</span>
                  <button type="submit">Log out</button>
                </form>`
              : ''
          }
        </header>
        <main id="main">
          <h1>${f.title}</h1>
          ${
            f.flash
              ? html`<p class="${f.flash.ok ? 'msg' : 'err'}" role="${f.flash.ok ? 'status' : 'alert'}">
                  ${f.flash.text}
                </p>`
              : ''
          }${body}
        </main>
      </body>
    </html>`;
}

export function loginPage(pre: string, error?: string): Html {
  return layout(
    { title: 'Log in', ...(error === undefined ? {} : { flash: { ok: false, text: error } }) },
    html`<form method="post" action="/login">
      <input type="hidden" name="pre" value="${pre}" />
      <p>
        <label for="login">Mailbox address</label
        ><input id="login" name="login" type="email" autocomplete="username" required autofocus size="30" />
      </p>
      <p>
        <label for="password">Password</label
        ><input id="password" name="password" type="password" autocomplete="current-password" required size="30" />
      </p>
      <p><button type="submit">Log in</button></p>
    </form>`,
  );
}

export const csrfField = (who: Who): Html => html`<input type="hidden" name="csrf" value="${who.csrf}" />`;

/** 1536 → `1.5 KiB`. */
export function bytes(n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} bytes` : `${v.toFixed(v < 10 ? 1 : 0)} ${units[i] ?? ''}`;
}

/** Use against quota: a <meter> (read by screen readers as a value) and the figures in words beside it. */
function usage(m: MailboxRow): Html {
  const count = html`<span data-messages="${m.messages}">${m.messages} message${m.messages === 1 ? '' : 's'}</span>`;
  if (m.quotaBytes === null) return html`${count}, ${bytes(m.usedBytes)} (no quota)`;
  const pct = m.quotaBytes === 0 ? 100 : Math.min(100, Math.round((m.usedBytes / m.quotaBytes) * 100));
  return html`${count}<br /><meter
      min="0"
      max="${m.quotaBytes}"
      low="${Math.round(m.quotaBytes * 0.8)}"
      high="${Math.round(m.quotaBytes * 0.9)}"
      optimum="0"
      value="${Math.min(m.usedBytes, m.quotaBytes)}"
      aria-label="use of ${m.address}"
    >
      ${pct} %
    </meter>
    ${bytes(m.usedBytes)} of ${bytes(m.quotaBytes)} (${pct} %)`;
}

/** POP3, IMAP and SMTP AUTH for one mailbox: three labelled checkboxes (the no-pop, no-imap, no-smtp-auth flags). */
function services(who: Who, m: MailboxRow, action: string): Html {
  const box = (name: 'pop' | 'imap' | 'smtp', label: string): Html =>
    html`<input
        id="${name}-${m.local}"
        name="${name}"
        type="checkbox"
        value="1"
        ${m[name] ? raw('checked') : ''}
      /><label for="${name}-${m.local}" style="display:inline">${label}</label><br />`;
  return html`<form method="post" action="${action}">
    ${csrfField(who)}<input type="hidden" name="local" value="${m.local}" />
    <fieldset>
      <legend>Services of ${m.local}</legend>
      ${box('pop', 'POP3')}${box('imap', 'IMAP')}${box('smtp', 'SMTP AUTH')}
    </fieldset>
    <button type="submit">Save</button>
  </form>`;
}

export function homePage(who: Who, data: Extract<ViewData, { view: 'home' }>, flash?: Frame['flash']): Html {
  return layout(
    { title: 'Domains', who, ...(flash ? { flash } : {}) },
    html`${
        data.domains.length === 0
          ? html`<p>You administer no domain. <a href="/me">Your mailbox</a>: password and forwarding.</p>`
          : html`<ul>
              ${data.domains.map((d) => html`<li><a href="/domain/${encodeURIComponent(d)}">${d}</a></li>`)}
            </ul>`
      }
      <p>${who.systemAdmin ? 'You are a system administrator.' : ''}</p>`,
  );
}

export function domainPage(who: Who, d: Extract<ViewData, { view: 'domain' }>, flash?: Frame['flash']): Html {
  const base = `/domain/${encodeURIComponent(d.domain)}`;
  const act = (what: string): string => `${base}/${what}`;
  return layout(
    { title: d.domain, who, ...(flash ? { flash } : {}) },
    html`${d.aliasDomains.length > 0 ? html`<p>Also known as ${d.aliasDomains.join(', ')}.</p>` : ''}
      <h2>Mailboxes</h2>
      <table>
        <thead>
          <tr>
            <th scope="col">Address</th>
            <th scope="col">Use</th>
            <th scope="col">Quota</th>
            <th scope="col">Password</th>
            <th scope="col">Services</th>
            <th scope="col">Remove</th>
          </tr>
        </thead>
        <tbody>
          ${d.mailboxes.map(
            (m) =>
              html`<tr data-mailbox="${m.address}">
                <th scope="row">
                  ${m.address}${m.realName ? html`<br />${m.realName}` : ''}${
                    m.forward.length > 0 ? html`<br />→ ${m.forward.join(', ')}${m.keepCopy ? ' (copy kept)' : ''}` : ''
                  }
                </th>
                <td>${usage(m)}</td>
                <td>
                  <form method="post" action="${act('mailbox-quota')}">
                    ${csrfField(who)}<input type="hidden" name="local" value="${m.local}" />
                    <label for="q-${m.local}">Quota for ${m.local}</label
                    ><input
                      id="q-${m.local}"
                      name="quota"
                      size="7"
                      value="${m.quotaBytes === null ? 'none' : String(m.quotaBytes)}"
                    />
                    <button type="submit">Set</button>
                  </form>
                </td>
                <td>
                  <form method="post" action="${act('mailbox-password')}">
                    ${csrfField(who)}<input type="hidden" name="local" value="${m.local}" /><label for="p-${m.local}"
                      >New password for ${m.local}</label
                    ><input
                      id="p-${m.local}"
                      name="password"
                      type="password"
                      autocomplete="new-password"
                      required
                      size="12"
                    />
                    <button type="submit">Set</button>
                  </form>
                </td>
                <td>${services(who, m, act('mailbox-services'))}</td>
                <td>
                  <form method="post" action="${act('mailbox-remove')}">
                    ${csrfField(who)}<input type="hidden" name="local" value="${m.local}" /><button
                      class="danger"
                      type="submit"
                      aria-label="Remove ${m.address} and its mail"
                    >
                      Remove
                    </button>
                  </form>
                </td>
              </tr>`,
          )}
        </tbody>
      </table>
      <form method="post" action="${act('mailbox-add')}">
        <fieldset>
          <legend>Add a mailbox</legend>
          ${csrfField(who)}
          <p>
            <label for="new-local">Name (before @${d.domain})</label
            ><input id="new-local" name="local" required size="20" />
          </p>
          <p>
            <label for="new-password">Password</label
            ><input id="new-password" name="password" type="password" autocomplete="new-password" required size="20" />
          </p>
          <p>
            <label for="new-quota">Quota (e.g. 100M, 2G, none)</label
            ><input id="new-quota" name="quota" value="none" size="8" />
          </p>
          <p><button type="submit">Add mailbox</button></p>
        </fieldset>
      </form>
      <h2>Aliases and forwards</h2>
      <table>
        <thead>
          <tr>
            <th scope="col">Address</th>
            <th scope="col">Goes to</th>
          </tr>
        </thead>
        <tbody>
          ${d.aliases.map(
            (a) =>
              html`<tr>
                <th scope="row">${a.local}@${d.domain}</th>
                <td>
                  <ul>
                    ${a.targets.map(
                      (t) =>
                        html`<li>
                          ${t}
                          <form class="inline" method="post" action="${act('alias-remove')}">
                            ${csrfField(who)} <input type="hidden" name="local" value="${a.local}" /><input
                              type="hidden"
                              name="target"
                              value="${t}"
                            />
                            <button class="danger" type="submit" aria-label="Remove ${t} from ${a.local}@${d.domain}">
                              Remove
                            </button>
                          </form>
                        </li>`,
                    )}
                  </ul>
                </td>
              </tr>`,
          )}
        </tbody>
      </table>
      <form method="post" action="${act('alias-add')}">
        <fieldset>
          <legend>Add an alias or forward</legend>
          ${csrfField(who)}
          <p>
            <label for="alias-local">Address (before @${d.domain})</label
            ><input id="alias-local" name="local" required size="20" />
          </p>
          <p>
            <label for="alias-target">Deliver to (an address)</label
            ><input id="alias-target" name="target" type="email" required size="30" />
          </p>
          <p><button type="submit">Add</button></p>
        </fieldset>
      </form>
      <h2>Catch-all</h2>
      <form method="post" action="${act('catchall')}">
        ${csrfField(who)}
        <p>
          <label for="catchall"
            >Mail for addresses with no mailbox or alias: <code>bounce-no-mailbox</code>, <code>delete</code>, an
            address to forward to, or <code>mailbox:NAME</code></label
          ><input id="catchall" name="policy" value="${d.catchall}" required size="30" />
          <button type="submit">Set</button>
        </p>
      </form>
      ${autoresponders(who, d)}
      <h2>Administrators</h2>
      <p>${d.admins.length === 0 ? 'None besides the system administrators.' : d.admins.join(', ')}</p>`,
  );
}

export function selfPage(who: Who, m: MailboxRow, flash?: Frame['flash']): Html {
  return layout(
    { title: m.address, who, ...(flash ? { flash } : {}) },
    html`<p>${usage(m)}</p>
      <form method="post" action="/me/password">
        <fieldset>
          <legend>Change your password</legend>
          ${csrfField(who)}
          <input type="hidden" name="self" value="${m.address}" />
          <p>
            <label for="pw1">New password</label
            ><input id="pw1" name="password" type="password" autocomplete="new-password" required size="20" />
          </p>
          <p>
            <label for="pw2">Again</label
            ><input id="pw2" name="again" type="password" autocomplete="new-password" required size="20" />
          </p>
          <p><button type="submit">Change password</button></p>
        </fieldset>
      </form>
      <form method="post" action="/me/forward">
        <fieldset>
          <legend>Forwarding</legend>
          ${csrfField(who)}
          <input type="hidden" name="self" value="${m.address}" />
          <p>
            <label for="fwd">Forward my mail to (addresses, one per line; empty: no forwarding)</label>
            <textarea id="fwd" name="targets" rows="3" cols="30">${m.forward.join('\n')}</textarea>
          </p>
          <p>
            <input id="keep" name="keep" type="checkbox" value="1" ${m.keepCopy ? raw(' checked') : ''} />
            <label for="keep" style="display:inline">Keep a copy in my mailbox</label>
          </p>
          <p><button type="submit">Save forwarding</button></p>
        </fieldset>
      </form>
      ${vacationForm(who, m)} ${spamForm(who, m)}`,
  );
}

/** The vacation reply (RFC 3834): on or off, its subject, text and how often the same sender gets it. */
function vacationForm(who: Who, m: MailboxRow): Html {
  const v = m.vacation;
  return html`<form method="post" action="/me/vacation">
    <fieldset>
      <legend>Vacation reply</legend>
      ${csrfField(who)}
      <input type="hidden" name="self" value="${m.address}" />
      <p>
        <input id="vac-on" name="on" type="checkbox" value="1" ${v ? raw('checked') : ''} />
        <label for="vac-on" style="display:inline">Answer mail while I am away</label>
      </p>
      <p>
        <label for="vac-subject">Subject (empty: “Auto:” and the original subject)</label>
        <input id="vac-subject" name="subject" size="40" value="${v?.subject ?? ''}" />
      </p>
      <p>
        <label for="vac-body">Message</label>
        <textarea id="vac-body" name="body" rows="5" cols="50">${v?.body ?? ''}</textarea>
      </p>
      <p>
        <label for="vac-days">Answer the same sender at most once in (days)</label>
        <input id="vac-days" name="days" type="number" min="1" max="365" value="${String(v?.days ?? 7)}" />
      </p>
      <p>Never sent to mailing lists, bulk mail, bounces or other automatic replies.</p>
      <p><button type="submit">Save vacation reply</button></p>
    </fieldset>
  </form>`;
}

export function errorPage(status: number, text: string, who?: Who): Html {
  const title = status === 403 ? 'Not allowed' : status === 404 ? 'Not found' : status === 503 ? 'Try again' : 'Error';
  return layout({ title, ...(who ? { who } : {}), flash: { ok: false, text } }, html`<p><a href="/">Back</a></p>`);
}

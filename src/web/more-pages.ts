// More of the web admin's pages (issue 19): the spam folder on a user's page, the autoresponders of a domain, and
// the system administrator's page of domain administrators.
import { html, raw } from 'hono/html';
import type { MailboxRow, ViewData, Who } from '../access/index.js';
import { csrfField, layout, type Frame, type Html } from './pages.js';

/** Where mail quail's filter tagged as spam goes: the inbox, or a Maildir++ folder IMAP clients show. */
export function spamForm(who: Who, m: MailboxRow): Html {
  return html`<form method="post" action="/me/spam">
    <fieldset>
      <legend>Spam</legend>
      ${csrfField(who)}
      <input type="hidden" name="self" value="${m.address}" />
      <p>
        <input id="spam-on" name="on" type="checkbox" value="1" ${m.spamFolder !== null ? raw('checked') : ''} />
        <label for="spam-on" style="display:inline">Put mail the spam filter marked as spam in a folder</label>
      </p>
      <p>
        <label for="spam-folder">Folder (as your mail program shows it)</label>
        <input id="spam-folder" name="folder" size="20" value="${m.spamFolder ?? 'Junk'}" />
      </p>
      <p>Without it, such mail comes to your inbox with the mark in its header.</p>
      <p><button type="submit">Save spam setting</button></p>
    </fieldset>
  </form>`;
}

/** A domain's vacation replies: who has one on (with a button to end it), and a form to set one for any mailbox. */
export function autoresponders(who: Who, d: Extract<ViewData, { view: 'domain' }>): Html {
  const act = `/domain/${encodeURIComponent(d.domain)}/vacation`;
  const on = d.mailboxes.filter((m) => m.vacation !== null);
  return html`<h2>Autoresponders</h2>
    ${
      on.length === 0
        ? html`<p>No mailbox answers mail automatically.</p>`
        : html`<table>
            <thead>
              <tr>
                <th scope="col">Mailbox</th>
                <th scope="col">Reply</th>
                <th scope="col">Turn off</th>
              </tr>
            </thead>
            <tbody>
              ${on.map(
                (m) =>
                  html`<tr data-vacation="${m.address}">
                    <th scope="row">${m.address}</th>
                    <td>
                      ${m.vacation?.subject === '' ? '“Auto:” and the subject' : m.vacation?.subject}<br />${
                        m.vacation?.body
                      }<br />once per sender in ${String(m.vacation?.days)} days
                    </td>
                    <td>
                      <form method="post" action="${act}">
                        ${csrfField(who)}<input type="hidden" name="local" value="${m.local}" />
                        <button class="danger" type="submit" aria-label="Turn off the vacation reply of ${m.address}">
                          Turn off
                        </button>
                      </form>
                    </td>
                  </tr>`,
              )}
            </tbody>
          </table>`
    }
    <form method="post" action="${act}">
      <fieldset>
        <legend>Set a vacation reply</legend>
        ${csrfField(who)}<input type="hidden" name="on" value="1" />
        <p>
          <label for="ar-local">Mailbox</label>
          <select id="ar-local" name="local" required>
            ${d.mailboxes.map((m) => html`<option value="${m.local}">${m.address}</option>`)}
          </select>
        </p>
        <p>
          <label for="ar-subject">Subject (empty: “Auto:” and the original subject)</label>
          <input id="ar-subject" name="subject" size="40" />
        </p>
        <p>
          <label for="ar-body">Message</label>
          <textarea id="ar-body" name="body" rows="4" cols="50" required></textarea>
        </p>
        <p>
          <label for="ar-days">Answer the same sender at most once in (days)</label>
          <input id="ar-days" name="days" type="number" min="1" max="365" value="7" />
        </p>
        <p><button type="submit">Set vacation reply</button></p>
      </fieldset>
    </form>`;
}

/** The system administrator's page: every domain's administrators, with add and remove (`quail domain admin`). */
export function adminsPage(who: Who, data: Extract<ViewData, { view: 'admins' }>, flash?: Frame['flash']): Html {
  return layout(
    { title: 'Domain administrators', who, ...(flash ? { flash } : {}) },
    html`<table>
        <thead>
          <tr>
            <th scope="col">Domain</th>
            <th scope="col">Administrator</th>
            <th scope="col">Remove</th>
          </tr>
        </thead>
        <tbody>
          ${data.admins.map(
            (a) =>
              html`<tr data-admin="${a.domain} ${a.login}">
                <td>${a.domain}</td>
                <th scope="row">${a.login}</th>
                <td>
                  <form method="post" action="/admins/remove">
                    ${csrfField(who)}<input type="hidden" name="domain" value="${a.domain}" /><input
                      type="hidden"
                      name="login"
                      value="${a.login}"
                    />
                    <button class="danger" type="submit" aria-label="Remove ${a.login} as administrator of ${a.domain}">
                      Remove
                    </button>
                  </form>
                </td>
              </tr>`,
          )}
        </tbody>
      </table>
      ${data.admins.length === 0 ? html`<p>No domain has an administrator of its own.</p>` : ''}
      <form method="post" action="/admins/add">
        <fieldset>
          <legend>Make a mailbox administrator of a domain</legend>
          ${csrfField(who)}
          <p>
            <label for="adm-domain">Domain</label>
            <select id="adm-domain" name="domain" required>
              ${data.domains.map((d) => html`<option value="${d}">${d}</option>`)}
            </select>
          </p>
          <p>
            <label for="adm-login">Mailbox address (of any domain)</label>
            <input id="adm-login" name="login" type="email" required size="30" />
          </p>
          <p><button type="submit">Add administrator</button></p>
        </fieldset>
      </form>
      <p>Mailboxes with the domain-admin flag administer their own domain too; they are not listed here.</p>`,
  );
}

// The mailing lists' pages: my lists (and a new list), one list (settings, people, held posts, archive), one archived
// post. Server-rendered with hono's `html`, which escapes every value: a post's text is shown as text, never as HTML.
import { html, raw } from 'hono/html';
import type { ListOptions, ListViewData, Who } from '../access/index.js';
import { bytes, csrfField, layout, type Frame, type Html } from './pages.js';

type Lists = Extract<ListViewData, { view: 'lists' }>;
type ListData = Extract<ListViewData, { view: 'list' }>;
type Post = Extract<ListViewData, { view: 'post' }>;

export const listPath = (address: string): string => `/list/${encodeURIComponent(address)}`;

const frame = (title: string, who: Who, flash?: Frame['flash']): Frame => ({ title, who, ...(flash ? { flash } : {}) });

/** The option fields of a list (new or existing), each labelled; `id` keeps ids unique on the page. */
function optionFields(id: string, o?: ListOptions): Html {
  const box = (name: string, label: string, on: boolean): Html =>
    html`<p>
      <input id="${id}-${name}" name="${name}" type="checkbox" value="1" ${on ? raw('checked') : ''} /><label
        for="${id}-${name}"
        style="display:inline"
        >${label}</label
      >
    </p>`;
  return html`${box('membersOnly', 'Only subscribers may post', o?.membersOnly ?? false)}
    ${box('moderated', 'Posts wait for a moderator', o?.moderated ?? false)}
    ${box('replyToList', 'Replies go to the list', o?.replyToList ?? false)}
    <p>
      <label for="${id}-prefix">Subject prefix (e.g. [team])</label
      ><input id="${id}-prefix" name="prefix" size="20" maxlength="200" value="${o?.subjectPrefix ?? ''}" />
    </p>
    <p>
      <label for="${id}-max">Largest post (e.g. 1M, none)</label
      ><input id="${id}-max" name="maxSize" size="8" value="${o?.maxBytes == null ? 'none' : String(o.maxBytes)}" />
    </p>
    <p>
      <label for="${id}-description">Description</label
      ><input id="${id}-description" name="description" size="40" maxlength="200" value="${o?.description ?? ''}" />
    </p>`;
}

export function listsPage(who: Who, d: Lists, flash?: Frame['flash']): Html {
  return layout(
    frame('Mailing lists', who, flash),
    html`${
      d.lists.length === 0
        ? html`<p>You are on no list.</p>`
        : html`<table>
            <thead>
              <tr>
                <th scope="col">List</th>
                <th scope="col">You are</th>
                <th scope="col">Description</th>
              </tr>
            </thead>
            <tbody>
              ${d.lists.map(
                (l) =>
                  html`<tr>
                    <th scope="row"><a href="${listPath(l.address)}">${l.address}</a></th>
                    <td>${l.roles.join(', ')}</td>
                    <td>${l.description}</td>
                  </tr>`,
              )}
            </tbody>
          </table>`
    }
    ${d.domains.map(
      (x) =>
        html`<h2>New list in ${x.domain}</h2>
          <form method="post" action="/lists/new">
            ${csrfField(who)}<input type="hidden" name="domain" value="${x.domain}" />
            <p>
              <label for="new-${x.domain}">List name (before @${x.domain})</label
              ><input id="new-${x.domain}" name="local" required size="20" />
            </p>
            <p>
              <label for="owners-${x.domain}">Owners (addresses, space or comma between)</label
              ><input id="owners-${x.domain}" name="owners" size="40" />
            </p>
            <p>
              <label for="mods-${x.domain}">Moderators (addresses)</label
              ><input id="mods-${x.domain}" name="moderators" size="40" />
            </p>
            ${optionFields(`new-${x.domain}`)}
            <button type="submit">Create list</button>
          </form>
          ${
            x.admin
              ? html`<form method="post" action="/lists/users">
                  ${csrfField(who)}<input type="hidden" name="domain" value="${x.domain}" />
                  <p>
                    <input
                      id="users-${x.domain}"
                      name="on"
                      type="checkbox"
                      value="1"
                      ${x.usersCreate ? raw('checked') : ''}
                    /><label for="users-${x.domain}" style="display:inline"
                      >Users of ${x.domain} may create their own lists</label
                    >
                  </p>
                  <button type="submit">Save</button>
                </form>`
              : ''
          }`,
    )}`,
  );
}

function people(who: Who, d: ListData): Html {
  const act = `${listPath(d.address)}/members`;
  const names = { owner: 'Owners', moderator: 'Moderators', subscriber: 'Subscribers' } as const;
  return html`${(['subscriber', 'owner', 'moderator'] as const).map(
    (role) =>
      html`<h2>${names[role]}</h2>
        <ul>
          ${d.people[role].map(
            (m) =>
              html`<li data-member="${m.address}">
                ${m.address}${m.bounces > 0 ? ` (bouncing: ${m.bounces})` : ''}
                <form class="inline" method="post" action="${act}">
                  ${csrfField(who)}<input type="hidden" name="role" value="${role}" /><input
                    type="hidden"
                    name="remove"
                    value="${m.address}"
                  />
                  <button type="submit" class="danger" aria-label="Remove ${m.address} (${role})">Remove</button>
                </form>
              </li>`,
          )}
        </ul>
        <form method="post" action="${act}">
          ${csrfField(who)}<input type="hidden" name="role" value="${role}" />
          <label for="add-${role}">Add ${names[role].toLowerCase()} (addresses)</label
          ><input id="add-${role}" name="add" size="40" />
          <button type="submit">Add</button>
        </form>`,
  )}`;
}

export function listPage(who: Who, d: ListData, flash?: Frame['flash']): Html {
  const base = listPath(d.address);
  return layout(
    frame(d.address, who, flash),
    html`${d.options.description === '' ? '' : html`<p>${d.options.description}</p>`}
      ${
        d.may.moderate
          ? html`<h2>Waiting for a moderator</h2>
              ${d.held.length === 0 ? html`<p>No post is waiting.</p>` : ''}
              ${d.held.map(
                (h) =>
                  html`<article data-held="${h.id}">
                    <h3>${h.subject || '(no subject)'}</h3>
                    <p>From ${h.from || h.sender}${h.date ? `, ${h.date}` : ''}</p>
                    <pre style="white-space:pre-wrap">${h.excerpt}</pre>
                    <form class="inline" method="post" action="${base}/moderate">
                      ${csrfField(who)}<input type="hidden" name="id" value="${h.id}" />
                      <button type="submit" name="decision" value="accept">Accept</button>
                      <button type="submit" name="decision" value="reject" class="danger">Reject</button>
                    </form>
                  </article>`,
              )}`
          : ''
      }
      <h2>Archive</h2>
      ${
        d.archive.length === 0
          ? html`<p>No post yet.</p>`
          : html`<table>
              <thead>
                <tr>
                  <th scope="col">No.</th>
                  <th scope="col">Subject</th>
                  <th scope="col">From</th>
                  <th scope="col">Date</th>
                </tr>
              </thead>
              <tbody>
                ${d.archive.map(
                  (a) =>
                    html`<tr>
                      <td>${a.n}</td>
                      <th scope="row"><a href="${base}/archive/${a.n}">${a.subject || '(no subject)'}</a></th>
                      <td>${a.from}</td>
                      <td>${a.date}</td>
                    </tr>`,
                )}
              </tbody>
            </table>`
      }
      ${
        d.may.manage
          ? html`<h2>Settings</h2>
              <form method="post" action="${base}/options">
                ${csrfField(who)}${optionFields('opt', d.options)}
                <button type="submit">Save settings</button>
              </form>
              ${people(who, d)}
              <h2>Delete</h2>
              <form method="post" action="${base}/delete">
                ${csrfField(who)}
                <button type="submit" class="danger">Delete the list ${d.address}</button>
              </form>`
          : ''
      }
      <p>
        Subscribe by mail: ${d.address.replace('@', '-subscribe@')}; the limit on posts is
        ${d.options.maxBytes === null ? 'none' : bytes(d.options.maxBytes)}.
      </p>`,
  );
}

export function postPage(who: Who, d: Post, flash?: Frame['flash']): Html {
  const subject = d.fields.find(([n]) => n === 'subject')?.[1] ?? '(no subject)';
  return layout(
    frame(subject, who, flash),
    html`<p><a href="${listPath(d.address)}">${d.address}</a>, post ${d.n}</p>
      <dl>
        ${d.fields.map(
          ([n, v]) =>
            html`<dt>${n.charAt(0).toUpperCase() + n.slice(1)}</dt>
              <dd>${v}</dd>`,
        )}
      </dl>
      <pre style="white-space:pre-wrap" data-post-body>${d.text}</pre>`,
  );
}

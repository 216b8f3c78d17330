// approvals.js — the core of the demo's approval app page (app.html, served
// at /demo/app and /demo/bankid). It polls the demo's list of the
// simulator's requests (config.requestsURL, /demo/api/requests: the /sim
// list, each request with the call it was made for: callSid, caller,
// callStartedAt, initiator), keeps one card per user (their newest
// request) and moves requests through the simulator's API (POST
// {simURL}/requests/{id}/open|acknowledge|approve|decline).
//
// How a card looks is up to a view, one per broker the simulator speaks:
// bankid.js (idura), guardian.js (auth0), mosaic.js (transmit) and
// idapp.js (generic). A view is an object with
//
//   build(c)          makes the card's elements: c.root (in the list), and
//                     optionally c.page (a second place the request shows),
//                     c.error (role=alert) and c.expires (the clock)
//   render(c)         shows c.req, c.busy and c.replaced
//   outcome(c)        the words for a finished request, announced
//   text              { added(req), replaced(req), online, offline, gone,
//                     failed(status), unreachable }
//   keep(c)           optional: keep a finished card past SHOW_FINISHED_MS
//   afterApply(c, prev, hadFocus)  optional: move focus within the card
//   removed(c)        optional: the card left the page
//
// The simulator closes a user's older pending request when a newer one
// starts (state "cancelled"); the newest card lists what it replaced.

import { formatNumber } from './callerid.js';

export { formatNumber };

export const POLL_MS = 1000;
export const SHOW_FINISHED_MS = 8000; // a finished request stays up this long

export const el = (tag, cls, text, lang) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  if (lang) e.lang = lang;
  return e;
};

// button makes a type=button button; action, when given, is its
// data-action (approve, decline, …), which tests and styles use.
export const button = (cls, text, onClick, action) => {
  const b = el('button', cls, text);
  b.type = 'button';
  if (action) b.dataset.action = action;
  b.addEventListener('click', onClick);
  return b;
};

export const mmss = (ms) => {
  const s = Math.max(0, Math.ceil(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
};

export const clockTime = (iso) => new Intl.DateTimeFormat('en-GB', { hour: '2-digit', minute: '2-digit', second: '2-digit' }).format(new Date(iso));

// expiresIn is "Expires in 4:59" for a pending request, "" otherwise.
export const expiresIn = (r, words = 'Expires in') => (r.state === 'pending' && r.expiresAt
  ? `${words} ${mmss(Date.parse(r.expiresAt) - Date.now())}`
  : '');

// splitCode splits a binding message with a code ("Code 4821", "Kod
// 4821") into its words and the code; a message without one is all words.
export const splitCode = (msg) => {
  const m = /^(.*?)\s*(\d{3,})$/.exec(String(msg ?? '').trim());
  return m ? { words: m[1], code: m[2] } : { words: String(msg ?? '').trim(), code: '' };
};

// userKey names the user a request is for: the simulator cancels a user's
// older request when a newer one starts.
export const userKey = (r) => [r.profile, r.country, r.name, r.maskedId, r.hintType, r.maskedHint].join('\u0000');

// callLine links a request to its call: "Call from +46 70 174 06 37,
// 10:41:03 · started by agent alice".
export const callLine = (r) => {
  if (!r.callSid) return 'Not linked to a call of the demo phone';
  const parts = [`Call from ${r.caller ? formatNumber(r.caller) : 'an unknown number'}${r.callStartedAt ? `, ${clockTime(r.callStartedAt)}` : ''}`];
  const agent = /^agent:(.+)$/.exec(r.initiator ?? '');
  if (agent) parts.push(`started by agent ${agent[1]}`);
  return parts.join(' · ');
};

// replacedNote is the collapsed list of a user's older requests a card's
// request replaced (c.replaced), or a hidden element when there are none.
export const replacedNote = () => {
  const d = el('details', 'replaced');
  d.lang = 'en';
  d.hidden = true;
  return d;
};

export const renderReplaced = (note, replaced) => {
  const n = replaced.length;
  note.hidden = n === 0;
  if (!n) return;
  const summary = el('summary', '', n === 1 ? 'Replaces an older request' : `Replaces ${n} older requests`);
  const list = el('ul');
  for (const r of replaced) list.append(el('li', '', `${callLine(r)} — ${r.state === 'cancelled' ? 'replaced by a newer request' : r.state}`));
  const open = note.open;
  note.replaceChildren(summary, list);
  note.open = open;
};

// newestPerUser groups the list by user: the newest request of each, and
// the older ones the simulator closed for a newer one.
export const newestPerUser = (list) => {
  const groups = new Map();
  const sorted = [...list].filter((r) => r?.id).sort((a, b) => (Date.parse(b.createdAt) || 0) - (Date.parse(a.createdAt) || 0));
  for (const r of sorted) {
    const k = userKey(r);
    const g = groups.get(k);
    if (g) {
      if (r.state === 'cancelled') g.older.push(r);
    } else {
      groups.set(k, { newest: r, older: [] });
    }
  }
  return groups;
};

// Approvals runs the page: shell holds the page's fixed elements (list,
// empty, conn, announce), view draws the cards.
export class Approvals {
  cards = new Map(); // user key -> card (of the user's newest request)
  simURL = '/broker/sim';
  requestsURL = '/demo/api/requests';
  #connected = null;

  constructor(view, shell) {
    this.view = view;
    this.shell = shell;
  }

  say(text) {
    const a = this.shell.announce;
    a.textContent = '';
    setTimeout(() => { a.textContent = text; }, 50);
  }

  start(cfg) {
    if (cfg?.simURL) this.simURL = String(cfg.simURL).replace(/\/+$/, '');
    if (cfg?.requestsURL) this.requestsURL = String(cfg.requestsURL);
    this.#poll();
    setInterval(() => { for (const c of this.cards.values()) this.#tick(c); }, 1000);
  }

  // hasFocus reports whether keyboard focus is in one of the card's places.
  hasFocus(c) {
    const a = document.activeElement;
    return !!a && (c.root.contains(a) || !!c.page?.contains(a));
  }

  render(c) {
    this.view.render(c);
    for (const r of [c.root, c.page]) {
      if (!r) continue;
      r.dataset.callSid = c.req.callSid ?? '';
      r.dataset.requestId = c.req.id;
      r.dataset.state = c.req.state;
    }
    this.#tick(c);
  }

  #tick(c) {
    const words = this.view.text.expiresIn;
    if (c.expires) c.expires.textContent = expiresIn(c.req, typeof words === 'function' ? words(c) : words);
    this.view.tick?.(c);
  }

  // apply takes a fresh view of a card's request.
  apply(c, req) {
    const prev = c.req;
    c.req = req;
    if (req.state !== 'pending' && !c.finishedAt) c.finishedAt = Date.now();
    const hadFocus = this.hasFocus(c);
    this.render(c);
    if (req.state !== 'pending' && prev.state === 'pending') this.say(this.view.outcome(c) || req.state);
    this.view.afterApply?.(c, prev, hadFocus);
    if (hadFocus && req.state !== 'pending' && !this.hasFocus(c)) (c.focusOnEnd ?? c.root).focus();
  }

  #add(key, req, older) {
    const c = { id: req.id, req, busy: false, finishedAt: 0, replaced: older, app: this };
    this.view.build(c);
    this.cards.set(key, c);
    this.#place(c);
    this.render(c);
    return c;
  }

  #remove(key, c) {
    c.root.remove();
    c.page?.remove();
    this.cards.delete(key);
    this.view.removed?.(c);
  }

  // place puts a card in order: newest request first.
  #place(c) {
    const t = Date.parse(c.req.createdAt) || 0;
    const after = [...this.cards.values()]
      .filter((o) => o !== c && o.root.isConnected && (Date.parse(o.req.createdAt) || 0) < t)
      .sort((a, b) => (Date.parse(b.req.createdAt) || 0) - (Date.parse(a.req.createdAt) || 0))[0];
    this.shell.list.insertBefore(c.root, after ? after.root : null);
  }

  update(list) {
    const groups = newestPerUser(Array.isArray(list) ? list : []);
    for (const [key, { newest, older }] of groups) {
      let c = this.cards.get(key);
      if (c && c.id !== newest.id) {
        // A newer request for this user replaced the one on screen.
        if (c.busy) continue;
        const hadFocus = this.hasFocus(c);
        this.#remove(key, c);
        c = null;
        if (newest.state === 'pending') {
          c = this.#add(key, newest, older);
          this.say(this.view.text.replaced(newest));
          if (hadFocus) c.root.focus();
        }
        continue;
      }
      if (!c) {
        if (newest.state !== 'pending') continue; // finished before we saw it
        this.#add(key, newest, older);
        this.say(this.view.text.added(newest));
        continue;
      }
      c.replaced = older;
      if (!c.busy) this.apply(c, newest);
    }
    const now = Date.now();
    for (const [key, c] of this.cards) {
      const gone = !groups.has(key);
      const stale = c.finishedAt && now - c.finishedAt > SHOW_FINISHED_MS && !this.view.keep?.(c);
      if ((gone || stale) && !c.busy) this.#remove(key, c);
    }
    this.shell.empty.hidden = this.cards.size > 0;
  }

  // act moves a request through the sim API and shows the answer; hook,
  // if given, sees the answer before the card does.
  async act(c, action, body, hook) {
    if (c.busy) return;
    const t = this.view.text;
    c.busy = true;
    if (c.error) c.error.textContent = '';
    this.render(c);
    try {
      const init = { method: 'POST', cache: 'no-store' };
      if (body) {
        init.headers = { 'Content-Type': 'application/json' };
        init.body = JSON.stringify(body);
      }
      const resp = await fetch(`${this.simURL}/requests/${encodeURIComponent(c.id)}/${action}`, init);
      const data = await resp.json().catch(() => null);
      c.busy = false;
      if (resp.ok && data?.id) {
        hook?.(data);
        this.apply(c, { ...c.req, ...data });
      } else if (resp.status === 409 && data?.request?.id) {
        this.apply(c, { ...c.req, ...data.request });
      } else if (resp.status === 404) {
        if (c.error) c.error.textContent = t.gone;
        c.finishedAt ||= Date.now();
      } else if (c.error) {
        c.error.textContent = t.failed(resp.status);
      }
    } catch {
      c.busy = false;
      if (c.error) c.error.textContent = t.unreachable;
    }
    this.render(c);
  }

  #setConn(ok) {
    if (ok === this.#connected) return;
    this.#connected = ok;
    const conn = this.shell.conn;
    conn.textContent = ok ? this.view.text.online : this.view.text.offline;
    conn.classList.toggle('down', !ok);
  }

  #poll = async () => {
    try {
      const resp = await fetch(this.requestsURL, { cache: 'no-store', signal: AbortSignal.timeout(5000) });
      if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
      this.update(await resp.json());
      this.#setConn(true);
    } catch {
      this.#setConn(false);
    } finally {
      setTimeout(this.#poll, POLL_MS);
    }
  };
}

// shellOf finds the page's fixed elements in app.html.
export const shellOf = (doc = document) => {
  const $ = (id) => doc.getElementById(id);
  return {
    screen: $('screen'), bar: $('app-bar'), logo: $('logo'), title: $('app-title'), conn: $('conn'),
    announce: $('announce'), list: $('requests'), empty: $('empty'), foot: $('foot'),
  };
};

// dress gives the shell a broker's look: the page's language and title,
// a theme class on <body>, the app bar's logo and name, the empty state
// (nodes) and the footnote.
export const dress = (shell, { lang, docTitle, theme, logo, title, connecting, empty, foot }) => {
  document.documentElement.lang = lang;
  document.title = docTitle;
  document.body.classList.add(theme);
  shell.logo.textContent = logo;
  shell.title.replaceChildren(...title);
  shell.conn.textContent = connecting;
  shell.empty.replaceChildren(...empty);
  shell.foot.textContent = foot;
};

// demoPhoneLink is a link to the demo phone, in a new tab.
export const demoPhoneLink = (text = 'demo phone') => {
  const a = el('a', '', text);
  a.href = '/demo/phone';
  a.target = '_blank';
  a.rel = 'noopener';
  return a;
};

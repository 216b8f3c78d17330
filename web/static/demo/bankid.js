// bankid.js — the simulated caller's BankID app. It polls the demo's list
// of the simulator's requests (config.requestsURL, /demo/api/requests: the
// /sim list, each request with the call it was made for: callSid, caller,
// callStartedAt, initiator) and lets the person at the keyboard answer like
// the real app, through the simulator's API (POST
// {simURL}/requests/{id}/open|acknowledge|approve|decline): Swedish phone
// authentication in three steps, the Norwegian word-pair pick.
//
// One request per user is shown: the newest. The simulator closes an older
// pending one when a newer one starts for the same user (state
// "cancelled"); the newest card says what it replaced.

const $ = (id) => document.getElementById(id);
const ui = { list: $('requests'), empty: $('empty'), conn: $('conn'), announce: $('announce') };

const POLL_MS = 1000;
const SHOW_FINISHED_MS = 8000; // a finished request stays up this long

// Pending descriptions as the broker words them (cibatest's Pending*).
const SE_PHASE = {
  'awaiting first user interaction': 0,
  'awaiting user request acknowledgement': 1,
  'awaiting user identification': 2,
};

let simURL = '/broker/sim';
let requestsURL = '/demo/api/requests';
const cards = new Map(); // user key -> card (of the user's newest request)

const el = (tag, cls, text, lang) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  if (lang) e.lang = lang;
  return e;
};

// bi is a bilingual label: the local text, then the English in a lighter span.
const bi = (tag, cls, local, en, lang) => {
  const e = el(tag, cls, local, lang);
  e.append(tag === 'h2' ? ' ' : ' / ', el('span', 'en', en, 'en'));
  return e;
};

const say = (text) => {
  ui.announce.textContent = '';
  setTimeout(() => { ui.announce.textContent = text; }, 50);
};

const mmss = (ms) => {
  const s = Math.max(0, Math.ceil(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
};

const clockTime = (iso) => new Intl.DateTimeFormat('en-GB', { hour: '2-digit', minute: '2-digit', second: '2-digit' }).format(new Date(iso));

// formatNumber writes an E.164 number for people ("+46 70 174 06 37").
const formatNumber = (e164) => {
  const s = String(e164 ?? '');
  const se = /^\+46(7\d)(\d{3})(\d{2})(\d{2})$/.exec(s);
  if (se) return `+46 ${se.slice(1).join(' ')}`;
  const no = /^\+47(\d{3})(\d{2})(\d{3})$/.exec(s);
  if (no) return `+47 ${no.slice(1).join(' ')}`;
  return s;
};

// userKey names the user a request is for: the simulator cancels a user's
// older request when a newer one starts.
const userKey = (r) => [r.profile, r.country, r.name, r.maskedId, r.hintType, r.maskedHint].join('\u0000');

// callLine links a request to its call: "Call from +46 70 174 06 37,
// 10:41:03 · started by agent alice".
const callLine = (r) => {
  if (!r.callSid) return 'Not linked to a call of the demo phone';
  const parts = [`Call from ${r.caller ? formatNumber(r.caller) : 'an unknown number'}${r.callStartedAt ? `, ${clockTime(r.callStartedAt)}` : ''}`];
  const agent = /^agent:(.+)$/.exec(r.initiator ?? '');
  if (agent) parts.push(`started by agent ${agent[1]}`);
  return parts.join(' · ');
};

// ---------------- cards ----------------

const button = (cls, local, en, lang, onClick) => {
  const b = el('button', cls);
  b.type = 'button';
  b.append(el('span', '', local, lang), ' / ', el('span', '', en, 'en'));
  b.addEventListener('click', onClick);
  return b;
};

const createCard = (req) => {
  const no = req.country === 'NO';
  const lang = no ? 'nb' : 'sv';
  const c = { id: req.id, req, no, lang, busy: false, finishedAt: 0, wrongPick: false, steps: [], words: [], replaced: [] };
  const root = el('section', 'req');
  root.lang = lang;
  root.tabIndex = -1;
  const hid = `req-${req.id}`;
  c.root = root;

  // The demo's link to the call: not part of the real app.
  c.call = el('p', 'call-link', '', 'en');
  c.replacedNote = el('details', 'replaced');
  c.replacedNote.lang = 'en';
  c.replacedNote.hidden = true;

  // Swedish phone authentication: the question depends on who placed the
  // call (callInitiator "RP": they called you; "user": you called them).
  const h = no
    ? bi('h2', '', 'Hvilke ord hørte du?', 'Which words did you hear?', 'nb')
    : req.callInitiator === 'RP'
      ? bi('h2', '', 'Ringer kundtjänst dig?', 'Is customer service calling you?', 'sv')
      : bi('h2', '', 'Pratar du med kundtjänst?', 'Are you on a call with customer service?', 'sv');
  h.id = hid;
  root.setAttribute('aria-labelledby', hid);

  const caller = el('div', 'caller');
  const avatar = el('span', 'avatar', 'K');
  avatar.setAttribute('aria-hidden', 'true');
  const who = el('p');
  c.initiator = el('span', 'sub');
  who.append(el('span', 'who-line', no ? 'Kundeservice' : 'Kundtjänst'), el('br'), c.initiator);
  caller.append(avatar, who);

  c.forWhom = el('p', 'sub');
  root.append(c.call, h, caller, c.forWhom);

  if (no) {
    const words = el('div', 'words');
    words.setAttribute('role', 'group');
    words.setAttribute('aria-label', 'Ordpar / Word pairs');
    for (const pair of req.wordPairChoices ?? []) {
      const b = el('button', '', pair, 'nb');
      b.type = 'button';
      b.addEventListener('click', () => act(c, 'approve', { wordPair: pair }, pair));
      words.append(b);
      c.words.push(b);
    }
    root.append(words);
  } else {
    const box = el('div');
    c.binding = el('p', 'binding');
    box.append(bi('p', 'binding-label', 'Meddelande', 'Message', 'sv'), c.binding);
    const steps = el('ol', 'steps');
    steps.setAttribute('aria-label', 'Steg / Steps');
    const defs = [
      ['open', 'Öppna BankID', 'Open BankID'],
      ['acknowledge', 'Ja, jag pratar med dem', "Yes, I'm on the phone with them"],
      ['approve', 'Identifiera dig', 'Identify'],
    ];
    defs.forEach(([action, sv, en], i) => {
      const li = el('li');
      const n = el('span', 'n', String(i + 1));
      n.setAttribute('aria-hidden', 'true');
      const b = button('app-primary', sv, en, 'sv', () => act(c, action, action === 'approve' ? {} : null));
      li.append(n, b);
      steps.append(li);
      c.steps.push({ li, b });
    });
    root.append(box, steps);
  }

  c.pending = el('p', 'pending');
  c.expires = el('p', 'expires');
  c.cancel = button('app-cancel', 'Avbryt', 'Cancel', lang, () => act(c, 'decline', null));
  c.outcome = el('p', 'outcome');
  c.outcome.hidden = true;
  c.error = el('p', 'req-error');
  c.error.setAttribute('role', 'alert');
  root.append(c.pending, c.expires, c.cancel, c.outcome, c.error, c.replacedNote);
  return c;
};

const OUTCOMES = {
  approved: (c) => (c.no ? ['Bekreftet ✓', 'Confirmed'] : ['Identifierad ✓', 'Identified']),
  declined: (c) => (c.wrongPick ? ['Feil ord – avbrutt', 'Wrong words: cancelled'] : c.no ? ['Avbrutt', 'Cancelled'] : ['Avbruten', 'Cancelled']),
  expired: (c) => (c.no ? ['Tiden gikk ut', 'Timed out'] : ['Tiden gick ut', 'Timed out']),
  cancelled: (c) => (c.no ? ['Erstattet av en nyere forespørsel', 'Replaced by a newer request'] : ['Ersatt av en nyare förfrågan', 'Replaced by a newer request']),
};

const render = (c) => {
  const r = c.req;
  const pending = r.state === 'pending';
  c.call.textContent = callLine(r);
  c.root.dataset.callSid = r.callSid ?? '';
  c.root.dataset.requestId = r.id;
  if (c.no) c.initiator.textContent = 'Samtale med kundeservice · Customer service call';
  else if (r.callInitiator === 'RP') c.initiator.textContent = 'Ringde dig · They called you';
  else if (r.callInitiator === 'user') c.initiator.textContent = 'Du ringde dem · You called them';
  else c.initiator.textContent = '';
  c.forWhom.textContent = `${c.no ? 'For: ' : 'För / For: '}${r.name || '—'}${r.maskedId ? ` · ${r.maskedId}` : ''}`;
  if (c.binding) c.binding.textContent = r.bindingMessage ?? '';
  c.pending.textContent = pending && r.pending ? `Status: ${r.pending}` : '';

  if (!c.no) {
    const phase = SE_PHASE[r.pending] ?? 0;
    c.steps.forEach((s, i) => {
      s.li.classList.toggle('done', pending ? i < phase : r.state === 'approved');
      s.li.classList.toggle('current', pending && i === phase);
      s.b.disabled = !pending || c.busy || i !== phase;
      if (pending && i === phase) s.b.setAttribute('aria-current', 'step');
      else s.b.removeAttribute('aria-current');
    });
  }
  for (const b of c.words) b.disabled = !pending || c.busy;
  c.cancel.disabled = !pending || c.busy;
  c.cancel.hidden = !pending;
  renderClock(c);
  renderReplaced(c);

  if (pending) {
    c.outcome.hidden = true;
    return;
  }
  const [local, en] = OUTCOMES[r.state]?.(c) ?? [r.state, r.state];
  c.outcome.className = `outcome ${r.state}`;
  c.outcome.textContent = `${local} / ${en}`;
  c.outcome.hidden = false;
};

// renderReplaced lists, collapsed, the user's older requests this one
// replaced.
const renderReplaced = (c) => {
  const n = c.replaced.length;
  c.replacedNote.hidden = n === 0;
  if (!n) return;
  const summary = el('summary', '', n === 1 ? 'Replaces an older request' : `Replaces ${n} older requests`);
  const list = el('ul');
  for (const r of c.replaced) list.append(el('li', '', `${callLine(r)} — ${r.state === 'cancelled' ? 'replaced by a newer request' : r.state}`));
  const open = c.replacedNote.open;
  c.replacedNote.replaceChildren(summary, list);
  c.replacedNote.open = open;
};

const renderClock = (c) => {
  const r = c.req;
  c.expires.textContent = r.state === 'pending' && r.expiresAt
    ? `${c.no ? 'Utløper om' : 'Går ut om'} / Expires in ${mmss(Date.parse(r.expiresAt) - Date.now())}`
    : '';
};

// apply takes a fresh view of a card's request.
const apply = (c, req) => {
  const wasPending = c.req.state === 'pending';
  const oldPending = c.req.pending;
  c.req = req;
  if (req.state !== 'pending' && !c.finishedAt) c.finishedAt = Date.now();
  const hadFocus = c.root.contains(document.activeElement);
  render(c);
  if (req.state !== 'pending' && wasPending) say(c.outcome.textContent || req.state);
  // Keep keyboard users on the step that is now current.
  if (hadFocus && req.state === 'pending' && req.pending !== oldPending && !c.no) {
    const s = c.steps[SE_PHASE[req.pending] ?? 0];
    if (s && !s.b.disabled) s.b.focus();
  }
  if (hadFocus && req.state !== 'pending') c.root.focus();
};

// place puts a card in order: newest request first.
const place = (c) => {
  const t = Date.parse(c.req.createdAt) || 0;
  const after = [...cards.values()]
    .filter((o) => o !== c && o.root.isConnected && (Date.parse(o.req.createdAt) || 0) < t)
    .sort((a, b) => (Date.parse(b.req.createdAt) || 0) - (Date.parse(a.req.createdAt) || 0))[0];
  ui.list.insertBefore(c.root, after ? after.root : null);
};

// newestPerUser groups the list by user: the newest request of each, and
// the older ones the simulator closed for a newer one.
const newestPerUser = (list) => {
  const groups = new Map();
  const sorted = [...list].filter((r) => r?.id).sort((a, b) => (Date.parse(b.createdAt) || 0) - (Date.parse(a.createdAt) || 0));
  for (const r of sorted) {
    const k = userKey(r);
    const g = groups.get(k);
    if (g) {
      if (r.state === 'cancelled') g.older.push(r);
    }
    else groups.set(k, { newest: r, older: [] });
  }
  return groups;
};

const update = (list) => {
  const groups = newestPerUser(Array.isArray(list) ? list : []);
  for (const [key, { newest, older }] of groups) {
    let c = cards.get(key);
    if (c && c.id !== newest.id) {
      // A newer request for this user replaced the one on screen.
      if (c.busy) continue;
      const hadFocus = c.root.contains(document.activeElement);
      c.root.remove();
      cards.delete(key);
      c = null;
      if (newest.state === 'pending') {
        c = addCard(key, newest, older);
        say(newest.country === 'NO' ? 'Ny forespørsel erstatter den forrige / A new request replaced the previous one' : 'Ny förfrågan ersätter den förra / A new request replaced the previous one');
        if (hadFocus) c.root.focus();
      }
      continue;
    }
    if (!c) {
      if (newest.state !== 'pending') continue; // finished before we saw it
      addCard(key, newest, older);
      say(newest.country === 'NO' ? 'Ny BankID-forespørsel / New BankID request' : 'Ny BankID-förfrågan / New BankID request');
      continue;
    }
    c.replaced = older;
    if (!c.busy) apply(c, newest);
  }
  const now = Date.now();
  for (const [key, c] of cards) {
    const gone = !groups.has(key);
    const stale = c.finishedAt && now - c.finishedAt > SHOW_FINISHED_MS;
    if ((gone || stale) && !c.busy) {
      c.root.remove();
      cards.delete(key);
    }
  }
  ui.empty.hidden = cards.size > 0;
};

const addCard = (key, req, older) => {
  const c = createCard(req);
  c.replaced = older;
  cards.set(key, c);
  place(c);
  render(c);
  return c;
};

// act moves a request through the sim API and shows the answer.
const act = async (c, action, body, pickedPair) => {
  if (c.busy) return;
  c.busy = true;
  c.error.textContent = '';
  render(c);
  try {
    const init = { method: 'POST', cache: 'no-store' };
    if (body) {
      init.headers = { 'Content-Type': 'application/json' };
      init.body = JSON.stringify(body);
    }
    const resp = await fetch(`${simURL}/requests/${encodeURIComponent(c.id)}/${action}`, init);
    const data = await resp.json().catch(() => null);
    c.busy = false;
    if (resp.ok && data?.id) {
      if (pickedPair !== undefined && data.state === 'declined') c.wrongPick = true;
      apply(c, { ...c.req, ...data });
    } else if (resp.status === 409 && data?.request?.id) {
      apply(c, { ...c.req, ...data.request });
    } else if (resp.status === 404) {
      c.error.textContent = 'Förfrågan finns inte längre / This request is gone.';
      c.finishedAt ||= Date.now();
    } else {
      c.error.textContent = `Något gick fel / Something went wrong (HTTP ${resp.status}).`;
    }
  } catch {
    c.busy = false;
    c.error.textContent = 'Ingen anslutning / No connection to the broker.';
  }
  render(c);
};

// ---------------- polling ----------------

let connected = null;
const setConn = (ok) => {
  if (ok === connected) return;
  connected = ok;
  ui.conn.textContent = ok ? 'Ansluten / Online' : 'Ingen anslutning / Offline';
  ui.conn.classList.toggle('down', !ok);
};

const poll = async () => {
  try {
    const resp = await fetch(requestsURL, { cache: 'no-store', signal: AbortSignal.timeout(5000) });
    if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
    update(await resp.json());
    setConn(true);
  } catch {
    setConn(false);
  } finally {
    setTimeout(poll, POLL_MS);
  }
};

const start = async () => {
  try {
    const resp = await fetch('/demo/api/config', { cache: 'no-store' });
    if (resp.ok) {
      const cfg = await resp.json();
      if (cfg?.simURL) simURL = String(cfg.simURL).replace(/\/+$/, '');
      if (cfg?.requestsURL) requestsURL = String(cfg.requestsURL);
    }
  } catch {
    // keep the defaults
  }
  poll();
  setInterval(() => { for (const c of cards.values()) renderClock(c); }, 1000);
};

start();

// bankid.js — the simulated caller's BankID app. It polls the demo broker's
// /sim API (ciba/cibatest: GET {simURL}/requests, POST
// {simURL}/requests/{id}/open|acknowledge|approve|decline) and lets the
// person at the keyboard answer like the real app: Swedish phone
// authentication in three steps, the Norwegian word-pair pick.
'use strict';

(function () {
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
  const cards = new Map(); // request id -> card

  function el(tag, cls, text, lang) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    if (lang) e.lang = lang;
    return e;
  }

  // bi is a bilingual label: the local text, then the English in a lighter span.
  function bi(tag, cls, local, en, lang) {
    const e = el(tag, cls, local, lang);
    e.append(tag === 'h2' ? ' ' : ' / ');
    e.append(el('span', 'en', en, 'en'));
    return e;
  }

  function say(text) {
    ui.announce.textContent = '';
    setTimeout(() => { ui.announce.textContent = text; }, 50);
  }

  function mmss(ms) {
    const s = Math.max(0, Math.ceil(ms / 1000));
    return Math.floor(s / 60) + ':' + String(s % 60).padStart(2, '0');
  }

  // ---------------- cards ----------------

  function button(cls, local, en, lang, onClick) {
    const b = el('button', cls);
    b.type = 'button';
    b.append(el('span', '', local, lang), ' / ', el('span', '', en, 'en'));
    b.addEventListener('click', onClick);
    return b;
  }

  function createCard(req) {
    const no = req.country === 'NO';
    const lang = no ? 'nb' : 'sv';
    const c = { id: req.id, req, no, lang, busy: false, finishedAt: 0, wrongPick: false, steps: [], words: [] };
    const root = el('section', 'req');
    root.lang = lang;
    const hid = 'req-' + req.id;
    c.root = root;

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
    who.append(el('span', 'who-line', no ? 'Kundeservice' : 'Kundtjänst'));
    c.initiator = el('span', 'sub');
    who.append(el('br'), c.initiator);
    caller.append(avatar, who);

    c.forWhom = el('p', 'sub');
    root.append(h, caller, c.forWhom);

    if (no) {
      const words = el('div', 'words');
      words.setAttribute('role', 'group');
      words.setAttribute('aria-label', 'Ordpar / Word pairs');
      for (const pair of req.wordPairChoices || []) {
        const b = el('button', '', pair, 'nb');
        b.type = 'button';
        b.addEventListener('click', () => act(c, 'approve', { wordPair: pair }, pair));
        words.append(b);
        c.words.push(b);
      }
      root.append(words);
    } else {
      const box = el('div');
      box.append(bi('p', 'binding-label', 'Meddelande', 'Message', 'sv'));
      c.binding = el('p', 'binding');
      box.append(c.binding);
      root.append(box);
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
      root.append(steps);
    }

    c.pending = el('p', 'pending');
    c.expires = el('p', 'expires');
    c.cancel = button('app-cancel', no ? 'Avbryt' : 'Avbryt', 'Cancel', lang, () => act(c, 'decline', null));
    c.outcome = el('p', 'outcome');
    c.outcome.hidden = true;
    c.error = el('p', 'req-error');
    c.error.setAttribute('role', 'alert');
    root.append(c.pending, c.expires, c.cancel, c.outcome, c.error);
    return c;
  }

  function render(c) {
    const r = c.req;
    const pending = r.state === 'pending';
    if (c.no) {
      c.initiator.textContent = 'Samtale med kundeservice · Customer service call';
    } else if (r.callInitiator === 'RP') {
      c.initiator.textContent = 'Ringde dig · They called you';
    } else if (r.callInitiator === 'user') {
      c.initiator.textContent = 'Du ringde dem · You called them';
    } else {
      c.initiator.textContent = '';
    }
    c.forWhom.textContent = (c.no ? 'For: ' : 'För / For: ') + (r.name || '—') + (r.maskedId ? ' · ' + r.maskedId : '');
    if (c.binding) c.binding.textContent = r.bindingMessage || '';
    c.pending.textContent = pending && r.pending ? 'Status: ' + r.pending : '';

    if (!c.no) {
      const phase = SE_PHASE[r.pending] ?? 0;
      c.steps.forEach((s, i) => {
        s.li.classList.toggle('done', !pending ? r.state === 'approved' : i < phase);
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

    if (!pending) {
      const txt = {
        approved: c.no ? ['Bekreftet ✓', 'Confirmed'] : ['Identifierad ✓', 'Identified'],
        declined: c.wrongPick ? ['Feil ord – avbrutt', 'Wrong words: cancelled'] : (c.no ? ['Avbrutt', 'Cancelled'] : ['Avbruten', 'Cancelled']),
        expired: c.no ? ['Tiden gikk ut', 'Timed out'] : ['Tiden gick ut', 'Timed out'],
      }[r.state] || [r.state, r.state];
      c.outcome.className = 'outcome ' + r.state;
      c.outcome.textContent = txt[0] + ' / ' + txt[1];
      c.outcome.hidden = false;
    } else {
      c.outcome.hidden = true;
    }
  }

  function renderClock(c) {
    const r = c.req;
    if (r.state !== 'pending' || !r.expiresAt) {
      c.expires.textContent = '';
      return;
    }
    const left = Date.parse(r.expiresAt) - Date.now();
    c.expires.textContent = (c.no ? 'Utløper om' : 'Går ut om') + ' / Expires in ' + mmss(left);
  }

  // apply takes a fresh view of a request.
  function apply(c, req) {
    const wasPending = c.req.state === 'pending';
    const oldPending = c.req.pending;
    c.req = req;
    if (req.state !== 'pending' && !c.finishedAt) c.finishedAt = Date.now();
    const hadFocus = c.root.contains(document.activeElement);
    render(c);
    if (req.state !== 'pending' && wasPending) say((c.outcome.textContent || req.state));
    // Keep keyboard users on the step that is now current.
    if (hadFocus && req.state === 'pending' && req.pending !== oldPending && !c.no) {
      const s = c.steps[SE_PHASE[req.pending] ?? 0];
      if (s && !s.b.disabled) s.b.focus();
    }
    if (hadFocus && req.state !== 'pending') c.root.focus();
  }

  function place(c) {
    // Newest first: before the first card created earlier.
    const t = Date.parse(c.req.createdAt) || 0;
    let before = null;
    for (const o of cards.values()) {
      if (o !== c && o.root.isConnected && (Date.parse(o.req.createdAt) || 0) < t) {
        if (!before || (Date.parse(before.req.createdAt) || 0) < (Date.parse(o.req.createdAt) || 0)) before = o;
      }
    }
    ui.list.insertBefore(c.root, before ? before.root : null);
  }

  function update(list) {
    const seen = new Set();
    for (const req of Array.isArray(list) ? list : []) {
      if (!req || !req.id) continue;
      seen.add(req.id);
      let c = cards.get(req.id);
      if (!c) {
        if (req.state !== 'pending') continue; // finished before we saw it
        c = createCard(req);
        c.root.tabIndex = -1;
        cards.set(req.id, c);
        place(c);
        render(c);
        say(req.country === 'NO' ? 'Ny BankID-forespørsel / New BankID request' : 'Ny BankID-förfrågan / New BankID request');
        continue;
      }
      if (!c.busy) apply(c, req);
    }
    const now = Date.now();
    for (const [id, c] of cards) {
      const gone = !seen.has(id);
      const stale = c.finishedAt && now - c.finishedAt > SHOW_FINISHED_MS;
      if ((gone || stale) && !c.busy) {
        c.root.remove();
        cards.delete(id);
      }
    }
    ui.empty.hidden = cards.size > 0;
  }

  // act moves a request through the sim API and shows the answer.
  async function act(c, action, body, pickedPair) {
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
      const resp = await fetch(simURL + '/requests/' + encodeURIComponent(c.id) + '/' + action, init);
      let data = null;
      try { data = await resp.json(); } catch (e) { data = null; }
      c.busy = false;
      if (resp.ok && data && data.id) {
        if (pickedPair !== undefined && data.state === 'declined') c.wrongPick = true;
        apply(c, data);
      } else if (resp.status === 409 && data && data.request && data.request.id) {
        apply(c, data.request);
      } else if (resp.status === 404) {
        c.error.textContent = 'Förfrågan finns inte längre / This request is gone.';
        c.finishedAt = c.finishedAt || Date.now();
      } else {
        c.error.textContent = 'Något gick fel / Something went wrong (HTTP ' + resp.status + ').';
      }
    } catch (e) {
      c.busy = false;
      c.error.textContent = 'Ingen anslutning / No connection to the broker.';
    }
    render(c);
  }

  // ---------------- polling ----------------

  let connected = null;
  function setConn(ok) {
    if (ok === connected) return;
    connected = ok;
    ui.conn.textContent = ok ? 'Ansluten / Online' : 'Ingen anslutning / Offline';
    ui.conn.classList.toggle('down', !ok);
  }

  async function poll() {
    const ctrl = new AbortController();
    const t = setTimeout(() => ctrl.abort(), 5000);
    try {
      const resp = await fetch(simURL + '/requests', { cache: 'no-store', signal: ctrl.signal });
      if (!resp.ok) throw new Error('HTTP ' + resp.status);
      update(await resp.json());
      setConn(true);
    } catch (e) {
      setConn(false);
    } finally {
      clearTimeout(t);
      setTimeout(poll, POLL_MS);
    }
  }

  async function start() {
    try {
      const resp = await fetch('/demo/api/config', { cache: 'no-store' });
      if (resp.ok) {
        const cfg = await resp.json();
        if (cfg && cfg.simURL) simURL = String(cfg.simURL).replace(/\/+$/, '');
      }
    } catch (e) {
      // keep the default /broker/sim
    }
    poll();
    setInterval(() => { for (const c of cards.values()) renderClock(c); }, 1000);
  }

  start();
})();

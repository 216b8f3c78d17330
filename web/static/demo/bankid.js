// bankid.js — the approval page as the caller's BankID app (profile
// idura): Swedish phone authentication in three steps (open the app,
// confirm the call, identify), the Norwegian word-pair pick. The polling
// and the sim API calls are approvals.js's.

import { button, callLine, demoPhoneLink, dress, el, renderReplaced, replacedNote } from './approvals.js';

// Pending descriptions as the broker words them (cibatest's Pending*).
const SE_PHASE = {
  'awaiting first user interaction': 0,
  'awaiting user request acknowledgement': 1,
  'awaiting user identification': 2,
};

// bi is a bilingual label: the local text, then the English in a lighter span.
const bi = (tag, cls, local, en, lang) => {
  const e = el(tag, cls, local, lang);
  e.append(tag === 'h2' ? ' ' : ' / ', el('span', 'en', en, 'en'));
  return e;
};

// biButton is a bilingual button: "Avbryt / Cancel".
const biButton = (cls, local, en, lang, onClick, action) => {
  const b = button(cls, '', onClick, action);
  b.append(el('span', '', local, lang), ' / ', el('span', '', en, 'en'));
  return b;
};

const OUTCOMES = {
  approved: (c) => (c.no ? ['Bekreftet ✓', 'Confirmed'] : ['Identifierad ✓', 'Identified']),
  declined: (c) => (c.wrongPick ? ['Feil ord – avbrutt', 'Wrong words: cancelled'] : c.no ? ['Avbrutt', 'Cancelled'] : ['Avbruten', 'Cancelled']),
  expired: (c) => (c.no ? ['Tiden gikk ut', 'Timed out'] : ['Tiden gick ut', 'Timed out']),
  cancelled: (c) => (c.no ? ['Erstattet av en nyere forespørsel', 'Replaced by a newer request'] : ['Ersatt av en nyare förfrågan', 'Replaced by a newer request']),
};

const outcome = (c) => {
  const [local, en] = OUTCOMES[c.req.state]?.(c) ?? [c.req.state, c.req.state];
  return `${local} / ${en}`;
};

const build = (c) => {
  const { req } = c;
  const no = req.country === 'NO';
  const lang = no ? 'nb' : 'sv';
  Object.assign(c, { no, lang, wrongPick: false, steps: [], words: [] });
  const act = (action, body, pickedPair) => c.app.act(c, action, body, (data) => {
    if (pickedPair !== undefined && data.state === 'declined') c.wrongPick = true;
  });
  const root = el('section', 'req');
  root.lang = lang;
  root.tabIndex = -1;
  const hid = `req-${req.id}`;
  c.root = root;

  // The demo's link to the call: not part of the real app.
  c.call = el('p', 'call-link', '', 'en');
  c.replacedNote = replacedNote();

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
      const b = button('', pair, () => act('approve', { wordPair: pair }, pair));
      b.lang = 'nb';
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
      const b = biButton('app-primary', sv, en, 'sv', () => act(action, action === 'approve' ? {} : null), action);
      li.append(n, b);
      steps.append(li);
      c.steps.push({ li, b });
    });
    root.append(box, steps);
  }

  c.pending = el('p', 'pending');
  c.expires = el('p', 'expires');
  c.cancel = biButton('app-cancel', 'Avbryt', 'Cancel', lang, () => act('decline', null), 'decline');
  c.outcome = el('p', 'outcome');
  c.outcome.hidden = true;
  c.error = el('p', 'req-error');
  c.error.setAttribute('role', 'alert');
  root.append(c.pending, c.expires, c.cancel, c.outcome, c.error, c.replacedNote);
};

const render = (c) => {
  const r = c.req;
  const pending = r.state === 'pending';
  c.call.textContent = callLine(r);
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
  renderReplaced(c.replacedNote, c.replaced);

  if (pending) {
    c.outcome.hidden = true;
    return;
  }
  c.outcome.className = `outcome ${r.state}`;
  c.outcome.textContent = outcome(c);
  c.outcome.hidden = false;
};

// afterApply keeps keyboard users on the step that is now current.
const afterApply = (c, prev, hadFocus) => {
  const r = c.req;
  if (hadFocus && r.state === 'pending' && r.pending !== prev.pending && !c.no) {
    const s = c.steps[SE_PHASE[r.pending] ?? 0];
    if (s && !s.b.disabled) s.b.focus();
  }
};

const isNO = (req) => req.country === 'NO';

// bankidView dresses the shell as the BankID app and returns the view.
export const bankidView = (shell) => {
  const title = el('span', '', 'BankID ');
  const hidden = el('span', 'visually-hidden', '(simulated app)', 'en');
  const strong = el('strong');
  strong.append('Inga förfrågningar', el('span', '', ' / No requests', 'en'));
  const how = el('span', '', 'Call the support line on the ', 'en');
  how.append(demoPhoneLink(), " and enter a test user's number. Their BankID request shows up here.");
  dress(shell, {
    lang: 'sv',
    docTitle: 'BankID (simulated) — demo',
    theme: 'bankid-page',
    logo: 'iD',
    title: [title, hidden],
    connecting: 'Ansluter… / Connecting…',
    empty: [strong, how],
    foot: 'A simulated BankID app for the demo broker. Requests for scripted test users move by themselves; “manual” users wait for you.',
  });
  return {
    build,
    render,
    outcome,
    afterApply,
    text: {
      added: (req) => (isNO(req) ? 'Ny BankID-forespørsel / New BankID request' : 'Ny BankID-förfrågan / New BankID request'),
      replaced: (req) => (isNO(req) ? 'Ny forespørsel erstatter den forrige / A new request replaced the previous one' : 'Ny förfrågan ersätter den förra / A new request replaced the previous one'),
      online: 'Ansluten / Online',
      offline: 'Ingen anslutning / Offline',
      gone: 'Förfrågan finns inte längre / This request is gone.',
      failed: (status) => `Något gick fel / Something went wrong (HTTP ${status}).`,
      unreachable: 'Ingen anslutning / No connection to the broker.',
      expiresIn: (c) => `${c.no ? 'Utløper om' : 'Går ut om'} / Expires in`,
    },
  };
};

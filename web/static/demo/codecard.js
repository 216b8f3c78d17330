// codecard.js — the parts the approval views of the code-showing brokers
// share (Auth0 Guardian, Mosaic's login page, the generic identity app):
// the binding message's code shown large, and the approve and decline
// buttons. At these brokers the IVR reads the code ("Code 4821") to the
// caller, who checks that the request on their phone shows the same.

import { button, callLine, clockTime, el, renderReplaced, replacedNote, splitCode } from './approvals.js';

// spaced reads a code digit by digit for screen readers: "4 8 2 1".
const spaced = (code) => code.split('').join(' ');

// codeBox is the binding message: its words as a label, the code large.
export const codeBox = () => {
  const box = el('div', 'code-box');
  const label = el('p', 'code-label');
  const code = el('p', 'code');
  box.append(label, code);
  let shownMsg = null;
  box.render = (msg, fallbackLabel) => {
    if (msg === shownMsg) return;
    shownMsg = msg;
    const { words, code: digits } = splitCode(msg);
    label.textContent = words || fallbackLabel;
    if (digits) {
      // Read digit by digit: "4 8 2 1", not "four thousand …".
      const shown = el('span', '', digits);
      shown.setAttribute('aria-hidden', 'true');
      code.replaceChildren(shown, el('span', 'visually-hidden', spaced(digits)));
    } else {
      code.textContent = words || '—';
    }
    box.dataset.code = digits;
  };
  return box;
};

// decide is a row of the two decision buttons: decline first, approve
// last (where the thumb is), as the apps place them.
export const decide = (c, { approve, decline }) => {
  const row = el('div', 'decide');
  row.setAttribute('role', 'group');
  row.setAttribute('aria-label', `${approve} or ${decline}`);
  c.decline = button('decide-no', decline, () => c.app.act(c, 'decline', null), 'decline');
  c.approve = button('decide-yes', approve, () => c.app.act(c, 'approve', {}), 'approve');
  row.append(c.decline, c.approve);
  return row;
};

export const renderDecide = (c) => {
  const pending = c.req.state === 'pending';
  for (const b of [c.approve, c.decline]) {
    b.disabled = !pending || c.busy;
    b.hidden = !pending;
  }
};

// outcomeLine shows a finished request's outcome (words(state)) in el.
export const renderOutcome = (out, state, words) => {
  if (state === 'pending') {
    out.hidden = true;
    return;
  }
  out.className = `outcome ${state}`;
  out.textContent = words;
  out.hidden = false;
};

// codeCard builds a push-notification style card for c: the demo's call
// link, a header (icon, app name, time), the question, the asking party,
// the code, whom it is for, the buttons, the clock and the outcome.
// t holds the words: app, icon, question, from, codeLabel, approve,
// decline, forWhom(req).
export const codeCard = (c, cls, t) => {
  const root = el('section', `req code-card ${cls}`);
  root.tabIndex = -1;
  const hid = `req-${c.id}`;
  root.setAttribute('aria-labelledby', hid);
  c.root = root;
  c.call = el('p', 'call-link');
  const head = el('div', 'notif-head');
  const icon = el('span', 'notif-icon', t.icon);
  icon.setAttribute('aria-hidden', 'true');
  c.when = el('span', 'notif-time');
  head.append(icon, el('span', 'notif-app', t.app), c.when);
  const h = el('h2', '', t.question);
  h.id = hid;
  c.from = el('p', 'notif-from', t.from);
  c.code = codeBox();
  c.forWhom = el('p', 'for-whom');
  c.expires = el('p', 'expires');
  c.outcome = el('p', 'outcome');
  c.outcome.hidden = true;
  c.error = el('p', 'req-error');
  c.error.setAttribute('role', 'alert');
  c.replacedNote = replacedNote();
  root.append(c.call, head, h, c.from, c.code, c.forWhom, decide(c, t), c.expires, c.outcome, c.error, c.replacedNote);
};

export const renderCodeCard = (c, t, outcome) => {
  const r = c.req;
  c.call.textContent = callLine(r);
  c.when.textContent = r.createdAt ? clockTime(r.createdAt) : '';
  c.code.render(r.bindingMessage, t.codeLabel);
  c.forWhom.textContent = t.forWhom(r);
  renderDecide(c);
  renderOutcome(c.outcome, r.state, outcome(c));
  renderReplaced(c.replacedNote, c.replaced);
};

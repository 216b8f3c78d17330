// idapp.js — the approval page as a neutral identity app (profile generic,
// a plain CIBA Core broker): each request asks to approve a sign-in, shows
// the binding message's code and offers Decline / Approve.

import { demoPhoneLink, dress, el } from './approvals.js';
import { codeCard, renderCodeCard } from './codecard.js';

const T = {
  app: 'Identity app',
  icon: 'ID',
  question: 'Approve this sign-in?',
  from: 'Customer service asks you to confirm who you are.',
  codeLabel: 'Code',
  approve: 'Approve',
  decline: 'Decline',
  forWhom: (r) => `For: ${r.name || '—'}${r.maskedHint ? ` (${r.maskedHint})` : ''}`,
};

const OUTCOMES = {
  approved: 'Approved ✓',
  declined: 'Declined',
  expired: 'Timed out',
  cancelled: 'Replaced by a newer request',
};

const outcome = (c) => OUTCOMES[c.req.state] ?? c.req.state;

// idappView dresses the shell as a generic identity app and returns the view.
export const idappView = (shell) => {
  const how = el('span', '', 'Call the support line on the ');
  how.append(demoPhoneLink(), ', press 2 and type a test customer number. The request to approve shows up here.');
  dress(shell, {
    lang: 'en',
    docTitle: 'Identity app (simulated) — demo',
    theme: 'idapp-page',
    logo: 'ID',
    title: [el('span', '', 'Identity app '), el('span', 'visually-hidden', '(simulated)')],
    connecting: 'Connecting…',
    empty: [el('strong', '', 'No requests'), how],
    foot: 'A simulated identity app for the demo’s generic CIBA broker. Requests for scripted test users move by themselves; “manual” users wait for you.',
  });
  return {
    build: (c) => codeCard(c, 'idapp-card', T),
    render: (c) => renderCodeCard(c, T, outcome),
    outcome,
    text: {
      added: () => 'New sign-in request',
      replaced: () => 'A new request replaced the previous one',
      online: 'Online',
      offline: 'Offline',
      gone: 'This request is gone.',
      failed: (status) => `Something went wrong (HTTP ${status}).`,
      unreachable: 'No connection to the identity service.',
      expiresIn: 'Expires in',
    },
  };
};

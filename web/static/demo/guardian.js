// guardian.js — the approval page as Auth0 Guardian (profile auth0): each
// CIBA request is a push notification, "Are you trying to sign in?", with
// the tenant and application that ask, the binding message's code large,
// and Deny / Allow.

import { demoPhoneLink, dress, el } from './approvals.js';
import { codeCard, renderCodeCard } from './codecard.js';

const T = {
  app: 'Auth0 Guardian',
  icon: '✓',
  question: 'Are you trying to sign in?',
  from: 'Demo Bank · Customer service line',
  codeLabel: 'Code',
  approve: 'Allow',
  decline: 'Deny',
  forWhom: (r) => `Account: ${r.name || '—'}${r.maskedHint ? ` (${r.maskedHint})` : ''}`,
};

const OUTCOMES = {
  approved: 'Allowed ✓ The request was approved.',
  declined: 'Denied. The request was rejected.',
  expired: 'This request has expired.',
  cancelled: 'Replaced by a newer request.',
};

const outcome = (c) => OUTCOMES[c.req.state] ?? c.req.state;

// guardianView dresses the shell as Guardian and returns the view.
export const guardianView = (shell) => {
  const how = el('span', '', 'Call the support line on the ');
  how.append(demoPhoneLink(), ' and type a test customer number. Its Guardian push notification shows up here.');
  dress(shell, {
    lang: 'en',
    docTitle: 'Auth0 Guardian (simulated) — demo',
    theme: 'guardian-page',
    logo: '✓',
    title: [el('span', '', 'Guardian '), el('span', 'visually-hidden', '(simulated Auth0 Guardian app)')],
    connecting: 'Connecting…',
    empty: [el('strong', '', 'No notifications'), how],
    foot: 'A simulated Auth0 Guardian app for the demo broker. Requests for scripted test users move by themselves; “manual” users wait for you.',
  });
  return {
    build: (c) => codeCard(c, 'guardian-card', T),
    render: (c) => renderCodeCard(c, T, outcome),
    outcome,
    text: {
      added: () => 'New Guardian notification: are you trying to sign in?',
      replaced: () => 'A new notification replaced the previous one',
      online: 'Online',
      offline: 'Offline',
      gone: 'This request is gone.',
      failed: (status) => `Something went wrong (HTTP ${status}).`,
      unreachable: 'No connection to Auth0.',
      expiresIn: 'Expires in',
    },
  };
};

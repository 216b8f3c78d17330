// mosaic.js — the approval page as the caller's phone at a Transmit
// Security Mosaic broker (profile transmit). Mosaic sends the user a link,
// by SMS (the default) or e-mail, that opens the bank's login page, which
// Mosaic hosts: the login_uri gets the request's binding_message, and
// after the user signs in the page completes the request, approved or not.
//
// So the page is an inbox: one message per user (their newest request),
// SMS or e-mail as the request's channel says, addressed to the test
// user's phone or address. Opening the link shows the hosted login page,
// as a browser on that phone, with the code and Decline / Approve. The
// SMS carries no code: at Mosaic only the login page shows it.

import { callLine, clockTime, demoPhoneLink, dress, el, formatNumber, renderReplaced, replacedNote } from './approvals.js';
import { codeBox, decide, renderDecide, renderOutcome } from './codecard.js';

const LOGIN_HOST = 'login.demo-bank.example';

const OUTCOMES = {
  approved: 'Approved ✓ You can go back to your call.',
  declined: 'Declined. Customer service was told you did not approve.',
  expired: 'This link has expired.',
  cancelled: 'This link was replaced by a newer one.',
};

// Words for the message list: what became of the link.
const STATUS = {
  pending: 'Link not used yet',
  approved: 'Approved',
  declined: 'Declined',
  expired: 'Link expired',
  cancelled: 'Replaced by a newer link',
};

const outcome = (c) => OUTCOMES[c.req.state] ?? c.req.state;

// mosaicView dresses the shell as the phone's messages and returns the view.
export const mosaicView = (shell, cfg) => {
  const users = Array.isArray(cfg?.users) ? cfg.users : [];
  const userOf = (req) => users.find((u) => u.name && u.name === req.name);
  const isMail = (req) => req.channel === 'email';

  // The phone's browser: one login page at a time, over the inbox.
  const browser = el('section', 'browser');
  browser.hidden = true;
  browser.setAttribute('aria-label', 'Browser: Demo Bank sign-in (hosted by Mosaic)');
  const back = el('button', 'browser-back', '‹ Messages');
  back.type = 'button';
  const url = el('p', 'browser-url');
  const bar = el('div', 'browser-bar');
  bar.append(back, url);
  const view = el('div', 'browser-view');
  browser.append(bar, view);
  shell.screen.append(browser);
  let open = null; // the card whose login page is showing

  const behind = () => [shell.bar, shell.list, shell.foot];
  const close = () => {
    if (!open) return;
    const c = open;
    open = null;
    browser.hidden = true;
    view.replaceChildren();
    for (const e of behind()) e.inert = false;
    if (c.link.isConnected) c.link.focus();
  };
  const show = (c) => {
    open = c;
    url.replaceChildren(el('span', 'visually-hidden', 'Address: '), el('span', 'scheme', 'https://'), LOGIN_HOST);
    url.title = `https://${LOGIN_HOST}/ciba?request=${c.id}`;
    view.replaceChildren(c.page);
    browser.hidden = false;
    for (const e of behind()) e.inert = true;
    c.pageTitle.focus();
  };
  back.addEventListener('click', close);
  browser.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') close();
  });

  const build = (c) => {
    const { req } = c;
    const mail = isMail(req);
    const u = userOf(req);
    const root = el('article', `req msg ${mail ? 'mail' : 'sms'}`);
    root.tabIndex = -1;
    const hid = `msg-${c.id}`;
    root.setAttribute('aria-labelledby', hid);
    c.root = root;
    c.call = el('p', 'call-link');

    const h = el('h2', 'msg-from');
    h.id = hid;
    h.append(el('span', 'msg-kind', mail ? 'E-mail' : 'SMS'), ' Demo Bank');
    c.when = el('span', 'msg-time');
    const head = el('div', 'msg-head');
    head.append(h, c.when);
    const to = mail
      ? `To ${u?.email || req.maskedHint || req.name}`
      : `To ${req.name ? `${req.name}’s phone` : 'your phone'}${u?.phone ? `, ${formatNumber(u.phone)}` : req.maskedHint ? `, ${req.maskedHint}` : ''}`;

    const body = el('div', 'bubble');
    const first = (u?.name || req.name || '').split(' ')[0];
    if (mail) body.append(el('p', 'subject', 'Sign in to confirm your call with customer service'));
    const text = req.customMessage
      || (mail
        ? `Hi${first ? ` ${first}` : ''}, customer service asked us to confirm it’s you. Sign in and approve the request:`
        : 'Demo Bank: customer service asks you to confirm it’s you. Sign in to approve:');
    body.append(el('p', '', text));
    c.link = el('a', 'msg-link', mail ? 'Sign in and approve' : `https://${LOGIN_HOST}/ciba?request=${c.id}`);
    c.link.href = `#request-${c.id}`;
    c.link.addEventListener('click', (e) => {
      e.preventDefault();
      show(c);
    });
    body.append(c.link);
    c.status = el('p', 'msg-status');
    c.expires = el('span', 'expires');
    c.replacedNote = replacedNote();
    root.append(c.call, head, el('p', 'msg-to', to), body, c.status, c.replacedNote);

    // The hosted login page the link opens.
    const page = el('section', 'login-page');
    const pid = `login-${c.id}`;
    page.setAttribute('aria-labelledby', pid);
    c.page = page;
    const brand = el('p', 'login-brand');
    const logo = el('span', 'brand-logo', 'DB');
    logo.setAttribute('aria-hidden', 'true');
    brand.append(logo, 'Demo Bank');
    c.pageTitle = el('h2', '', 'Confirm it’s you');
    c.pageTitle.id = pid;
    c.pageTitle.tabIndex = -1;
    c.signedIn = el('p', 'signed-in');
    c.code = codeBox();
    c.pageExpires = el('p', 'expires');
    c.outcome = el('p', 'outcome');
    c.outcome.hidden = true;
    c.error = el('p', 'req-error');
    c.error.setAttribute('role', 'alert');
    page.append(
      brand, c.pageTitle,
      el('p', '', 'Customer service asked to verify you during your call. Approve only if this is the code you heard on the call.'),
      c.code, c.signedIn,
      decide(c, { approve: 'Approve', decline: 'Decline' }),
      c.pageExpires, c.outcome, c.error,
      el('p', 'powered', 'Secured by Mosaic · Transmit Security (simulated)'),
    );
    c.focusOnEnd = c.pageTitle;
  };

  const render = (c) => {
    const r = c.req;
    c.call.textContent = callLine(r);
    c.when.textContent = r.createdAt ? clockTime(r.createdAt) : '';
    c.status.replaceChildren(STATUS[r.state] ?? r.state);
    if (r.state === 'pending') c.status.append(' · ', c.expires);
    c.status.className = `msg-status ${r.state}`;
    c.code.render(r.bindingMessage, 'Code');
    c.signedIn.textContent = `Signed in as ${r.name || '—'}${r.maskedHint ? ` (${r.maskedHint})` : ''}`;
    renderDecide(c);
    renderOutcome(c.outcome, r.state, outcome(c));
    renderReplaced(c.replacedNote, c.replaced);
    c.focusOnEnd = open === c ? c.pageTitle : c.root;
  };

  const how = el('span', '', 'Call the support line on the ');
  how.append(demoPhoneLink(), ' from a test user’s phone and press 1, or press 2 and type a customer number. The sign-in link arrives here by SMS (by e-mail when an agent sends it to an address).');
  dress(shell, {
    lang: 'en',
    docTitle: 'Messages: Mosaic sign-in links (simulated) — demo',
    theme: 'mosaic-page',
    logo: '✉',
    title: [el('span', '', 'Messages '), el('span', 'visually-hidden', '(the test users’ SMS and e-mail, simulated)')],
    connecting: 'Connecting…',
    empty: [el('strong', '', 'No messages'), how],
    foot: 'The test users’ SMS and e-mail as Mosaic (Transmit Security) reaches them, simulated. Requests for scripted test users move by themselves; “manual” users wait for you.',
  });

  return {
    build,
    render,
    outcome,
    keep: () => true, // an inbox keeps its messages; the newest per user shows
    tick: (c) => { c.pageExpires.textContent = c.expires.textContent; },
    removed: (c) => { if (open === c) close(); },
    text: {
      added: (req) => (isMail(req) ? 'New e-mail from Demo Bank with a sign-in link' : 'New SMS from Demo Bank with a sign-in link'),
      replaced: () => 'A new sign-in link replaced the previous one',
      online: 'Online',
      offline: 'Offline',
      gone: 'This link is no longer valid.',
      failed: (status) => `Something went wrong (HTTP ${status}).`,
      unreachable: 'No connection to Mosaic.',
      expiresIn: 'Expires in',
    },
  };
};

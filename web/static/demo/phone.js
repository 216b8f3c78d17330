// phone.js — the demo phone. It plays Twilio and the caller at once: it
// calls the IVR's real voice webhooks with real X-Twilio-Signature headers
// (webhooks.js, signature.js), runs the TwiML it gets back (twiml.js) and
// speaks the prompts with the browser's speech synthesis (speech.js). Each
// call comes from a new caller id (callerid.js).
//
// Call updates: the service interrupts the hold loop through Twilio's REST
// API the moment a verification ends. The demo delivers those updates to
// this page on an event stream per call (config.updatesPath); the page then
// does what Twilio does: it drops the TwiML it is running (speech, waits,
// the pending <Gather>, the request in flight) and requests the new URL.
//
// Config comes from GET /demo/api/config. An optional "fallbackPath" there
// makes it act like a number with a Voice Fallback URL: after an HTTP error,
// a timeout or bad TwiML it requests that path once with ErrorCode and
// ErrorUrl before giving up with Twilio's "application error".
//
// The page fits the broker the demo simulates (config.profile): its test
// users (national identity numbers for idura, customer numbers, and at
// Transmit the users' phones and e-mail addresses), the approval app's
// name, and where the broker can identify a caller by the number they call
// from (config.identify has "caller_id"), a choice to call from a test
// user's phone instead of a new demo number.
//
// Test knob: ?timescale=0.1 shortens every pause, hold, reading time and
// Gather timeout tenfold (for automated browser tests).

import { formatNumber, newCallerID } from './callerid.js';
import { Speech, Tones, playAudio } from './speech.js';
import { sleep, timeScale } from './timing.js';
import { Transcript } from './transcript.js';
import { AppError, newSid, parseTwiML, runDocument } from './twiml.js';
import { Webhooks } from './webhooks.js';

const $ = (id) => document.getElementById(id);
const ui = {
  timer: $('timer'), status: $('status'), entered: $('entered'), sid: $('call-sid'), callerId: $('caller-id'),
  keypad: $('keypad'), call: $('call'), hangup: $('hangup'),
  transcript: $('transcript'), clear: $('clear'),
  users: $('users'), usersNote: $('users-note'), usersCaption: $('users-caption'),
  callFrom: $('call-from'), callFromBox: $('call-from-box'), handsetNote: $('handset-note'),
  speech: $('opt-speech'), tones: $('opt-tones'), webhooks: $('opt-webhooks'),
};

const scale = timeScale();
const APP_ERROR = 'We are sorry, an application error has occurred. Goodbye.';

// Why the TwiML being run was abandoned: the call ended, or a call update
// redirected it (the request to make next is then in call.pending).
const ENDED = new Error('call ended');
class Redirected extends Error {
  constructor() { super('call redirected'); }
}

const mmss = (ms) => {
  const s = Math.max(0, Math.floor(ms / 1000));
  return `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
};

let config = null;
let webhooks = null;
let current = null; // the call in progress, or null
let lastCall = null; // the latest call, for the transcript's clock

const transcript = new Transcript(ui.transcript, () => (lastCall ? mmss(performance.now() - (lastCall.answeredAt || lastCall.startedAt)) : ''));
const log = (kind, who, text, opts) => transcript.log(kind, who, text, opts);
const speech = new Speech({ scale, enabled: () => ui.speech.checked, note: (key, text) => transcript.note(key, text) });
const tones = new Tones({ enabled: () => ui.tones.checked });
const setStatus = (text) => { ui.status.textContent = text; };

// Call is one call: Twilio's side of it (SID, numbers, requests made) and
// what runs now.
class Call {
  sid = newSid('CA');
  startedAt = performance.now();
  answeredAt = 0;
  endedAt = 0;
  ended = false;
  requests = 0;
  gather = null; // the <Gather> listening for keys
  after = null; // the <Enqueue>/<Dial> action to request on hang-up
  pending = null; // the request a call update asked for, not yet made
  updates = null; // the EventSource of call updates
  #run = null; // aborts the TwiML being run (and its request)

  constructor(from, to) {
    this.from = from;
    this.to = to;
  }

  // begin starts running a new document (or request); its signal aborts
  // when the call ends or an update redirects it.
  begin() {
    this.#run = new AbortController();
    if (this.ended) this.#run.abort(ENDED);
    return this.#run.signal;
  }

  abort(reason) {
    this.#run?.abort(reason);
  }

  // next is the request to make: the one a call update asked for, if any.
  next(req) {
    const p = this.pending;
    this.pending = null;
    return p ?? req;
  }
}

// ---------------- running TwiML ----------------

const audioURL = (url) => {
  try {
    const u = webhooks.url(url);
    return /^https?:$/.test(u.protocol) ? u.href : '';
  } catch {
    return '';
  }
};

// hostFor is what twiml.js runs a document of call against.
const hostFor = (call, signal) => ({
  signal,
  scale,
  speak: (text, lang, rate, until) => speech.speak(text, lang, rate, { signal, until }),
  play: (url, until) => playAudio(audioURL(url), { enabled: ui.speech.checked, signal, until }),
  sleep: (ms, until) => sleep(ms, { signal, until }),
  log,
  status: setStatus,
  note: (key, text) => transcript.note(key, text),
  entered: (digits) => { ui.entered.textContent = digits; },
  listen: (g) => { call.gather = g; },
  unlisten: (g) => { if (call.gather === g) call.gather = null; },
  afterHangup: (req) => { call.after = req; },
});

// runCall requests the voice webhook and follows the TwiML until the call
// ends: each answer's document, then the request it leads to, or the one
// a call update asks for.
const runCall = async (call) => {
  let next = { url: config.voicePath || '/twilio/voice', method: 'POST', extra: [] };
  let fellBack = false;
  while (next) {
    const signal = call.begin();
    next = call.next(next);
    try {
      const { text, url } = await webhooks.request(call, next, signal);
      if (!call.answeredAt) {
        call.answeredAt = performance.now();
        setStatus('Connected.');
      }
      next = await runDocument(parseTwiML(text, url), url, hostFor(call, signal));
    } catch (e) {
      if (call.ended) return;
      if (e instanceof Redirected) continue; // call.next takes the update's request
      const why = e?.message || String(e);
      // With a Voice Fallback URL configured, Twilio asks it once.
      if (e instanceof AppError && config.fallbackPath && !fellBack) {
        fellBack = true;
        log('err', 'Twilio', `Error ${e.code} (${why}): Twilio requests the fallback URL.`);
        next = { url: config.fallbackPath, method: 'POST', extra: [['ErrorCode', e.code], ['ErrorUrl', e.url]] };
        continue;
      }
      log('err', 'Twilio', `Twilio would say: an application error has occurred (${why}).`);
      try {
        await speech.speak(APP_ERROR, 'en-US', 1, { signal });
      } catch (e2) {
        if (e2 instanceof Redirected) continue;
        return; // hung up meanwhile
      }
      endCall(call, 'Call ended after an application error.');
      return;
    }
  }
  endCall(call, 'The IVR ended the call.');
};

// ---------------- call updates ----------------

// onUpdate is a call update ({url, method}) for call: Twilio abandons the
// TwiML in progress at once and requests url, or hangs up ("HANGUP").
const onUpdate = (call, data) => {
  if (call.ended) return;
  let u = null;
  try {
    u = JSON.parse(data);
  } catch {
    u = null;
  }
  const method = String(u?.method || 'POST').toUpperCase();
  if (method === 'HANGUP') {
    log('update', 'Twilio', 'Call update: the service hung up the call.');
    endCall(call, 'The service hung up.');
    return;
  }
  let url = null;
  try {
    url = webhooks.url(u.url);
  } catch {
    url = null;
  }
  if (!url) {
    log('err', 'Twilio', 'A call update without a usable URL was ignored.');
    return;
  }
  log('update', 'Twilio', `Call redirected by the service: Twilio drops the TwiML in progress and requests ${url.pathname} now.`);
  call.after = null; // left an <Enqueue> or <Dial>: no action on hang-up
  call.pending = { url: url.href, method: method === 'GET' ? 'GET' : 'POST', extra: [] };
  call.abort(new Redirected());
};

const listenForUpdates = (call) => {
  if (!config.updatesPath || typeof EventSource === 'undefined') {
    transcript.note('no-updates', 'This page cannot receive call updates: a verification’s outcome is heard at the next hold hop.');
    return;
  }
  const es = new EventSource(config.updatesPath.replace('{sid}', encodeURIComponent(call.sid)));
  call.updates = es;
  let lost = false;
  es.addEventListener('open', () => {
    log('sys', 'Twilio', lost ? 'Call updates: reconnected.' : 'Listening for call updates (Twilio’s REST API) for this call.', { detail: true });
    lost = false;
  });
  es.addEventListener('error', () => {
    if (call.ended || lost) return;
    lost = true;
    log('sys', 'Twilio', 'Call updates: connection lost, reconnecting. An update sent meanwhile is heard at the next hold hop.', { detail: true });
  });
  es.addEventListener('update', (e) => onUpdate(call, e.data));
};

// ---------------- the call ----------------

let tick = null;
const renderTimer = () => {
  if (current) ui.timer.textContent = current.answeredAt ? mmss(performance.now() - current.answeredAt) : '00:00';
};

const setInCall = (on) => {
  ui.call.disabled = on || !config;
  ui.hangup.disabled = !on;
  ui.callFrom.disabled = on;
  for (const b of ui.users.querySelectorAll('button[data-number]')) b.disabled = !on;
  for (const b of ui.users.querySelectorAll('button[data-phone]')) b.disabled = on || !config;
};

// userByPhone is the test user whose phone e164 is, if any.
const userByPhone = (e164) => (e164 && Array.isArray(config?.users) ? config.users.find((u) => u.phone === e164) : undefined);

const showCallerId = (call) => {
  ui.callerId.dataset.e164 = call?.from ?? '';
  if (call) {
    const u = userByPhone(call.from);
    ui.callerId.textContent = `Calling from ${formatNumber(call.from)}`;
    ui.callerId.title = u ? `${u.name}’s phone` : 'A new demo number';
    return;
  }
  const u = userByPhone(ui.callFrom.value);
  ui.callerId.textContent = u ? `Calls from ${formatNumber(u.phone)} (${u.name})` : 'A new caller id for each call';
  ui.callerId.removeAttribute('title');
};

const startCall = () => {
  if (current || !config) return;
  const chosen = userByPhone(ui.callFrom.value);
  const call = new Call(chosen ? chosen.phone : newCallerID(), config.to || '+46812345678');
  current = call;
  lastCall = call;
  setInCall(true);
  ui.sid.textContent = `CallSid ${call.sid}`;
  ui.sid.dataset.sid = call.sid;
  showCallerId(call);
  ui.timer.textContent = '00:00';
  ui.entered.textContent = '';
  setStatus(`Calling ${formatNumber(call.to)}…`);
  const fromWhom = chosen ? `${chosen.name}’s phone, ${formatNumber(call.from)}` : `${formatNumber(call.from)} (a new number each call)`;
  log('sys', 'Phone', `New call ${call.sid} from ${fromWhom} to ${formatNumber(call.to)}.`);
  speech.cancel();
  tick = setInterval(renderTimer, 250);
  ui.hangup.focus();
  listenForUpdates(call);
  runCall(call);
};

const endCall = (call, reason, unloading = false) => {
  if (!call || call.ended) return;
  call.ended = true;
  call.endedAt = performance.now();
  call.gather = null;
  call.pending = null;
  call.abort(ENDED); // rejects every wait, aborts the request in flight, stops speech and audio
  call.updates?.close();
  speech.cancel();
  if (current === call) current = null;
  clearInterval(tick);
  tick = null;
  const dur = call.answeredAt ? mmss(call.endedAt - call.answeredAt) : '00:00';
  ui.timer.textContent = dur;
  ui.entered.textContent = '';
  setInCall(false);
  setStatus(`Call ended (${dur}). ${reason}`);
  log('sys', 'Phone', reason);
  webhooks.final(call, { unloading });
  if (!unloading && document.activeElement === ui.hangup) ui.call.focus();
};

// press is one key from the keypad, the keyboard or "Type it".
const press = (key) => {
  tones.play(key);
  const btn = ui.keypad.querySelector(`button[data-key="${CSS.escape(key)}"]`);
  if (btn) {
    btn.classList.add('pressed');
    setTimeout(() => btn.classList.remove('pressed'), 150);
  }
  if (!current) return;
  const g = current.gather;
  if (!g) {
    log('key', 'You pressed', `${key} (nobody is listening: Twilio drops keys outside <Gather>)`);
    return;
  }
  // Consecutive keys in one prompt share a transcript line.
  if (g.line && ui.transcript.lastElementChild === g.line) g.line.querySelector('.msg').textContent += ` ${key}`;
  else g.line = log('key', 'You pressed', key);
  g.key(key);
};

// typeNumber keys a test user's number and # into the call, like a person.
const typeNumber = async (number) => {
  const call = current;
  for (const k of `${String(number).replace(/\D/g, '')}#`) {
    if (!call || call.ended || current !== call) return;
    press(k);
    await sleep(160);
  }
};

// ---------------- test users ----------------

// APPS names the approval app page of each profile, as the page's links say.
const APPS = {
  idura: { link: 'BankID app (simulated)', short: 'BankID app', manual: 'Waits for you in the BankID app page' },
  auth0: { link: 'Auth0 Guardian app (simulated)', short: 'Guardian app', manual: 'Waits for you in the Guardian app page' },
  transmit: { link: 'Test users’ SMS and e-mail (Mosaic, simulated)', short: 'test users’ messages', manual: 'Waits for you to open the link in the messages page' },
  generic: { link: 'Identity app (simulated)', short: 'identity app', manual: 'Waits for you in the identity app page' },
};
const appOf = (profile) => APPS[profile] ?? APPS.generic;

const behaviour = (script) => ({
  manual: appOf(config?.profile).manual,
  'approve-fast': 'Approves by itself after a few seconds',
  'approve-slow': 'Approves by itself after about a minute',
  decline: 'Declines by itself after a few seconds',
  'no-answer': 'Never answers: the request expires',
})[script] ?? script ?? '';
const COUNTRY = { SE: 'Sweden', NO: 'Norway' };
const NATIONAL_ID = { SE: 'Personnummer', NO: 'Fødselsnummer' };

// CAPTIONS explain the test users list of each profile.
const CAPTIONS = {
  idura: 'Numbers the simulated BankID knows. “Type it” keys the number and # into the call.',
  auth0: 'Customer numbers of the simulated Auth0 tenant’s Guardian users. “Type it” keys the number and # into the call.',
  transmit: 'Users of the simulated Mosaic. “Call from it” calls from the user’s phone: press 1 and the sign-in link goes to that phone. From a demo number, press 2, then “Type it”. Agents can verify with any of the three.',
  generic: 'Customer numbers the simulated CIBA broker knows. Press 2 in the menu, then “Type it” keys the number and # into the call.',
};

const copyText = async (text) => {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    // fall through to the old way
  }
  const ta = document.createElement('textarea');
  ta.value = text;
  ta.setAttribute('readonly', '');
  ta.className = 'visually-hidden';
  document.body.append(ta);
  ta.select();
  let ok = false;
  try {
    ok = document.execCommand('copy');
  } catch {
    ok = false;
  }
  ta.remove();
  return ok;
};

const elem = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};

// copyButton copies text; label names what it copies.
const copyButton = (text, label) => {
  const copy = elem('button', 'small', 'Copy');
  copy.type = 'button';
  copy.setAttribute('aria-label', `Copy ${label}`);
  copy.addEventListener('click', async () => {
    copy.textContent = (await copyText(String(text ?? ''))) ? 'Copied' : 'Copy failed';
    setTimeout(() => { copy.textContent = 'Copy'; }, 1500);
  });
  return copy;
};

// idRow is one identifier of a test user: what it is, the value, buttons.
const idRow = (kind, value, ...buttons) => {
  const id = elem('span', 'id');
  id.append(elem('span', 'id-kind', kind), elem('span', 'num', value ?? ''));
  const row = elem('div', 'user-actions');
  row.append(id, ...buttons);
  return row;
};

// callFromPhone starts a call from test user u's phone.
const callFromPhone = (u) => {
  if (current) return;
  ui.callFrom.value = u.phone;
  showCallerId(null);
  startCall();
};

const userItem = (u) => {
  const who = u.name || 'this user';
  const type = elem('button', 'small primary', 'Type it');
  type.type = 'button';
  type.dataset.number = u.number ?? '';
  type.disabled = !current;
  type.setAttribute('aria-label', `Type ${who}’s number and # into the call`);
  type.addEventListener('click', () => typeNumber(u.number));
  const kind = u.country ? (NATIONAL_ID[u.country] ?? 'Identity number') : 'Customer number';
  const li = elem('li');
  li.append(elem('strong', '', u.name || '(no name)'));
  if (u.country) li.append(' ', elem('span', 'country', COUNTRY[u.country] ?? u.country));
  li.append(elem('span', 'behaviour', behaviour(u.script)), idRow(kind, u.number, type, copyButton(u.number, `${who}’s number`)));
  if (u.phone) {
    const call = elem('button', 'small primary', 'Call from it');
    call.type = 'button';
    call.dataset.phone = u.phone;
    call.disabled = !!current;
    call.setAttribute('aria-label', `Call the support line from ${who}’s phone`);
    call.addEventListener('click', () => callFromPhone(u));
    li.append(idRow('Phone', formatNumber(u.phone), call, copyButton(u.phone, `${who}’s phone number`)));
  }
  if (u.email) li.append(idRow('E-mail', u.email, copyButton(u.email, `${who}’s e-mail address`)));
  return li;
};

const renderUsers = (users) => {
  ui.users.textContent = '';
  if (!Array.isArray(users) || !users.length) {
    ui.usersNote.hidden = false;
    ui.usersNote.textContent = 'No test users in the demo configuration.';
    return;
  }
  ui.users.append(...users.map(userItem));
};

// ---------------- wiring ----------------

ui.call.addEventListener('click', startCall);
ui.hangup.addEventListener('click', () => endCall(current, 'You hung up.'));
ui.clear.addEventListener('click', () => {
  transcript.clear();
  if (current?.gather) current.gather.line = null;
});
ui.keypad.addEventListener('click', (e) => {
  const b = e.target.closest('button[data-key]');
  if (b) press(b.dataset.key);
});
ui.webhooks.addEventListener('change', () => ui.transcript.classList.toggle('hide-details', !ui.webhooks.checked));
ui.speech.addEventListener('change', () => {
  if (ui.speech.checked) speech.retry();
  else speech.cancel();
});
document.addEventListener('keydown', (e) => {
  if (e.ctrlKey || e.metaKey || e.altKey || e.repeat) return;
  const t = e.target;
  if (t?.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t?.tagName ?? '')) return;
  if (/^[0-9*#]$/.test(e.key)) {
    e.preventDefault();
    press(e.key);
  }
});
window.addEventListener('pagehide', () => endCall(current, 'The page was closed.', true));

// fitProfile names the approval app and, where the broker identifies
// callers by the number they call from, offers the test users' phones to
// call from.
const fitProfile = () => {
  const app = appOf(config.profile);
  for (const a of document.querySelectorAll('a.app-link')) {
    a.href = '/demo/app';
    a.textContent = a.id === 'app-link' ? app.link : app.short;
  }
  ui.usersCaption.textContent = CAPTIONS[config.profile] ?? CAPTIONS.generic;
  const phones = (Array.isArray(config.users) ? config.users : []).filter((u) => u.phone);
  const byCallerID = Array.isArray(config.identify) && config.identify.includes('caller_id');
  if (byCallerID && phones.length) {
    for (const u of phones) {
      const o = document.createElement('option');
      o.value = u.phone;
      o.textContent = `${u.name}’s phone`;
      ui.callFrom.append(o);
    }
    ui.callFromBox.hidden = false;
    ui.handsetNote.textContent = 'A demo number is new for each call, so every call is a row of its own on the dashboard. A test user’s phone is the same number each time: the service sends at most five requests per caller id in ten minutes.';
  } else if (config.profile !== 'idura') {
    ui.handsetNote.textContent = 'Each call comes from a new made-up number, so the demo’s per-caller limit on requests never bites and every call is a row of its own on the dashboard.';
  }
  if (byCallerID && !phones.length) {
    ui.handsetNote.textContent += ' Press 2 in the menu to type a customer number: the demo’s numbers are nobody’s phone at this broker.';
  }
};

ui.callFrom.addEventListener('change', () => { if (!current) showCallerId(null); });

const loadConfig = async () => {
  try {
    const resp = await fetch('/demo/api/config', { cache: 'no-store', credentials: 'same-origin' });
    if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
    config = await resp.json();
  } catch (e) {
    setStatus('Could not load the demo configuration (/demo/api/config). Is `ivrd demo` running?');
    ui.usersNote.hidden = false;
    ui.usersNote.className = 'notice error';
    ui.usersNote.textContent = `No configuration: ${e?.message || 'error'}`;
    return;
  }
  webhooks = new Webhooks(config, log);
  fitProfile();
  renderUsers(config.users);
  if (config.dashboardURL) {
    for (const id of ['dashboard-link', 'dashboard-link-2']) $(id).href = config.dashboardURL;
  }
  showCallerId(null);
  setInCall(false);
  setStatus('Ready. Press “Call the support line”.');
};

loadConfig();

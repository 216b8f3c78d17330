// twiml.js — the TwiML interpreter: what Twilio does with the document a
// webhook answered. Verbs: Say (with its SSML), Play, Pause, Gather (with
// nested Say/Play/Pause), Redirect, Enqueue, Dial, Hangup, Reject.
//
// runDocument runs one document against a host, which does the talking,
// the waiting and the showing (phone.js builds one per document):
//
//   host.signal             aborts when the call ends or a call update
//                           replaces the document; every wait then rejects
//                           with its reason and the document is abandoned
//   host.scale              the time knob (timing.js timeScale)
//   host.speak(text, lang, rate, until)  says one piece of text
//   host.play(url, until)   plays audio; false when it cannot
//   host.sleep(ms, until)   waits (Infinity: until the call ends)
//   host.log(kind, who, text, {lang, detail}) adds a transcript line
//   host.status(text)       shows what is going on
//   host.note(key, text)    tells the transcript something once
//   host.listen(gather)     routes the caller's keys to gather.key(k) until
//   host.unlisten(gather)   it is done
//   host.afterHangup(req)   the action of an <Enqueue>/<Dial> that Twilio
//                           requests when the caller hangs up in it
//
// `until` is an AbortSignal that ends a prompt early (a key barging in).

// AppError is a failure Twilio reports with an error code: 11200 (HTTP
// retrieval failure), 11205 (timeout), 12100 (document parse failure).
export class AppError extends Error {
  constructor(message, code, url = '') {
    super(message);
    this.code = code;
    this.url = url;
  }
}

// absolute resolves a TwiML URL against the document that named it, without
// a fragment (browsers and Twilio never send one).
export const absolute = (url, docURL) => {
  const u = new URL(url, docURL);
  u.hash = '';
  return u;
};

// parseTwiML parses a webhook's answer, fetched from url.
export const parseTwiML = (text, url) => {
  let doc = null;
  try {
    doc = new DOMParser().parseFromString(text, 'text/xml');
  } catch {
    doc = null;
  }
  const path = new URL(url).pathname;
  if (!doc || doc.getElementsByTagName('parsererror').length) throw new AppError(`${path} did not answer well-formed XML`, '12100', url);
  if (doc.documentElement?.tagName !== 'Response') throw new AppError(`${path} did not answer a <Response>`, '12100', url);
  return doc;
};

const children = (el) => Array.from(el.children ?? []);
const isText = (n) => n.nodeType === Node.TEXT_NODE || n.nodeType === Node.CDATA_SECTION_NODE;
const ownText = (el) => Array.from(el.childNodes).filter(isText).map((n) => n.nodeValue).join('').trim();
const methodOf = (el) => el.getAttribute('method') || 'POST';

// loops is a verb's loop attribute: 0 repeats until the call ends.
const loops = (el) => {
  const raw = el.getAttribute('loop');
  if (raw === null || raw === '') return 1;
  const n = parseInt(raw, 10);
  if (n === 0) return Infinity;
  return n > 0 ? n : 1;
};

const RATES = { 'x-slow': 0.5, slow: 0.7, medium: 1, default: 1, fast: 1.3, 'x-fast': 1.6 };

const prosodyRate = (raw, inherited) => {
  const v = String(raw ?? '').trim().toLowerCase();
  if (v in RATES) return RATES[v];
  const pct = /^(\d+(?:\.\d+)?)%$/.exec(v);
  return pct ? Math.min(2, Math.max(0.3, Number(pct[1]) / 100)) : inherited;
};

const STRENGTHS = { none: 0, 'x-weak': 100, weak: 250, medium: 400, strong: 750, 'x-strong': 1200 };

const breakMs = (el) => {
  const time = String(el.getAttribute('time') ?? '').trim().toLowerCase();
  const m = /^(\d+(?:\.\d+)?)(ms|s)$/.exec(time);
  if (m) return Number(m[1]) * (m[2] === 's' ? 1000 : 1);
  return STRENGTHS[el.getAttribute('strength')] ?? 400;
};

const SPELLED = ['characters', 'character', 'spell-out', 'digits', 'telephone'];

// sayParts flattens a <Say>'s SSML into pieces to speak and pauses:
// [{text, rate, lang} | {pause: ms}].
export const sayParts = (node, rate = 1, lang = 'en-US', out = []) => {
  const push = (text) => {
    const t = text.replace(/\s+/g, ' ');
    const last = out.at(-1);
    if (!t.trim()) {
      if (t && last?.text !== undefined) last.text += ' ';
      return;
    }
    if (last?.text !== undefined && last.rate === rate && last.lang === lang) last.text += t;
    else out.push({ text: t, rate, lang });
  };
  for (const c of Array.from(node.childNodes)) {
    if (isText(c)) {
      push(c.nodeValue);
      continue;
    }
    if (c.nodeType !== Node.ELEMENT_NODE) continue;
    switch (c.localName) {
      case 'break':
        out.push({ pause: breakMs(c) });
        break;
      case 'prosody':
        sayParts(c, prosodyRate(c.getAttribute('rate'), rate), lang, out);
        break;
      case 'say-as': {
        const as = String(c.getAttribute('interpret-as') ?? '').toLowerCase();
        const t = c.textContent.trim();
        push(` ${SPELLED.includes(as) ? t.replace(/\s+/g, '').split('').join(' ') : t} `);
        break;
      }
      case 'sub':
        push(` ${c.getAttribute('alias') || c.textContent} `);
        break;
      case 'lang':
        sayParts(c, rate, c.getAttribute('xml:lang') || lang, out);
        break;
      case 'p':
      case 's':
        sayParts(c, rate, lang, out);
        out.push({ pause: c.localName === 'p' ? 500 : 250 });
        break;
      default: // emphasis, w, phoneme, …: their text
        sayParts(c, rate, lang, out);
    }
  }
  return out;
};

const doSay = async (host, el, until) => {
  const lang = el.getAttribute('language') || 'en-US';
  const parts = sayParts(el, 1, lang);
  const shown = parts.filter((p) => p.text !== undefined).map((p) => p.text).join(' ').replace(/\s+/g, ' ').trim();
  const n = loops(el);
  for (let i = 0; i < n && !until?.aborted; i++) {
    host.status(`The IVR is speaking (${lang})…`);
    const li = host.log('say', 'IVR', (i > 0 ? '(again) ' : '') + shown, { lang });
    li?.classList.add('speaking');
    try {
      for (const p of parts) {
        if (until?.aborted) break;
        if (p.pause !== undefined) await host.sleep(p.pause * host.scale, until);
        else await host.speak(p.text.trim(), p.lang, p.rate, until);
      }
    } finally {
      li?.classList.remove('speaking');
      if (host.signal.aborted) li?.classList.add('cut');
    }
  }
};

const doPause = async (host, el, until) => {
  const n = parseFloat(el.getAttribute('length'));
  const s = n >= 0 ? n : 1;
  host.status(`Silence (${s} s)…`);
  await host.sleep(s * 1000 * host.scale, until);
};

const doPlay = async (host, el, until) => {
  const n = loops(el);
  for (let i = 0; i < n && !until?.aborted; i++) {
    host.status('On hold…');
    host.log('sys', 'IVR', '♪ hold music');
    if (!(await host.play(el.textContent.trim(), until))) await host.sleep(3000 * host.scale, until);
  }
};

const NESTED = { Say: doSay, Play: doPlay, Pause: doPause };

// Gather collects the caller's keys while its nested verbs run, then
// waits `timeout` seconds of silence. key(k) is how keys reach it.
class Gather {
  digits = '';
  result = null; // {digits, finishedOnKey, why}
  line = null; // the transcript line the keys of this prompt share
  bargeIn = new AbortController(); // a key stops the prompt
  #done = new AbortController();
  #silence = null;
  #listening = false; // the nested verbs are done: silence counts

  constructor(el, host) {
    this.host = host;
    this.finishOnKey = el.hasAttribute('finishOnKey') ? el.getAttribute('finishOnKey') : '#';
    const nd = parseInt(el.getAttribute('numDigits'), 10);
    this.numDigits = nd > 0 ? nd : 0;
    const to = parseFloat(el.getAttribute('timeout'));
    this.timeoutMs = (to >= 0 ? to : 5) * 1000 * host.scale;
  }

  get done() { return this.#done.signal; }

  key(k) {
    if (this.result) return;
    this.bargeIn.abort();
    if (this.finishOnKey && k === this.finishOnKey) {
      if (this.digits) this.#finish(k, 'key');
      else if (this.#listening) this.#arm(); // finishOnKey needs a digit before it
      return;
    }
    this.digits += k;
    this.host.entered(this.digits);
    if (this.numDigits && this.digits.length >= this.numDigits) this.#finish('', 'numDigits');
    else if (this.#listening) this.#arm();
  }

  // listen starts the silence timeout once the nested verbs are done.
  listen() {
    this.#listening = true;
    this.#arm();
  }

  stop() {
    clearTimeout(this.#silence);
  }

  #arm() {
    clearTimeout(this.#silence);
    this.#silence = setTimeout(() => this.#finish('', 'timeout'), this.timeoutMs);
  }

  #finish(finishedOnKey, why) {
    if (this.result) return;
    this.result = { digits: this.digits, finishedOnKey, why };
    this.stop();
    this.#done.abort();
  }
}

// doGather returns the next request, or null to fall through to the next verb.
const doGather = async (host, el, docURL) => {
  if (!/dtmf/.test(el.getAttribute('input') || 'dtmf')) host.note('speech-input', 'This Gather asks for speech; the demo phone only sends keys.');
  const g = new Gather(el, host);
  host.listen(g);
  host.entered('');
  try {
    for (const c of children(el)) {
      if (g.bargeIn.signal.aborted) break;
      await NESTED[c.tagName]?.(host, c, g.bargeIn.signal);
    }
    if (!g.result) {
      host.status(`Listening — type on the keypad${g.finishOnKey ? `, end with ${g.finishOnKey}` : ''}.`);
      g.listen();
      await host.sleep(Infinity, g.done);
    }
  } finally {
    g.stop();
    host.unlisten(g);
  }
  const r = g.result;
  if (!r.digits && el.getAttribute('actionOnEmptyResult') !== 'true') {
    host.log('sys', 'Twilio', 'No keys before the timeout: Twilio moves on to the next verb.', { detail: true });
    return null;
  }
  const how = {
    key: `ended with ${r.finishedOnKey}`,
    numDigits: `numDigits=${g.numDigits} reached`,
    timeout: `after ${g.timeoutMs / 1000 / host.scale} s of silence`,
  }[r.why];
  host.log('sys', 'Twilio', `Gather done (${r.digits.length} digit${r.digits.length === 1 ? '' : 's'}, ${how}).`, { detail: true });
  host.entered('');
  return {
    url: absolute(el.getAttribute('action') || docURL, docURL).href,
    method: methodOf(el),
    extra: [['Digits', r.digits], ['FinishedOnKey', r.finishedOnKey]],
  };
};

const randomHex = (bytes) => Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) => b.toString(16).padStart(2, '0')).join('');

// newSid makes a Twilio-shaped SID: two letters and 32 hex digits.
export const newSid = (prefix) => prefix + randomHex(16);

// afterHangup remembers the action Twilio requests when the caller hangs
// up during <Enqueue> or <Dial>; extra(secs) gives its parameters.
const afterHangup = (host, el, docURL, extra) => {
  const action = el.getAttribute('action');
  if (action) host.afterHangup({ url: absolute(action, docURL).href, method: methodOf(el), since: performance.now(), extra });
};

const doEnqueue = async (host, el, docURL) => {
  const name = ownText(el) || (el.getAttribute('workflowSid') ? 'TaskRouter workflow' : 'support');
  host.log('ok', 'Twilio', `Connected to the agent queue “${name}” — an agent will answer.`);
  host.status(`In the queue “${name}”: an agent will answer. Hang up to end the call.`);
  const queueSid = newSid('QU');
  afterHangup(host, el, docURL, (secs) => [['QueueResult', 'hangup'], ['QueueSid', queueSid], ['QueueTime', String(secs)]]);
  await host.sleep(Infinity);
};

const DIALED = {
  Number: (t) => t,
  Client: (t) => `agent “${t}”`,
  Queue: (t) => `queue “${t}”`,
  Sip: (t) => t,
  Conference: (t) => `conference “${t}”`,
};

const doDial = async (host, el, docURL) => {
  const nouns = children(el).filter((c) => DIALED[c.tagName]).map((c) => DIALED[c.tagName](ownText(c) || c.textContent.trim()));
  const target = nouns.join(', ') || ownText(el) || 'an agent';
  host.log('ok', 'Twilio', `Calling ${target}…`);
  host.status(`Connected to ${target}. Hang up to end the call.`);
  const dialSid = newSid('CA');
  afterHangup(host, el, docURL, (secs) => [['DialCallStatus', 'completed'], ['DialCallSid', dialSid], ['DialCallDuration', String(secs)], ['DialBridged', 'true']]);
  await host.sleep(Infinity);
};

// runDocument runs a TwiML document fetched from docURL. It returns the
// next request ({url, method, extra}) or null when the call should end;
// it rejects with host.signal's reason when the signal aborts.
export const runDocument = async (doc, docURL, host) => {
  for (const verb of children(doc.documentElement)) {
    host.signal.throwIfAborted();
    switch (verb.tagName) {
      case 'Say': await doSay(host, verb); break;
      case 'Pause': await doPause(host, verb); break;
      case 'Play': await doPlay(host, verb); break;
      case 'Gather': {
        const next = await doGather(host, verb, docURL);
        if (next) return next;
        break;
      }
      case 'Redirect':
        return { url: absolute(verb.textContent.trim() || docURL, docURL).href, method: methodOf(verb), extra: [] };
      case 'Enqueue': await doEnqueue(host, verb, docURL); return null;
      case 'Dial': await doDial(host, verb, docURL); return null;
      case 'Hangup':
      case 'Reject':
        host.log('sys', 'Twilio', `<${verb.tagName}>: the IVR hangs up.`);
        return null;
      default:
        host.log('sys', 'Phone', `<${verb.tagName}> is not emulated by the demo phone; skipped.`);
    }
  }
  return null;
};

// phone.js — the demo phone. It plays Twilio and the caller at once: it calls
// the IVR's real voice webhooks with real X-Twilio-Signature headers, runs the
// TwiML it gets back (Say, Pause, Play, Gather, Redirect, Enqueue, Dial,
// Hangup) and speaks the prompts with the browser's speech synthesis.
//
// Config comes from GET /demo/api/config. An optional "fallbackPath" there
// makes it act like a number with a Voice Fallback URL: after an HTTP error,
// a timeout or bad TwiML it requests that path once with ErrorCode and
// ErrorUrl before giving up with Twilio's "application error".
//
// Test knob: ?timescale=0.1 shortens every pause, hold, reading time and
// Gather timeout tenfold (for automated browser tests). In the console,
// demoPhone.selfTest() signs Twilio's documented example.
//
// Under node the file exports its pure functions (the signature) instead of
// starting the page: `node -e "require('./phone.js').selfTest().then(console.log)"`.
'use strict';

(function () {
  // ---------------------------------------------------------------------
  // X-Twilio-Signature: base64(HMAC-SHA1(authToken, url + Σ sorted name+value))
  // ---------------------------------------------------------------------

  const utf8 = (s) => new TextEncoder().encode(s);

  // compareBytes orders two strings by their UTF-8 bytes (Twilio's
  // "Unix-style case-sensitive" sort: CallSid < Caller).
  function compareBytes(a, b) {
    const x = utf8(a);
    const y = utf8(b);
    const n = Math.min(x.length, y.length);
    for (let i = 0; i < n; i++) {
      if (x[i] !== y[i]) return x[i] - y[i];
    }
    return x.length - y.length;
  }

  // signingString is the signed text: the full URL, then every POST
  // parameter as name+value, sorted by name (a stable sort: a repeated name
  // keeps its order).
  function signingString(url, params) {
    const sorted = params.slice().sort((p, q) => compareBytes(p[0], q[0]));
    let s = url;
    for (const [name, value] of sorted) s += name + value;
    return s;
  }

  function base64(bytes) {
    let bin = '';
    for (let i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin);
  }

  // twilioSignature signs with WebCrypto, or with the pure-JS HMAC below
  // where WebCrypto is missing (pages served over plain http from another
  // host are not a secure context and have no crypto.subtle).
  async function twilioSignature(authToken, url, params) {
    const data = utf8(signingString(url, params));
    const subtle = globalThis.crypto && globalThis.crypto.subtle;
    if (subtle) {
      const key = await subtle.importKey('raw', utf8(authToken), { name: 'HMAC', hash: 'SHA-1' }, false, ['sign']);
      return base64(new Uint8Array(await subtle.sign('HMAC', key, data)));
    }
    return base64(hmacSHA1(utf8(authToken), data));
  }

  // twilioSignatureSync is the same signature computed synchronously (used
  // for the status callback sent while the page unloads).
  function twilioSignatureSync(authToken, url, params) {
    return base64(hmacSHA1(utf8(authToken), utf8(signingString(url, params))));
  }

  function sha1(msg) {
    const ml = msg.length;
    const words = new Uint32Array((((ml + 8) >> 6) + 1) * 16);
    for (let i = 0; i < ml; i++) words[i >> 2] |= msg[i] << (24 - (i % 4) * 8);
    words[ml >> 2] |= 0x80 << (24 - (ml % 4) * 8);
    words[words.length - 1] = ml * 8; // messages here are far below 512 MiB
    let h0 = 0x67452301, h1 = 0xefcdab89, h2 = 0x98badcfe, h3 = 0x10325476, h4 = 0xc3d2e1f0;
    const w = new Uint32Array(80);
    for (let off = 0; off < words.length; off += 16) {
      for (let t = 0; t < 16; t++) w[t] = words[off + t];
      for (let t = 16; t < 80; t++) {
        const v = w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16];
        w[t] = (v << 1) | (v >>> 31);
      }
      let a = h0, b = h1, c = h2, d = h3, e = h4;
      for (let t = 0; t < 80; t++) {
        let f, k;
        if (t < 20) { f = (b & c) | (~b & d); k = 0x5a827999; }
        else if (t < 40) { f = b ^ c ^ d; k = 0x6ed9eba1; }
        else if (t < 60) { f = (b & c) | (b & d) | (c & d); k = 0x8f1bbcdc; }
        else { f = b ^ c ^ d; k = 0xca62c1d6; }
        const tmp = (((a << 5) | (a >>> 27)) + f + e + k + w[t]) >>> 0;
        e = d; d = c; c = (b << 30) | (b >>> 2); b = a; a = tmp;
      }
      h0 = (h0 + a) >>> 0; h1 = (h1 + b) >>> 0; h2 = (h2 + c) >>> 0; h3 = (h3 + d) >>> 0; h4 = (h4 + e) >>> 0;
    }
    const out = new Uint8Array(20);
    [h0, h1, h2, h3, h4].forEach((h, i) => {
      out[i * 4] = h >>> 24; out[i * 4 + 1] = (h >>> 16) & 255; out[i * 4 + 2] = (h >>> 8) & 255; out[i * 4 + 3] = h & 255;
    });
    return out;
  }

  function hmacSHA1(key, msg) {
    if (key.length > 64) key = sha1(key);
    const ipad = new Uint8Array(64 + msg.length);
    const opad = new Uint8Array(64 + 20);
    for (let i = 0; i < 64; i++) {
      const k = i < key.length ? key[i] : 0;
      ipad[i] = k ^ 0x36;
      opad[i] = k ^ 0x5c;
    }
    ipad.set(msg, 64);
    opad.set(sha1(ipad), 64);
    return sha1(opad);
  }

  // The worked example of https://www.twilio.com/docs/usage/webhooks/webhooks-security.
  const VECTOR = {
    token: '12345',
    url: 'https://example.com/myapp.php?foo=1&bar=2',
    params: [['CallSid', 'CA1234567890ABCDE'], ['Caller', '+14158675310'], ['Digits', '1234'], ['From', '+14158675310'], ['To', '+18005551212']],
    want: 'L/OH5YylLD5NRKLltdqwSvS0BnU=',
  };

  // selfTest signs the docs vector both ways.
  async function selfTest() {
    const webCrypto = await twilioSignature(VECTOR.token, VECTOR.url, VECTOR.params);
    const pureJS = twilioSignatureSync(VECTOR.token, VECTOR.url, VECTOR.params);
    return { webCrypto, pureJS, want: VECTOR.want, ok: webCrypto === VECTOR.want && pureJS === VECTOR.want };
  }

  const api = { twilioSignature, twilioSignatureSync, signingString, selfTest };
  if (typeof module === 'object' && module.exports) {
    module.exports = api;
    return;
  }
  globalThis.demoPhone = api;
  if (typeof document === 'undefined') return;

  // ---------------------------------------------------------------------
  // Page
  // ---------------------------------------------------------------------

  const $ = (id) => document.getElementById(id);
  const ui = {
    timer: $('timer'), status: $('status'), entered: $('entered'), sid: $('call-sid'),
    keypad: $('keypad'), call: $('call'), hangup: $('hangup'),
    transcript: $('transcript'), clear: $('clear'),
    users: $('users'), usersNote: $('users-note'),
    speech: $('opt-speech'), tones: $('opt-tones'), webhooks: $('opt-webhooks'),
  };

  const scale = (() => {
    const v = Number(new URLSearchParams(location.search).get('timescale'));
    return v > 0 ? Math.min(Math.max(v, 0.01), 10) : 1;
  })();

  const TWILIO_TIMEOUT_MS = 15000; // Twilio gives up on a webhook after 15 s
  const APP_ERROR = 'We are sorry, an application error has occurred. Goodbye.';

  let config = null;
  let current = null; // the call in progress, or null
  let lastCall = null; // the latest call, for the transcript's clock

  // ENDED is thrown through every await of a call that was hung up.
  const ENDED = new Error('call ended');

  // AppError is a failure Twilio reports with an error code: 11200 (HTTP
  // retrieval failure), 11205 (timeout), 12100 (document parse failure).
  class AppError extends Error {
    constructor(message, code, url) {
      super(message);
      this.code = code;
      this.url = url || '';
    }
  }

  // Signal is a one-shot event: waits resolve when it fires.
  class Signal {
    constructor() { this.fired = false; this.fns = new Set(); }
    fire() {
      if (this.fired) return;
      this.fired = true;
      for (const fn of [...this.fns]) fn();
      this.fns.clear();
    }
    on(fn) { if (this.fired) fn(); else this.fns.add(fn); }
    off(fn) { this.fns.delete(fn); }
  }

  // wait resolves true after ms (Infinity: never), false as soon as intr
  // fires, and rejects with ENDED when the call ends.
  function wait(call, ms, intr) {
    return new Promise((resolve, reject) => {
      if (call.ended) { reject(ENDED); return; }
      if (intr && intr.fired) { resolve(false); return; }
      let timer = null;
      const finish = (fn, v) => {
        if (timer !== null) clearTimeout(timer);
        call.end.off(onEnd);
        if (intr) intr.off(onIntr);
        fn(v);
      };
      const onEnd = () => finish(reject, ENDED);
      const onIntr = () => finish(resolve, false);
      call.end.on(onEnd);
      if (intr) intr.on(onIntr);
      if (ms !== Infinity) timer = setTimeout(() => finish(resolve, true), Math.max(0, ms));
    });
  }

  function check(call) {
    if (call.ended) throw ENDED;
  }

  function randomHex(bytes) {
    const b = new Uint8Array(bytes);
    crypto.getRandomValues(b);
    return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  }

  function mmss(ms) {
    const s = Math.max(0, Math.floor(ms / 1000));
    return String(Math.floor(s / 60)).padStart(2, '0') + ':' + String(s % 60).padStart(2, '0');
  }

  function setStatus(text) { ui.status.textContent = text; }

  // ---------------- transcript ----------------

  // log adds a transcript line. kind: say | key | sys | err | ok. Lines
  // from "Webhook" and lines marked detail hide with "Show Twilio details".
  // Detail lines that repeat (a hold loop's hops: "Gather done", "POST
  // /twilio/hold") are counted on the lines already there instead of
  // filling the transcript.
  function log(kind, who, text, lang, detail) {
    const empty = ui.transcript.querySelector('.empty');
    if (empty) empty.remove();
    const base = lastCall ? (lastCall.answeredAt || lastCall.startedAt) : 0;
    const now = lastCall ? mmss(performance.now() - base) : '';
    detail = detail || who === 'Webhook';
    const key = kind + '|' + who + '|' + text.replace(/\(\d+ ms\)/, '');
    if (detail) {
      const items = ui.transcript.children;
      const last = items[items.length - 1];
      const prev = items[items.length - 2];
      const same = [last, prev].find((x) => x && x.dataset.key === key);
      if (same && (same === last || (last.dataset.key && last.dataset.key !== key))) {
        const n = Number(same.dataset.count || 1) + 1;
        same.dataset.count = String(n);
        same.querySelector('.msg').textContent = text + '  ×' + n;
        same.querySelector('.t').textContent = now;
        return same;
      }
    }
    const li = document.createElement('li');
    li.className = kind + (detail ? ' detail' : '');
    if (detail) li.dataset.key = key;
    const t = document.createElement('span');
    t.className = 't';
    t.textContent = now;
    const w = document.createElement('span');
    w.className = 'who';
    w.textContent = who;
    if (lang) {
      const l = document.createElement('span');
      l.className = 'lang';
      l.textContent = lang;
      l.setAttribute('aria-label', 'language ' + lang);
      w.append(' ', l);
    }
    const m = document.createElement('span');
    m.className = 'msg';
    m.textContent = text;
    li.append(t, w, m);
    const box = ui.transcript;
    const atEnd = box.scrollHeight - box.scrollTop - box.clientHeight < 48;
    box.append(li);
    if (atEnd) box.scrollTop = box.scrollHeight; // follow, unless the reader scrolled up
    return li;
  }

  const noted = new Set();
  function noteOnce(key, text) {
    if (noted.has(key)) return;
    noted.add(key);
    log('sys', 'Phone', text);
  }

  // ---------------- speech ----------------

  // readingTime is how long a prompt stays up when it cannot be spoken.
  function readingTime(text, rate) {
    return Math.max(1200, (text.length * 65) / (rate || 1)) * scale;
  }

  function pickVoice(lang) {
    if (!('speechSynthesis' in window)) return null;
    const voices = speechSynthesis.getVoices();
    if (!voices.length) return null;
    const norm = (s) => String(s || '').toLowerCase().replace(/_/g, '-');
    const want = norm(lang);
    const base = want.split('-')[0];
    const bases = ['nb', 'no', 'nn'].includes(base) ? ['nb', 'no', 'nn'] : [base];
    const matches = voices.filter((x) => norm(x.lang) === want);
    const near = voices.filter((x) => bases.some((b) => norm(x.lang) === b || norm(x.lang).startsWith(b + '-')));
    // Prefer voices on this machine: network voices can take seconds to start.
    const v = matches.find((x) => x.localService) || matches[0] || near.find((x) => x.localService) || near[0];
    if (!v) noteOnce('voice:' + want, 'This browser has no ' + lang + ' voice: the prompt is spoken with its default voice.');
    return v || null;
  }

  let speechFailures = 0; // after two utterances that never started, stop trying
  let utterance = null; // keeps the utterance alive until it ends (Safari drops its events otherwise)

  // speak says one piece of text, resolving when it has been said (or read:
  // without working speech it waits the reading time), early when intr
  // fires; it rejects with ENDED when the call ends.
  function speak(call, text, lang, rate, intr) {
    if (!text.trim()) return Promise.resolve();
    const est = readingTime(text, rate);
    if (!ui.speech.checked || speechFailures >= 2 || !('speechSynthesis' in window) || typeof SpeechSynthesisUtterance === 'undefined') {
      if (ui.speech.checked) noteOnce('nospeech', 'Speech synthesis is not available here: each prompt is shown for its reading time.');
      return wait(call, est, intr);
    }
    check(call);
    const synth = window.speechSynthesis;
    const u = new SpeechSynthesisUtterance(text);
    u.lang = lang || 'en-US';
    u.rate = rate || 1;
    const v = pickVoice(u.lang);
    if (v) u.voice = v;
    utterance = u;
    return new Promise((resolve, reject) => {
      let started = false;
      let done = false;
      let timer = null;
      const t0 = performance.now();
      const finish = (err) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        call.end.off(onEnd);
        if (intr) intr.off(onIntr);
        if (err) reject(err); else resolve();
      };
      const onEnd = () => { synth.cancel(); finish(ENDED); };
      const onIntr = () => { synth.cancel(); finish(); };
      // Without speech (no voices, headless, blocked) fall back to reading time.
      const readInstead = () => {
        if (done) return;
        speechFailures++;
        synth.cancel();
        noteOnce('nospeech', 'Speech synthesis did not start: each prompt is shown for its reading time.');
        clearTimeout(timer);
        timer = setTimeout(() => finish(), Math.max(0, est - (performance.now() - t0)));
      };
      u.onstart = () => {
        started = true;
        speechFailures = 0;
        clearTimeout(timer);
        // Safety net: some engines never fire onend for long utterances.
        timer = setTimeout(() => { synth.cancel(); finish(); }, (text.length * 150) / u.rate + 8000);
      };
      // An "end" at once without a start means nothing was said.
      u.onend = () => {
        if (!started && performance.now() - t0 < est * 0.3) readInstead();
        else finish();
      };
      u.onerror = () => { if (started) finish(); else readInstead(); };
      call.end.on(onEnd);
      if (intr) intr.on(onIntr);
      if (done) return;
      timer = setTimeout(readInstead, 4000);
      try {
        synth.speak(u);
      } catch (e) {
        readInstead();
      }
    });
  }

  // ---------------- key tones ----------------

  const DTMF = {
    '1': [697, 1209], '2': [697, 1336], '3': [697, 1477], '4': [770, 1209], '5': [770, 1336], '6': [770, 1477],
    '7': [852, 1209], '8': [852, 1336], '9': [852, 1477], '*': [941, 1209], '0': [941, 1336], '#': [941, 1477],
  };
  let audioCtx = null;
  function tone(key) {
    if (!ui.tones.checked || !DTMF[key]) return;
    const AC = window.AudioContext || window.webkitAudioContext;
    if (!AC) return;
    try {
      audioCtx = audioCtx || new AC();
      const t = audioCtx.currentTime;
      const gain = audioCtx.createGain();
      gain.gain.setValueAtTime(0.0001, t);
      gain.gain.exponentialRampToValueAtTime(0.08, t + 0.01);
      gain.gain.exponentialRampToValueAtTime(0.0001, t + 0.14);
      gain.connect(audioCtx.destination);
      for (const f of DTMF[key]) {
        const o = audioCtx.createOscillator();
        o.frequency.value = f;
        o.connect(gain);
        o.start(t);
        o.stop(t + 0.15);
      }
    } catch (e) {
      // no audio: the key still counts
    }
  }

  // ---------------- webhooks ----------------

  function baseURL() {
    return String(config.publicURL || location.origin).replace(/\/+$/, '');
  }

  function standardParams(call, status) {
    return [
      ['CallSid', call.sid],
      ['AccountSid', config.accountSid || ''],
      ['From', config.from || ''],
      ['To', config.to || ''],
      ['CallStatus', status],
      ['Direction', 'inbound'],
      ['ApiVersion', '2010-04-01'],
      ['Caller', config.from || ''],
      ['Called', config.to || ''],
    ];
  }

  // target resolves a TwiML URL against the document that named it and
  // drops any fragment (browsers and Twilio never send one).
  function absolute(url, docURL) {
    const u = new URL(url, docURL);
    u.hash = '';
    return u;
  }

  // webhook makes one signed Twilio request for the call and returns the
  // body and the absolute URL requested. Non-2xx, network errors and
  // Twilio's 15 s limit throw AppError.
  async function webhook(call, req) {
    const u = absolute(req.url, baseURL() + '/');
    const method = (req.method || 'POST').toUpperCase() === 'GET' ? 'GET' : 'POST';
    const params = standardParams(call, call.requests === 0 ? 'ringing' : 'in-progress').concat(req.extra || []);
    let signed = params;
    if (method === 'GET') {
      for (const [k, v] of params) u.searchParams.append(k, v);
      signed = [];
    }
    const href = u.href;
    const sig = await twilioSignature(config.twilioAuthToken || '', href, signed);
    check(call);
    call.requests++;
    const ctrl = new AbortController();
    const onEnd = () => ctrl.abort();
    call.end.on(onEnd);
    const limit = setTimeout(() => ctrl.abort(), TWILIO_TIMEOUT_MS);
    const t0 = performance.now();
    const path = u.pathname + u.search;
    const shown = u.pathname; // the query may carry anything; the path is enough here
    try {
      const init = {
        method,
        headers: { 'X-Twilio-Signature': sig },
        signal: ctrl.signal,
        credentials: 'omit',
        cache: 'no-store',
      };
      if (method === 'POST') {
        init.headers['Content-Type'] = 'application/x-www-form-urlencoded';
        init.body = new URLSearchParams(params).toString();
      }
      let resp;
      let text;
      try {
        resp = await fetch(path, init);
        text = await resp.text();
      } catch (e) {
        check(call);
        if (ctrl.signal.aborted) throw new AppError(method + ' ' + shown + ' took longer than Twilio waits (15 s)', '11205', href);
        throw new AppError(method + ' ' + shown + ' failed: ' + (e && e.message ? e.message : 'network error'), '11200', href);
      }
      check(call);
      const ms = Math.round(performance.now() - t0);
      log(resp.ok ? 'sys' : 'err', 'Webhook', method + ' ' + shown + ' → ' + resp.status + ' (' + ms + ' ms)');
      if (!resp.ok) throw new AppError(method + ' ' + shown + ' answered HTTP ' + resp.status, '11200', href);
      return { text, url: href };
    } finally {
      clearTimeout(limit);
      call.end.off(onEnd);
    }
  }

  // finalRequests sends what Twilio sends once a call is over: the action
  // of an <Enqueue> or <Dial> the caller hung up in (its TwiML is ignored),
  // then the status callback. While the page unloads they are signed
  // synchronously and sent with keepalive.
  function finalRequests(call, unloading) {
    const reqs = [];
    if (call.after) {
      const secs = Math.round((call.endedAt - call.after.since) / 1000);
      reqs.push({ url: call.after.url, what: 'action after hang-up', params: standardParams(call, 'completed').concat(call.after.extra(secs)) });
    }
    if (config.statusPath) {
      const params = standardParams(call, 'completed');
      params.push(['CallDuration', String(call.answeredAt ? Math.round((call.endedAt - call.answeredAt) / 1000) : 0)]);
      reqs.push({ url: absolute(config.statusPath, baseURL() + '/').href, what: 'status callback: completed', params });
    }
    const token = config.twilioAuthToken || '';
    const send = (r, sig) => {
      const u = new URL(r.url);
      return fetch(u.pathname + u.search, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'X-Twilio-Signature': sig },
        body: new URLSearchParams(r.params).toString(),
        credentials: 'omit',
        keepalive: true,
      });
    };
    if (unloading) {
      for (const r of reqs) {
        try { send(r, twilioSignatureSync(token, r.url, r.params)).catch(() => {}); } catch (e) { /* page is going away */ }
      }
      return;
    }
    (async () => {
      for (const r of reqs) {
        const path = new URL(r.url).pathname;
        try {
          const resp = await send(r, await twilioSignature(token, r.url, r.params));
          log(resp.ok ? 'sys' : 'err', 'Webhook', 'POST ' + path + ' (' + r.what + ') → ' + resp.status);
        } catch (e) {
          log('err', 'Webhook', 'POST ' + path + ' (' + r.what + ') failed');
        }
      }
    })();
  }

  // ---------------- TwiML ----------------

  function parseTwiML(text, url) {
    let doc = null;
    try {
      doc = new DOMParser().parseFromString(text, 'text/xml');
    } catch (e) {
      doc = null;
    }
    const path = new URL(url).pathname;
    if (!doc || doc.getElementsByTagName('parsererror').length) throw new AppError(path + ' did not answer well-formed XML', '12100', url);
    if (!doc.documentElement || doc.documentElement.tagName !== 'Response') throw new AppError(path + ' did not answer a <Response>', '12100', url);
    return doc;
  }

  const children = (el) => Array.from(el.children || []);
  const ownText = (el) => Array.from(el.childNodes).filter((n) => n.nodeType === 3 || n.nodeType === 4).map((n) => n.nodeValue).join('').trim();

  function loops(el) {
    const raw = el.getAttribute('loop');
    if (raw === null || raw === '') return 1;
    const n = parseInt(raw, 10);
    if (n === 0) return Infinity;
    return n > 0 ? n : 1;
  }

  function prosodyRate(raw, inherited) {
    const v = String(raw || '').trim().toLowerCase();
    const named = { 'x-slow': 0.5, slow: 0.7, medium: 1, default: 1, fast: 1.3, 'x-fast': 1.6 };
    if (v in named) return named[v];
    const pct = /^(\d+(?:\.\d+)?)%$/.exec(v);
    if (pct) return Math.min(2, Math.max(0.3, Number(pct[1]) / 100));
    return inherited;
  }

  function breakMs(el) {
    const time = String(el.getAttribute('time') || '').trim().toLowerCase();
    let m = /^(\d+(?:\.\d+)?)ms$/.exec(time);
    if (m) return Number(m[1]);
    m = /^(\d+(?:\.\d+)?)s$/.exec(time);
    if (m) return Number(m[1]) * 1000;
    const strength = { none: 0, 'x-weak': 100, weak: 250, medium: 400, strong: 750, 'x-strong': 1200 };
    return strength[el.getAttribute('strength')] ?? 400;
  }

  // sayParts flattens a <Say>'s SSML into spoken pieces and pauses:
  // [{text, rate, lang} | {pause: ms}].
  function sayParts(node, rate, lang, out) {
    const push = (text) => {
      const t = text.replace(/\s+/g, ' ');
      if (!t.trim()) {
        if (out.length && out[out.length - 1].text !== undefined && t) out[out.length - 1].text += ' ';
        return;
      }
      const last = out[out.length - 1];
      if (last && last.text !== undefined && last.rate === rate && last.lang === lang) last.text += t;
      else out.push({ text: t, rate, lang });
    };
    for (const c of Array.from(node.childNodes)) {
      if (c.nodeType === 3 || c.nodeType === 4) { push(c.nodeValue); continue; }
      if (c.nodeType !== 1) continue;
      switch (c.localName) {
        case 'break':
          out.push({ pause: breakMs(c) });
          break;
        case 'prosody':
          sayParts(c, prosodyRate(c.getAttribute('rate'), rate), lang, out);
          break;
        case 'say-as': {
          const as = String(c.getAttribute('interpret-as') || '').toLowerCase();
          const t = c.textContent.trim();
          push(' ' + (['characters', 'character', 'spell-out', 'digits', 'telephone'].includes(as) ? t.replace(/\s+/g, '').split('').join(' ') : t) + ' ');
          break;
        }
        case 'sub':
          push(' ' + (c.getAttribute('alias') || c.textContent) + ' ');
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
  }

  async function doSay(call, el, intr) {
    const lang = el.getAttribute('language') || 'en-US';
    const parts = sayParts(el, 1, lang, []);
    const shown = parts.filter((p) => p.text !== undefined).map((p) => p.text).join(' ').replace(/\s+/g, ' ').trim();
    const n = loops(el);
    for (let i = 0; i < n; i++) {
      check(call);
      if (intr && intr.fired) return;
      setStatus('The IVR is speaking (' + lang + ')…');
      const li = log('say', 'IVR', (i > 0 ? '(again) ' : '') + shown, lang);
      if (li) li.classList.add('speaking');
      try {
        for (const p of parts) {
          if (intr && intr.fired) break;
          if (p.pause !== undefined) await wait(call, p.pause * scale, intr);
          else await speak(call, p.text.trim(), p.lang, p.rate, intr);
        }
      } finally {
        if (li) li.classList.remove('speaking');
      }
    }
  }

  async function doPause(call, el, intr) {
    const n = parseFloat(el.getAttribute('length'));
    const s = n >= 0 ? n : 1;
    setStatus('Silence (' + s + ' s)…');
    await wait(call, s * 1000 * scale, intr);
  }

  async function doPlay(call, el, intr) {
    const url = el.textContent.trim();
    const n = loops(el);
    for (let i = 0; i < n; i++) {
      check(call);
      if (intr && intr.fired) return;
      setStatus('On hold…');
      log('sys', 'IVR', '♪ hold music');
      if (!(await playAudio(call, url, intr))) await wait(call, 3000 * scale, intr);
    }
  }

  const badAudio = new Set(); // URLs that failed once are not fetched again

  // playAudio plays a real audio URL; it resolves false at once if it
  // cannot (sound off, bad URL, blocked, error before playing).
  function playAudio(call, url, intr) {
    let src = null;
    try {
      src = url ? absolute(url, baseURL() + '/') : null;
    } catch (e) {
      src = null;
    }
    if (!ui.speech.checked || !src || !/^https?:$/.test(src.protocol) || badAudio.has(src.href) || typeof Audio === 'undefined') {
      return Promise.resolve(false);
    }
    return new Promise((resolve, reject) => {
      const a = new Audio();
      let done = false;
      let playing = false;
      const guard = setTimeout(() => { if (!playing) finish(false); }, 4000);
      const finish = (v) => {
        if (done) return;
        done = true;
        clearTimeout(guard);
        a.pause();
        a.removeAttribute('src');
        call.end.off(onEnd);
        if (intr) intr.off(onIntr);
        if (v === ENDED) reject(ENDED); else resolve(v);
      };
      const onEnd = () => finish(ENDED);
      const onIntr = () => finish(true);
      a.addEventListener('playing', () => { playing = true; });
      a.addEventListener('ended', () => finish(true));
      a.addEventListener('error', () => {
        if (!playing) badAudio.add(src.href);
        finish(playing);
      });
      call.end.on(onEnd);
      if (intr) intr.on(onIntr);
      a.src = src.href;
      const p = a.play();
      if (p && p.catch) p.catch(() => finish(false));
    });
  }

  // doGather listens for keys while it runs its nested verbs; it returns
  // the next request, or null to fall through to the next verb.
  async function doGather(call, el, docURL) {
    const input = el.getAttribute('input') || 'dtmf';
    if (!/dtmf/.test(input)) noteOnce('speech-input', 'This Gather asks for speech; the demo phone only sends keys.');
    const finishOnKey = el.hasAttribute('finishOnKey') ? el.getAttribute('finishOnKey') : '#';
    const nd = parseInt(el.getAttribute('numDigits'), 10);
    const numDigits = nd > 0 ? nd : 0;
    const to = parseFloat(el.getAttribute('timeout'));
    const timeoutMs = (to >= 0 ? to : 5) * 1000 * scale;
    const actionOnEmpty = el.getAttribute('actionOnEmptyResult') === 'true';

    const g = { digits: '', result: null, intr: new Signal(), done: new Signal(), nestedDone: false, silence: null, line: null };
    const finish = (finishedOnKey, why) => {
      if (g.result) return;
      g.result = { digits: g.digits, finishedOnKey, why };
      clearTimeout(g.silence);
      g.done.fire();
    };
    const armSilence = () => {
      clearTimeout(g.silence);
      g.silence = setTimeout(() => finish('', 'timeout'), timeoutMs);
    };
    g.key = (k) => {
      if (g.result) return;
      g.intr.fire(); // barge-in: a key stops the prompt
      if (finishOnKey && k === finishOnKey) {
        if (g.digits) finish(k, 'key');
        else if (g.nestedDone) armSilence();
        return;
      }
      g.digits += k;
      ui.entered.textContent = g.digits;
      if (numDigits && g.digits.length >= numDigits) { finish('', 'numDigits'); return; }
      if (g.nestedDone) armSilence();
    };
    call.gather = g;
    ui.entered.textContent = '';
    try {
      for (const c of children(el)) {
        if (g.intr.fired) break;
        if (c.tagName === 'Say') await doSay(call, c, g.intr);
        else if (c.tagName === 'Play') await doPlay(call, c, g.intr);
        else if (c.tagName === 'Pause') await doPause(call, c, g.intr);
      }
      check(call);
      if (!g.result) {
        g.nestedDone = true;
        setStatus('Listening — type on the keypad' + (finishOnKey ? ', end with ' + finishOnKey : '') + '.');
        armSilence();
        await wait(call, Infinity, g.done);
      }
    } finally {
      clearTimeout(g.silence);
      if (call.gather === g) call.gather = null;
    }
    const r = g.result;
    if (!r.digits && !actionOnEmpty) {
      log('sys', 'Twilio', 'No keys before the timeout: Twilio moves on to the next verb.', '', true);
      return null;
    }
    const how = { key: 'ended with ' + r.finishedOnKey, numDigits: 'numDigits=' + numDigits + ' reached', timeout: 'after ' + (timeoutMs / 1000 / scale) + ' s of silence' }[r.why];
    log('sys', 'Twilio', 'Gather done (' + r.digits.length + ' digit' + (r.digits.length === 1 ? '' : 's') + ', ' + how + ').', '', true);
    ui.entered.textContent = '';
    return {
      url: absolute(el.getAttribute('action') || docURL, docURL).href,
      method: el.getAttribute('method') || 'POST',
      extra: [['Digits', r.digits], ['FinishedOnKey', r.finishedOnKey]],
    };
  }

  // afterHangup remembers the action URL Twilio requests when the caller
  // hangs up during <Enqueue> or <Dial>.
  function afterHangup(call, el, docURL, extra) {
    const action = el.getAttribute('action');
    if (!action) return;
    call.after = {
      url: absolute(action, docURL).href,
      method: el.getAttribute('method') || 'POST',
      since: performance.now(),
      extra,
    };
  }

  async function doEnqueue(call, el, docURL) {
    const name = ownText(el) || (el.getAttribute('workflowSid') ? 'TaskRouter workflow' : 'support');
    log('ok', 'Twilio', 'Connected to the agent queue “' + name + '” — an agent will answer.');
    setStatus('In the queue “' + name + '”: an agent will answer. Hang up to end the call.');
    const queueSid = 'QU' + randomHex(16);
    afterHangup(call, el, docURL, (secs) => [['QueueResult', 'hangup'], ['QueueSid', queueSid], ['QueueTime', String(secs)]]);
    await wait(call, Infinity);
  }

  async function doDial(call, el, docURL) {
    const labels = { Number: (t) => t, Client: (t) => 'agent “' + t + '”', Queue: (t) => 'queue “' + t + '”', Sip: (t) => t, Conference: (t) => 'conference “' + t + '”' };
    const nouns = children(el).filter((c) => labels[c.tagName]).map((c) => labels[c.tagName](ownText(c) || c.textContent.trim()));
    const target = nouns.join(', ') || ownText(el) || 'an agent';
    log('ok', 'Twilio', 'Calling ' + target + '…');
    setStatus('Connected to ' + target + '. Hang up to end the call.');
    const dialSid = 'CA' + randomHex(16);
    afterHangup(call, el, docURL, (secs) => [['DialCallStatus', 'completed'], ['DialCallSid', dialSid], ['DialCallDuration', String(secs)], ['DialBridged', 'true']]);
    await wait(call, Infinity);
  }

  // runDocument runs one TwiML document; it returns the next request
  // ({url, method, extra}) or null when the call should end.
  async function runDocument(call, doc, docURL) {
    for (const verb of children(doc.documentElement)) {
      check(call);
      switch (verb.tagName) {
        case 'Say': await doSay(call, verb, null); break;
        case 'Pause': await doPause(call, verb, null); break;
        case 'Play': await doPlay(call, verb, null); break;
        case 'Gather': {
          const next = await doGather(call, verb, docURL);
          if (next) return next;
          break;
        }
        case 'Redirect':
          return { url: absolute(verb.textContent.trim() || docURL, docURL).href, method: verb.getAttribute('method') || 'POST' };
        case 'Enqueue': await doEnqueue(call, verb, docURL); return null;
        case 'Dial': await doDial(call, verb, docURL); return null;
        case 'Hangup':
        case 'Reject':
          log('sys', 'Twilio', '<' + verb.tagName + '>: the IVR hangs up.');
          return null;
        default:
          log('sys', 'Phone', '<' + verb.tagName + '> is not emulated by the demo phone; skipped.');
      }
    }
    return null;
  }

  // ---------------- the call ----------------

  let tick = null;
  function renderTimer() {
    const c = current;
    if (!c) return;
    ui.timer.textContent = c.answeredAt ? mmss(performance.now() - c.answeredAt) : '00:00';
  }

  function setInCall(on) {
    ui.call.disabled = on || !config;
    ui.hangup.disabled = !on;
    for (const b of ui.users.querySelectorAll('button[data-type]')) b.disabled = !on;
  }

  async function startCall() {
    if (current || !config) return;
    const call = {
      sid: 'CA' + randomHex(16),
      end: new Signal(),
      ended: false,
      startedAt: performance.now(),
      answeredAt: 0,
      endedAt: 0,
      requests: 0,
      gather: null,
      after: null, // the <Enqueue>/<Dial> action to request on hang-up
    };
    current = call;
    lastCall = call;
    setInCall(true);
    ui.sid.textContent = 'CallSid ' + call.sid;
    ui.timer.textContent = '00:00';
    ui.entered.textContent = '';
    setStatus('Calling ' + (config.to || 'the support line') + '…');
    const empty = ui.transcript.querySelector('.empty');
    if (empty) empty.remove();
    log('sys', 'Phone', 'New call ' + call.sid + ' from ' + (config.from || '?') + ' to ' + (config.to || '?') + '.');
    if ('speechSynthesis' in window) speechSynthesis.cancel();
    tick = setInterval(renderTimer, 250);
    ui.hangup.focus();

    let next = { url: config.voicePath || '/twilio/voice', method: 'POST', extra: [] };
    let fellBack = false;
    while (next) {
      try {
        const { text, url } = await webhook(call, next);
        if (!call.answeredAt) {
          call.answeredAt = performance.now();
          setStatus('Connected.');
        }
        next = await runDocument(call, parseTwiML(text, url), url);
      } catch (e) {
        if (e === ENDED || call.ended) return;
        const why = e instanceof AppError ? e.message : (e && e.message) || String(e);
        // With a Voice Fallback URL configured, Twilio asks it once.
        if (e instanceof AppError && config.fallbackPath && !fellBack) {
          fellBack = true;
          log('err', 'Twilio', 'Error ' + e.code + ' (' + why + '): Twilio requests the fallback URL.');
          next = { url: config.fallbackPath, method: 'POST', extra: [['ErrorCode', e.code], ['ErrorUrl', e.url]] };
          continue;
        }
        log('err', 'Twilio', 'Twilio would say: an application error has occurred (' + why + ').');
        try {
          await speak(call, APP_ERROR, 'en-US', 1, null);
        } catch (ignored) {
          return; // hung up meanwhile
        }
        endCall(call, 'Call ended after an application error.');
        return;
      }
    }
    endCall(call, 'The IVR ended the call.');
  }

  function endCall(call, reason, unloading) {
    if (!call || call.ended) return;
    call.ended = true;
    call.endedAt = performance.now();
    if (call.gather) call.gather = null;
    call.end.fire(); // rejects every wait, aborts the fetch in flight, stops speech and audio
    if ('speechSynthesis' in window) speechSynthesis.cancel();
    if (current === call) current = null;
    clearInterval(tick);
    tick = null;
    const dur = call.answeredAt ? mmss(call.endedAt - call.answeredAt) : '00:00';
    ui.timer.textContent = dur;
    setInCall(false);
    setStatus('Call ended (' + dur + '). ' + reason);
    log('sys', 'Phone', reason);
    finalRequests(call, unloading);
    if (!unloading && document.activeElement === ui.hangup) ui.call.focus();
  }

  // press is one key from the keypad, the keyboard or "Type it".
  function press(key) {
    tone(key);
    const btn = ui.keypad.querySelector('button[data-key="' + key + '"]');
    if (btn) {
      btn.classList.add('pressed');
      setTimeout(() => btn.classList.remove('pressed'), 150);
    }
    const call = current;
    if (!call) return;
    const g = call.gather;
    // Consecutive keys in one prompt share a transcript line.
    const last = ui.transcript.lastElementChild;
    if (g && g.line && last === g.line) {
      g.line.querySelector('.msg').textContent += ' ' + key;
    } else if (g) {
      g.line = log('key', 'You pressed', key);
    } else {
      log('key', 'You pressed', key + ' (nobody is listening: Twilio drops keys outside <Gather>)');
    }
    if (g) g.key(key);
  }

  // typeNumber keys a test user's number and # into the call, like a person.
  async function typeNumber(number) {
    const call = current;
    if (!call) return;
    for (const k of String(number).replace(/\D/g, '') + '#') {
      if (call.ended || current !== call) return;
      press(k);
      try {
        await wait(call, 160, null);
      } catch (e) {
        return;
      }
    }
  }

  // ---------------- test users ----------------

  const BEHAVIOUR = {
    manual: 'Waits for you in the BankID app page',
    'approve-fast': 'Approves by itself after a few seconds',
    'approve-slow': 'Approves by itself after about a minute',
    decline: 'Declines by itself after a few seconds',
    'no-answer': 'Never answers: the request expires',
  };
  const COUNTRY = { SE: 'Sweden', NO: 'Norway' };

  async function copyText(text) {
    try {
      if (navigator.clipboard && window.isSecureContext) {
        await navigator.clipboard.writeText(text);
        return true;
      }
    } catch (e) {
      // fall through to the old way
    }
    const ta = document.createElement('textarea');
    ta.value = text;
    ta.setAttribute('readonly', '');
    ta.className = 'visually-hidden';
    document.body.append(ta);
    ta.select();
    let ok = false;
    try { ok = document.execCommand('copy'); } catch (e) { ok = false; }
    ta.remove();
    return ok;
  }

  function renderUsers(users) {
    ui.users.textContent = '';
    if (!Array.isArray(users) || !users.length) {
      ui.usersNote.hidden = false;
      ui.usersNote.textContent = 'No test users in the demo configuration.';
      return;
    }
    for (const u of users) {
      const li = document.createElement('li');
      const name = document.createElement('strong');
      name.textContent = u.name || '(no name)';
      const country = document.createElement('span');
      country.className = 'country';
      country.textContent = COUNTRY[u.country] || u.country || '';
      const beh = document.createElement('span');
      beh.className = 'behaviour';
      beh.textContent = BEHAVIOUR[u.script] || u.script || '';
      const row = document.createElement('div');
      row.className = 'user-actions';
      const code = document.createElement('span');
      code.className = 'num';
      code.textContent = u.number || '';
      const type = document.createElement('button');
      type.type = 'button';
      type.className = 'small primary';
      type.textContent = 'Type it';
      type.dataset.type = '1';
      type.disabled = !current;
      type.setAttribute('aria-label', 'Type ' + (u.name || 'this user') + '’s number and # into the call');
      type.addEventListener('click', () => typeNumber(u.number));
      const copy = document.createElement('button');
      copy.type = 'button';
      copy.className = 'small';
      copy.textContent = 'Copy';
      copy.setAttribute('aria-label', 'Copy ' + (u.name || 'this user') + '’s number');
      copy.addEventListener('click', async () => {
        const ok = await copyText(String(u.number || ''));
        copy.textContent = ok ? 'Copied' : 'Copy failed';
        setTimeout(() => { copy.textContent = 'Copy'; }, 1500);
      });
      row.append(code, type, copy);
      li.append(name, ' ', country, beh, row);
      ui.users.append(li);
    }
  }

  // ---------------- wiring ----------------

  ui.call.addEventListener('click', () => { startCall(); });
  ui.hangup.addEventListener('click', () => { if (current) endCall(current, 'You hung up.'); });
  ui.clear.addEventListener('click', () => {
    ui.transcript.textContent = '';
    if (current && current.gather) current.gather.line = null;
  });
  ui.keypad.addEventListener('click', (e) => {
    const b = e.target.closest('button[data-key]');
    if (b) press(b.dataset.key);
  });
  ui.webhooks.addEventListener('change', () => {
    ui.transcript.classList.toggle('hide-details', !ui.webhooks.checked);
  });
  ui.speech.addEventListener('change', () => {
    if (!ui.speech.checked && 'speechSynthesis' in window) speechSynthesis.cancel();
    if (ui.speech.checked) speechFailures = 0; // try again
  });
  document.addEventListener('keydown', (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || e.repeat) return;
    const t = e.target;
    if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
    if (/^[0-9*#]$/.test(e.key)) {
      e.preventDefault();
      press(e.key);
    }
  });
  window.addEventListener('pagehide', () => { if (current) endCall(current, 'The page was closed.', true); });
  if ('speechSynthesis' in window && speechSynthesis.addEventListener) {
    speechSynthesis.addEventListener('voiceschanged', () => {}); // makes Chrome load its voices early
    speechSynthesis.getVoices();
  }

  async function loadConfig() {
    try {
      const resp = await fetch('/demo/api/config', { cache: 'no-store', credentials: 'same-origin' });
      if (!resp.ok) throw new Error('HTTP ' + resp.status);
      config = await resp.json();
    } catch (e) {
      setStatus('Could not load the demo configuration (/demo/api/config). Is `ivrd demo` running?');
      ui.usersNote.hidden = false;
      ui.usersNote.className = 'notice error';
      ui.usersNote.textContent = 'No configuration: ' + (e && e.message ? e.message : 'error');
      return;
    }
    renderUsers(config.users);
    if (config.dashboardURL) {
      for (const id of ['dashboard-link', 'dashboard-link-2']) $(id).href = config.dashboardURL;
    }
    setInCall(false);
    setStatus('Ready. Press “Call the support line”.');
  }

  loadConfig();
})();

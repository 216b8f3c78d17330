// speech.js — the voice of the IVR and the keys' tones. Each <Say> piece
// is spoken with the browser's speech synthesis in its language. Where
// nothing can be spoken (speech off, no voices as in headless browsers, an
// engine that never starts) the prompt stays up for its reading time
// instead, so a call takes about as long either way.

import { sleep, watch } from './timing.js';

const synth = () => ('speechSynthesis' in globalThis && typeof SpeechSynthesisUtterance !== 'undefined' ? globalThis.speechSynthesis : null);

const norm = (s) => String(s ?? '').toLowerCase().replace(/_/g, '-');

// Speech speaks prompts. scale is the time knob (timing.js timeScale);
// enabled() says whether the caller wants prompts spoken aloud; note(key,
// text) tells the transcript something once.
export class Speech {
  #failures = 0; // utterances in a row that never started; at 2, stop trying
  #utterance = null; // kept alive until it ends (Safari drops its events otherwise)

  constructor({ scale = 1, enabled = () => true, note = () => {} } = {}) {
    this.scale = scale;
    this.enabled = enabled;
    this.note = note;
    const s = synth();
    if (s?.addEventListener) {
      s.addEventListener('voiceschanged', () => {}); // makes Chrome load its voices early
      s.getVoices();
    }
  }

  // readingTime is how long text stays up when it cannot be spoken.
  readingTime(text, rate = 1) {
    return Math.max(1200, (text.length * 65) / rate) * this.scale;
  }

  // cancel stops whatever is being said.
  cancel() {
    synth()?.cancel();
  }

  // retry forgets earlier failures (the caller turned speech back on).
  retry() {
    this.#failures = 0;
  }

  #voice(lang) {
    const voices = synth()?.getVoices() ?? [];
    if (!voices.length) return null;
    const want = norm(lang);
    const base = want.split('-')[0];
    const bases = ['nb', 'no', 'nn'].includes(base) ? ['nb', 'no', 'nn'] : [base];
    const exact = voices.filter((v) => norm(v.lang) === want);
    const near = voices.filter((v) => bases.some((b) => norm(v.lang) === b || norm(v.lang).startsWith(`${b}-`)));
    // Prefer voices on this machine: network voices can take seconds to start.
    const v = exact.find((x) => x.localService) ?? exact[0] ?? near.find((x) => x.localService) ?? near[0];
    if (!v) this.note(`voice:${want}`, `This browser has no ${lang} voice: the prompt is spoken with its default voice.`);
    return v ?? null;
  }

  // speak says text, resolving once it is said (or read), early when
  // stops.until aborts; it rejects with the reason when stops.signal
  // aborts. Speech stops either way.
  speak(text, lang = 'en-US', rate = 1, stops = {}) {
    if (!text.trim()) return Promise.resolve();
    const est = this.readingTime(text, rate);
    const s = synth();
    if (!this.enabled() || !s || this.#failures >= 2) {
      if (this.enabled()) this.note('nospeech', 'Speech synthesis is not available here: each prompt is shown for its reading time.');
      return sleep(est, stops).then(() => {});
    }
    const u = new SpeechSynthesisUtterance(text);
    u.lang = lang;
    u.rate = rate;
    const voice = this.#voice(lang);
    if (voice) u.voice = voice;
    this.#utterance = u;
    return new Promise((resolve, reject) => {
      let started = false;
      let done = false;
      let timer = null;
      const t0 = performance.now();
      const finish = (err) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        unwatch();
        if (this.#utterance === u) this.#utterance = null;
        if (err !== undefined) reject(err); else resolve();
      };
      const unwatch = watch(stops, (reason) => { s.cancel(); finish(reason); }, () => { s.cancel(); finish(); });
      // Nothing said (no voices, headless, blocked): show it for its reading time.
      const readInstead = () => {
        if (done) return;
        this.#failures++;
        s.cancel();
        this.note('nospeech', 'Speech synthesis did not start: each prompt is shown for its reading time.');
        clearTimeout(timer);
        timer = setTimeout(() => finish(), Math.max(0, est - (performance.now() - t0)));
      };
      u.onstart = () => {
        started = true;
        this.#failures = 0;
        clearTimeout(timer);
        // Safety net: some engines never fire onend for long utterances.
        timer = setTimeout(() => { s.cancel(); finish(); }, (text.length * 150) / rate + 8000);
      };
      // An "end" at once without a start means nothing was said.
      u.onend = () => {
        if (!started && performance.now() - t0 < est * 0.3) readInstead();
        else finish();
      };
      u.onerror = () => { if (started) finish(); else readInstead(); };
      if (done) return;
      timer = setTimeout(readInstead, 4000);
      try {
        s.speak(u);
      } catch {
        readInstead();
      }
    });
  }
}

const DTMF = {
  1: [697, 1209], 2: [697, 1336], 3: [697, 1477],
  4: [770, 1209], 5: [770, 1336], 6: [770, 1477],
  7: [852, 1209], 8: [852, 1336], 9: [852, 1477],
  '*': [941, 1209], 0: [941, 1336], '#': [941, 1477],
};

// Tones plays the DTMF pair of a key, softly, when enabled() says so.
export class Tones {
  #ctx = null;

  constructor({ enabled = () => true } = {}) {
    this.enabled = enabled;
  }

  play(key) {
    const pair = DTMF[key];
    const AC = globalThis.AudioContext ?? globalThis.webkitAudioContext;
    if (!this.enabled() || !pair || !AC) return;
    try {
      this.#ctx ??= new AC();
      const ctx = this.#ctx;
      const t = ctx.currentTime;
      const gain = ctx.createGain();
      gain.gain.setValueAtTime(0.0001, t);
      gain.gain.exponentialRampToValueAtTime(0.08, t + 0.01);
      gain.gain.exponentialRampToValueAtTime(0.0001, t + 0.14);
      gain.connect(ctx.destination);
      for (const f of pair) {
        const o = ctx.createOscillator();
        o.frequency.value = f;
        o.connect(gain);
        o.start(t);
        o.stop(t + 0.15);
      }
    } catch {
      // no audio: the key still counts
    }
  }
}

// playAudio plays an audio URL (a <Play>) and resolves true when it has
// played, or when stops.until cut it short; false at once if it cannot
// play (sound off, bad URL, blocked, an error before playing). It rejects
// with the reason when stops.signal aborts. URLs that failed once are not
// fetched again.
const badAudio = new Set();

export const playAudio = (href, { enabled = true, ...stops } = {}) => {
  if (!enabled || !href || badAudio.has(href) || typeof Audio === 'undefined') return Promise.resolve(false);
  return new Promise((resolve, reject) => {
    const a = new Audio();
    let playing = false;
    let done = false;
    const finish = (ok, err) => {
      if (done) return;
      done = true;
      clearTimeout(guard);
      unwatch();
      a.pause();
      a.removeAttribute('src');
      if (err !== undefined) reject(err); else resolve(ok);
    };
    const guard = setTimeout(() => { if (!playing) finish(false); }, 4000);
    const unwatch = watch(stops, (reason) => finish(false, reason), () => finish(true));
    a.addEventListener('playing', () => { playing = true; });
    a.addEventListener('ended', () => finish(true));
    a.addEventListener('error', () => {
      if (!playing) badAudio.add(href);
      finish(playing);
    });
    a.src = href;
    a.play()?.catch(() => finish(false));
  });
};

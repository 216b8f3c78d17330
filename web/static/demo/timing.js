// timing.js — waits that a call can cut short. Two signals stop a wait:
//
//   signal  aborts the TwiML being run: the call ended, or a call update
//           replaced the document. The wait rejects with signal.reason.
//   until   is softer: a key that barges in on a <Gather>'s prompt. The
//           wait resolves early (sleep: false).

// watch calls onAbort(reason) when signal aborts and onUntil() when until
// does, whichever is first and at most once; the function it returns stops
// watching. Either signal may be missing.
export const watch = ({ signal, until } = {}, onAbort, onUntil) => {
  let done = false;
  const stop = () => {
    done = true;
    signal?.removeEventListener('abort', abort);
    until?.removeEventListener('abort', soft);
  };
  const abort = () => { if (!done) { stop(); onAbort(signal.reason); } };
  const soft = () => { if (!done) { stop(); onUntil(); } };
  if (signal?.aborted) {
    queueMicrotask(abort);
  } else if (until?.aborted) {
    queueMicrotask(soft);
  } else {
    signal?.addEventListener('abort', abort);
    until?.addEventListener('abort', soft);
  }
  return stop;
};

// sleep resolves true after ms (Infinity: never), false when until aborts
// first, and rejects with signal.reason when signal aborts first.
export const sleep = (ms, stops = {}) => new Promise((resolve, reject) => {
  let timer = null;
  const stop = watch(stops, (reason) => { clearTimeout(timer); reject(reason); }, () => { clearTimeout(timer); resolve(false); });
  if (ms !== Infinity) timer = setTimeout(() => { stop(); resolve(true); }, Math.max(0, ms));
});

// timeScale reads the ?timescale= test knob: 0.1 makes every pause, hold,
// reading time and Gather timeout ten times shorter (for automated tests).
export const timeScale = (search = globalThis.location?.search ?? '') => {
  const v = Number(new URLSearchParams(search).get('timescale'));
  return v > 0 ? Math.min(Math.max(v, 0.01), 10) : 1;
};

// callerid.js — the phone's caller id: a new one for every call.
//
// The service limits BankID requests per caller id, so a demo that always
// called from one number would be refused BankID from its sixth call in ten
// minutes, and every call would look alike on the dashboard. Each call
// therefore comes from a fresh Swedish mobile number in the range PTS (the
// Swedish telecoms regulator) reserves for fiction, 070-174 06 05 to
// 070-174 06 99: plausible, and nobody's real number, which matters since
// the BankID app page shows it in full. The numbers differ in their last
// two digits, all that a masked number on the dashboard shows, and the
// numbers of this browser's last RECENT calls are not used again.

const FIRST = 5;
const LAST = 99;
const PREFIX = '+467017406';
// The simulator's Transmit test users have these numbers: leave them be.
const TAKEN = new Set([11, 22, 33, 44, 55]);
const RECENT = 40;
const STORE_KEY = 'demo-phone.recent-caller-ids';

const pad2 = (n) => String(n).padStart(2, '0');

const recall = (storage) => {
  try {
    const v = JSON.parse(storage?.getItem(STORE_KEY) ?? '[]');
    return Array.isArray(v) ? v.filter((x) => typeof x === 'string') : [];
  } catch {
    return [];
  }
};

const remember = (storage, list) => {
  try {
    storage?.setItem(STORE_KEY, JSON.stringify(list.slice(-RECENT)));
  } catch {
    // private mode or full: this page's memory will do
  }
};

const randomIndex = (n) => crypto.getRandomValues(new Uint32Array(1))[0] % n;

let memory = []; // when storage is unavailable

// newCallerID returns the E.164 caller id of a new call and remembers it.
export const newCallerID = (storage = globalThis.localStorage) => {
  const recent = storage ? recall(storage) : memory;
  const all = [];
  for (let n = FIRST; n <= LAST; n++) if (!TAKEN.has(n)) all.push(PREFIX + pad2(n));
  const fresh = all.filter((x) => !recent.includes(x));
  // All used lately (only after RECENT calls, if RECENT >= all.length): the least recent.
  const id = fresh.length ? fresh[randomIndex(fresh.length)] : recent.find((x) => all.includes(x)) ?? all[0];
  const next = [...recent.filter((x) => x !== id), id];
  if (storage) remember(storage, next);
  else memory = next.slice(-RECENT);
  return id;
};

// formatNumber writes an E.164 number for people: "+46 70 174 06 37",
// "+46 8 123 456 78", "+47 912 34 567"; anything else as it is.
export const formatNumber = (e164) => {
  const s = String(e164 ?? '');
  let m = /^\+46(7\d)(\d{3})(\d{2})(\d{2})$/.exec(s);
  if (m) return `+46 ${m.slice(1).join(' ')}`;
  m = /^\+46(8)(\d{3})(\d{3})(\d{2})$/.exec(s);
  if (m) return `+46 ${m.slice(1).join(' ')}`;
  m = /^\+47(\d{3})(\d{2})(\d{3})$/.exec(s);
  if (m) return `+47 ${m.slice(1).join(' ')}`;
  return s;
};

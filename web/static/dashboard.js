// Agent dashboard: live calls over a websocket, details and agent-started
// verification over the JSON API. An ES module with no build step and no
// dependencies; the page's CSP allows only scripts from 'self'.

const LINGER_MS = 60_000;          // an ended call stays among the live ones this long
const FRESH_MS = 20_000;           // a row that changed stays marked "New" this long once seen
const LONG_WAIT_S = 180;           // a wait this long is highlighted
const BACKOFF_MIN = 1_000;
const BACKOFF_MAX = 30_000;
const WIDE = window.matchMedia('(min-width: 1100px)'); // details beside the list, not on top
const BASE_TITLE = document.title;
const FILTERS = ['all', 'bankid', 'verified', 'unverified', 'ended'];
const VIEW_KEY = 'agentui.view';
const SOUND_KEY = 'agentui.sound';

const $ = (id) => document.getElementById(id);
const csrf = document.querySelector('meta[name="csrf-token"]').content;

const state = {
  calls: new Map(),     // callSid -> CallView
  synced: false,        // a snapshot has arrived: later changes are news
  selected: null,       // callSid shown in the details
  timeline: [],         // events of the selected call
  filter: 'all',
  query: '',
  unseen: 0,            // alerts the agent has not looked at (the title's count)
  fresh: new Map(),     // callSid -> time its "New" mark ends (Infinity until seen)
  focused: document.hasFocus(),
  sound: false,
  regroupAt: Infinity,  // when a lingering ended call moves to "Recent calls"
};

const conn = { ws: null, attempt: 0, retryAt: 0, retryTimer: 0, countdownTimer: 0 };

// ---- words ----

// APPROVER is what callers approve with at this service's broker: "BankID",
// "Auth0 Guardian", "Mosaic" or "the identity app".
const APPROVER = document.body.dataset.approver || 'BankID';
const IS_BANKID = APPROVER === 'BankID';

const STATES = {
  ringing: 'Ringing',
  gathering: 'Entering number',
  starting: `Starting ${APPROVER}`,
  awaiting_bankid: `Waiting for ${APPROVER}`,
  word_pair: 'Choosing word pair',
  verified: 'Verified',
  declined: 'Declined',
  expired: 'Expired',
  unknown_user: `Not known to ${APPROVER}`,
  failed: 'Verification failed',
  unverified: 'Unverified',
  ended: 'Ended',
};

const REASONS = {
  declined: `Declined in ${APPROVER}`,
  expired: 'No answer in time',
  unknown_user: IS_BANKID ? 'No BankID for that number' : `Not known to ${APPROVER}`,
  broker_unreachable: `${APPROVER} could not be reached`,
  failed: 'Verification failed',
  rate_limited: IS_BANKID ? 'Too many BankID requests recently' : 'Too many verification requests recently',
  invalid_number: 'No valid number entered',
  withheld: 'Caller id withheld',
  hung_up: 'Hung up',
};

const humanize = (s) => String(s || 'unknown').replace(/_/g, ' ');
const capitalize = (s) => s.charAt(0).toUpperCase() + s.slice(1);
// lowerFirst lowers a sentence's first word for use mid-sentence, but not a
// name such as "BankID".
const lowerFirst = (s) => (/^[A-Z][a-z]+(\s|$)/.test(s) ? s.charAt(0).toLowerCase() + s.slice(1) : s);

const stateLabel = (s) => STATES[s] || capitalize(humanize(s));

// reasonText says in plain words why the caller is not verified, or ''.
const reasonText = (c) => {
  if (!c.reason) return '';
  if (c.reason === 'declined' && c.verification?.method === 'Norwegian BankID') {
    return 'Declined in BankID or picked the wrong word pair';
  }
  return REASONS[c.reason] || capitalize(humanize(c.reason));
};

// shortCaller is "+46 … 67" for "+46 70 *** ** 67": what a screen reader
// can say without reading out the masking stars.
const shortCaller = (caller) => {
  const parts = String(caller || '').trim().split(/\s+/);
  if (parts.length < 3 || !parts[0].startsWith('+')) return callerText(caller);
  return `${parts[0]} … ${parts.at(-1)}`;
};

// callerText is the masked caller id, or words for a missing one.
const callerText = (caller) => {
  if (!caller) return 'an unknown number';
  return caller === 'withheld' ? 'a withheld number' : caller;
};

// ---- time ----

const ms = (iso) => (iso ? Date.parse(iso) : NaN);
const pad = (n) => String(n).padStart(2, '0');
const seconds = (from, to) => Math.max(0, Math.floor((to - from) / 1000));

// clock is "m:ss", or "h:mm:ss" from an hour.
const clock = (s) => {
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h ? `${h}:${pad(m)}:${pad(s % 60)}` : `${m}:${pad(s % 60)}`;
};

// spoken is a duration to the minute, for labels that must not change every second.
const spoken = (s) => (s < 60 ? 'under a minute' : `${Math.floor(s / 60)} min`);

const timeOfDay = (iso, withSeconds) => new Date(iso).toLocaleTimeString([], withSeconds
  ? { hour: '2-digit', minute: '2-digit', second: '2-digit' }
  : { hour: '2-digit', minute: '2-digit' });

// ---- what a call is ----

const inFlight = (v) => Boolean(v) && (v.status === 'starting' || v.status === 'pending');
const isEnded = (c) => Boolean(c.endedAt) || c.state === 'ended';
const withAgents = (c) => Boolean(c.outcome) && !isEnded(c);
const lingering = (c, now) => isEnded(c) && (!c.endedAt || now - ms(c.endedAt) < LINGER_MS);
const BANKID = new Set(['starting', 'awaiting_bankid', 'word_pair']);
const NOT_VERIFIED = new Set(['declined', 'expired', 'unknown_user', 'failed', 'unverified']);

// displayState is the call's state, except that a verification in flight
// (an agent may start one while the caller is still in the menu) wins
// over the menu states.
const displayState = (c) => {
  const v = c.verification;
  if (inFlight(v) && ['ringing', 'gathering', 'unverified'].includes(c.state)) {
    if (v.status === 'starting') return 'starting';
    return v.country === 'NO' ? 'word_pair' : 'awaiting_bankid';
  }
  return c.state;
};

// category is what the filter calls the call: bankid, verified, unverified,
// ended, or menu (only under "All").
const category = (c) => {
  if (isEnded(c)) return 'ended';
  const s = displayState(c);
  if (BANKID.has(s)) return 'bankid';
  if (s === 'verified') return 'verified';
  if (NOT_VERIFIED.has(s) || c.outcome === 'unverified') return 'unverified';
  return 'menu';
};

// group is where the call is listed: waiting (for an agent), ivr, ended
// (in the last minute) or recent.
const group = (c, now) => {
  if (isEnded(c)) return lingering(c, now) ? 'ended' : 'recent';
  return withAgents(c) ? 'waiting' : 'ivr';
};

// Time in the phone menu runs from the call's start to the hand-off; the
// wait for an agent from the hand-off to the end.
const ivrSeconds = (c, now) => seconds(ms(c.since), ms(c.handedOffAt || c.endedAt) || now);
const waitSeconds = (c, now) => (c.handedOffAt ? seconds(ms(c.handedOffAt), ms(c.endedAt) || now) : null);

// digitRuns are the digits a masked string shows, grouped where the mask
// hides some: "+46 70 *** ** 67" gives ["4670", "67"].
const digitRuns = (s) => String(s || '').replace(/[\s-]/g, '').split(/\D+/).filter(Boolean);

// matches reports whether the call fits the search: digits against the
// visible digits of the caller id and the masked national ID, anything else
// against the verified name.
const matches = (c, query) => {
  const q = query.trim();
  if (!q) return true;
  const digits = q.replace(/[\s-]/g, '');
  if (/^\+?\d+$/.test(digits)) {
    const d = digits.replace('+', '');
    return [...digitRuns(c.caller), ...digitRuns(c.verification?.maskedId)].some((run) => run.includes(d));
  }
  return (c.verification?.name || '').toLowerCase().includes(q.toLowerCase());
};

// ORDER sorts each group newest first: the latest to reach the queue, to
// call, or to end.
const byNewest = (key) => (a, b) => (ms(b[key]) || 0) - (ms(a[key]) || 0) || a.callSid.localeCompare(b.callSid);
const ORDER = {
  waiting: byNewest('handedOffAt'),
  ivr: byNewest('since'),
  ended: byNewest('endedAt'),
  recent: byNewest('endedAt'),
};

// ---- DOM helpers ----

const el = (tag, attrs = {}, children = []) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === 'text') e.textContent = v;
    else if (k === 'class') e.className = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  e.append(...children.filter((c) => c != null && c !== ''));
  return e;
};

const timeEl = (iso, withSeconds = false) => el('time', {
  datetime: iso, title: new Date(iso).toLocaleString(), text: timeOfDay(iso, withSeconds),
});

// timer is a ticking duration: tick() rewrites it from data-from and data-to.
const timer = (fromISO, toISO, cls = '') => {
  const t = el('span', { class: `timer ${cls}`.trim(), 'data-from': fromISO, 'data-to': toISO || null });
  updateTimer(t, Date.now());
  return t;
};

const updateTimer = (t, now) => {
  const s = seconds(ms(t.dataset.from), ms(t.dataset.to) || now);
  t.textContent = clock(s);
  if (t.classList.contains('wait')) t.classList.toggle('long', s >= LONG_WAIT_S);
};

const badge = (c) => {
  const s = displayState(c);
  return el('span', { class: `badge badge-${s}`, text: stateLabel(s) });
};

// ---- rows ----

// rowLabel names a row for assistive technology: every row's differs.
const rowLabel = (c, now) => {
  const parts = [`Show call from ${callerText(c.caller)}`, stateLabel(displayState(c)).toLowerCase()];
  const why = reasonText(c);
  if (why) parts.push(lowerFirst(why));
  if (isEnded(c)) {
    if (c.endedAt) parts.push(`ended ${timeOfDay(c.endedAt)}`);
  } else if (c.handedOffAt) {
    parts.push(`waiting ${spoken(waitSeconds(c, now))}`);
  } else {
    parts.push(`in the phone menu ${spoken(ivrSeconds(c, now))}`);
  }
  parts.push(`since ${timeOfDay(c.since)}`);
  return parts.join(', ');
};

// identity is what an agent needs about the caller's identity.
const identity = (c, large) => {
  const v = c.verification;
  if (!v) return el('p', { class: 'muted', text: isEnded(c) ? 'Not verified' : 'No verification yet' });
  const live = inFlight(v) && !isEnded(c);
  const box = el('div', { class: 'identity' });
  if (v.wordPair && live) {
    box.append(
      el('p', { class: 'wordpair-label', text: 'Word pair — the caller picks it in BankID:' }),
      el('p', { class: large ? 'wordpair wordpair-xl' : 'wordpair', lang: 'nb', text: v.wordPair }),
    );
  }
  if (v.pending && live) box.append(el('p', { class: 'substate', text: `${APPROVER}: ${v.pending}` }));
  if (v.code && live) {
    box.append(el('p', { class: 'code-line' }, [
      'Code on the caller\'s screen: ',
      el('strong', { class: large ? 'code code-xl' : 'code', text: v.code, 'aria-label': v.code.split('').join(' ') }),
    ]));
  }
  if (v.status === 'approved') {
    box.append(el('p', { class: 'verified-name' }, [el('strong', { text: v.name || '(no name)' })]));
  }
  const meta = [v.maskedId, v.method].filter(Boolean).join(' · ');
  const when = v.status === 'approved' && v.completedAt ? [' · ', timeEl(v.completedAt)] : [];
  box.append(el('p', { class: 'meta' }, [meta, ...when]));
  if (v.initiator?.startsWith('agent:')) {
    box.append(el('p', { class: 'meta', text: `Started by ${v.initiator.slice(6)}` }));
  }
  return box;
};

const times = (c) => {
  const items = [];
  if (c.handedOffAt) {
    items.push(el('span', { class: 'time-item' }, ['Waiting ', timer(c.handedOffAt, c.endedAt, 'wait')]));
  }
  items.push(el('span', { class: 'time-item' }, ['In menu ', timer(c.since, c.handedOffAt || c.endedAt)]));
  items.push(isEnded(c) && c.endedAt
    ? el('span', { class: 'time-item' }, ['Ended ', timeEl(c.endedAt)])
    : el('span', { class: 'time-item' }, ['Since ', timeEl(c.since)]));
  return el('p', { class: 'times' }, items);
};

const row = (c, now) => {
  const sid = c.callSid;
  const isNew = (state.fresh.get(sid) || 0) > now;
  const open = el('button', {
    type: 'button', class: 'call-open', 'data-sid': sid, 'aria-label': rowLabel(c, now), text: c.caller || 'unknown',
  });
  const why = reasonText(c);
  return el('li', {
    class: `call cat-${category(c)}${sid === state.selected ? ' selected' : ''}${isNew ? ' fresh' : ''}`,
    'data-sid': sid, 'aria-current': sid === state.selected ? 'true' : null,
  }, [
    el('div', { class: 'call-who' }, [
      el('p', { class: 'caller' }, [open, isNew ? el('span', { class: 'new-tag', text: 'New' }) : null]),
      el('p', { class: 'status' }, [badge(c), why ? el('span', { class: 'reason', text: why }) : null]),
    ]),
    times(c),
    el('div', { class: 'call-id' }, [identity(c, false)]),
  ]);
};

// ---- the lists ----

const visible = (c) => matches(c, state.query) && (state.filter === 'all' || category(c) === state.filter);

const render = () => {
  const now = Date.now();
  const focusedSid = document.activeElement?.closest?.('.call-open')?.dataset.sid;
  const all = [...state.calls.values()];
  const searched = all.filter((c) => matches(c, state.query));
  renderCounts(searched);
  const groups = { waiting: [], ivr: [], ended: [], recent: [] };
  for (const c of all) if (visible(c)) groups[group(c, now)].push(c);
  for (const [name, list] of Object.entries(groups)) list.sort(ORDER[name]);
  for (const name of ['waiting', 'ivr', 'ended']) fillGroup(name, groups[name], now);
  fillRecent(groups.recent, now);
  const live = all.filter((c) => !isEnded(c)).length;
  $('live-count').textContent = live ? `(${live})` : '';
  renderEmpty(all, groups);
  state.regroupAt = Math.min(Infinity, ...all.filter((c) => lingering(c, now) && c.endedAt)
    .map((c) => ms(c.endedAt) + LINGER_MS));
  for (const sid of rows.keys()) if (!state.calls.has(sid)) rows.delete(sid);
  if (focusedSid) document.querySelector(`.call-open[data-sid="${CSS.escape(focusedSid)}"]`)?.focus();
  renderDetails();
};

const renderCounts = (calls) => {
  const n = { all: calls.length, bankid: 0, verified: 0, unverified: 0, ended: 0, menu: 0 };
  for (const c of calls) n[category(c)] += 1;
  for (const span of document.querySelectorAll('[data-count]')) span.textContent = `(${n[span.dataset.count]})`;
};

// Rows are kept per call and rebuilt only when the call changed, so that a
// click or the focus is not lost to a re-render of an unchanged row.
const rows = new Map(); // callSid -> { key, li }

const rowFor = (c, now) => {
  const key = JSON.stringify([c, c.callSid === state.selected, (state.fresh.get(c.callSid) || 0) > now]);
  const kept = rows.get(c.callSid);
  if (kept?.key === key) return kept.li;
  const li = row(c, now);
  if (!kept) {
    rows.set(c.callSid, { key, li });
    return li;
  }
  kept.key = key;
  kept.li.className = li.className;
  if (li.hasAttribute('aria-current')) kept.li.setAttribute('aria-current', 'true');
  else kept.li.removeAttribute('aria-current');
  kept.li.replaceChildren(...li.childNodes);
  return kept.li;
};

// fillList puts items in list, moving nothing that is already in place.
const fillList = (list, items) => {
  const same = list.children.length === items.length && items.every((li, i) => list.children[i] === li);
  if (!same) list.replaceChildren(...items);
};

const fillGroup = (name, list, now) => {
  fillList($(`${name}-list`), list.map((c) => rowFor(c, now)));
  const section = $(`group-${name}`);
  section.hidden = list.length === 0;
  section.querySelector('h3 .count').textContent = `(${list.length})`;
};

const fillRecent = (list, now) => {
  $('recent').hidden = !['all', 'ended'].includes(state.filter);
  fillList($('recent-list'), list.map((c) => rowFor(c, now)));
  $('recent-list').hidden = list.length === 0;
  $('recent-empty').hidden = list.length !== 0;
  $('recent-count').textContent = list.length ? `(${list.length})` : '';
};

const renderEmpty = (all, groups) => {
  const shown = groups.waiting.length + groups.ivr.length + groups.ended.length;
  const empty = $('live-empty');
  empty.hidden = shown !== 0;
  if (shown) return;
  const anyLive = all.some((c) => group(c, Date.now()) !== 'recent');
  const what = state.filter === 'all' ? '' : ` among “${filterName(state.filter)}”`;
  const q = state.query.trim() ? ` for “${state.query.trim()}”` : '';
  $('live-empty-text').textContent = anyLive ? `No live calls${q}${what}.` : 'No calls right now.';
  $('show-all').hidden = !anyLive;
};

const filterName = (f) => document.querySelector(`input[name="filter"][value="${f}"] + span`)
  ?.firstChild?.textContent.trim() || f;

// ---- filter and search, kept in the URL hash and in localStorage ----

const storage = {
  get(key) {
    try { return window.localStorage.getItem(key); } catch { return null; }
  },
  set(key, value) {
    try { window.localStorage.setItem(key, value); } catch { /* private mode: not kept */ }
  },
};

const readView = () => {
  const hash = new URLSearchParams(location.hash.slice(1));
  let saved = {};
  try { saved = JSON.parse(storage.get(VIEW_KEY) || '{}'); } catch { /* ignore a bad entry */ }
  const filter = hash.get('filter') ?? saved.filter;
  state.filter = FILTERS.includes(filter) ? filter : 'all';
  state.query = (hash.get('q') ?? saved.q ?? '').slice(0, 40);
  document.querySelector(`input[name="filter"][value="${state.filter}"]`).checked = true;
  $('search').value = state.query;
};

const saveView = () => {
  const p = new URLSearchParams();
  if (state.filter !== 'all') p.set('filter', state.filter);
  if (state.query) p.set('q', state.query);
  const hash = p.toString();
  history.replaceState(null, '', hash ? `#${hash}` : location.pathname + location.search);
  storage.set(VIEW_KEY, JSON.stringify({ filter: state.filter, q: state.query }));
};

const onViewChange = () => {
  const filter = document.querySelector('input[name="filter"]:checked')?.value || 'all';
  const query = $('search').value;
  if (filter === state.filter && query === state.query) return;
  state.filter = filter;
  state.query = query;
  saveView();
  render();
  const n = document.querySelectorAll('.group .call').length;
  $('match-status').textContent = `${n} live ${n === 1 ? 'call' : 'calls'} shown`;
};

const showAll = () => {
  $('search').value = '';
  document.querySelector('input[name="filter"][value="all"]').checked = true;
  onViewChange();
  $('search').focus();
};

// ---- alerts: title count, sound, screen-reader announcement ----

const looking = () => document.visibilityState === 'visible' && state.focused;

// alertsFor returns what changed from prev to c that an agent must notice:
// a new call, a verification that ended, an unverified caller in the queue.
const alertsFor = (prev, c) => {
  const sid = c.callSid;
  const out = [];
  if (!prev && !isEnded(c)) out.push({ sid, kind: 'new', text: `New call from ${callerText(c.caller)}` });
  if (!prev) return out;
  const who = shortCaller(c.caller);
  const why = reasonText(c) || REASONS[c.verification?.status] || '';
  const queued = c.outcome === 'unverified' && prev.outcome !== 'unverified' && !isEnded(c);
  if (queued) {
    out.push({ sid, kind: 'queue', text: `Unverified caller ${who} is waiting${why ? `: ${lowerFirst(why)}` : ''}` });
  } else if (verificationEnded(prev, c)) {
    const v = c.verification;
    out.push(v.status === 'approved'
      ? { sid, kind: 'verified', text: `Caller ${who} verified as ${v.name || 'an unnamed person'}` }
      : { sid, kind: 'failed', text: `${APPROVER} ended for caller ${who}: ${lowerFirst(why || stateLabel(v.status))}` });
  }
  return out;
};

const verificationEnded = (prev, c) => {
  const v = c.verification;
  if (!v || inFlight(v) || v.status === 'cancelled') return false;
  const pv = prev.verification;
  return !pv || pv.id !== v.id || inFlight(pv);
};

const notify = (alerts) => {
  if (!alerts.length) return;
  const now = Date.now();
  const away = !looking();
  for (const a of alerts) state.fresh.set(a.sid, away ? Infinity : now + FRESH_MS);
  if (alerts.length <= 3) alerts.forEach((a) => announce(a.text));
  else announce(summary(alerts)); // a burst (a resync) in one breath
  if (away) state.unseen += alerts.length;
  renderUnseen();
  beep(alerts.some((a) => a.kind === 'queue'));
};

const summary = (alerts) => {
  const n = (kind) => alerts.filter((a) => a.kind === kind).length;
  const parts = [
    [n('new'), 'new call', 'new calls'],
    [n('queue'), 'unverified caller waiting', 'unverified callers waiting'],
    [n('verified'), 'caller verified', 'callers verified'],
    [n('failed'), 'verification failed', 'verifications failed'],
  ].filter(([k]) => k > 0).map(([k, one, many]) => `${k} ${k === 1 ? one : many}`);
  return `${alerts.length} changes: ${parts.join(', ')}`;
};

const announce = (text) => {
  const region = $('announcer');
  region.append(el('p', { text }));
  while (region.childElementCount > 5) region.firstElementChild.remove();
};

const renderUnseen = () => {
  const n = state.unseen;
  document.title = n ? `(${n}) ${BASE_TITLE}` : BASE_TITLE;
  $('unseen').hidden = n === 0;
  $('unseen-text').textContent = `${n} new ${n === 1 ? 'alert' : 'alerts'} since you last looked.`;
};

// acknowledge clears the count; rows that changed stay marked a little longer
// so that the agent can spot them.
const acknowledge = () => {
  if (!state.unseen && ![...state.fresh.values()].includes(Infinity)) return;
  const until = Date.now() + FRESH_MS;
  for (const [sid, t] of state.fresh) if (t === Infinity) state.fresh.set(sid, until);
  state.unseen = 0;
  renderUnseen();
  render();
};

let audio = null;
let lastBeep = 0;

// unlockAudio makes (or wakes) the audio context; browsers allow that only
// once the agent has clicked or typed on the page.
const unlockAudio = () => {
  try {
    audio ??= new AudioContext();
    if (audio.state === 'suspended') audio.resume().catch(() => {});
    return true;
  } catch {
    return false; // no WebAudio: the title and the announcement remain
  }
};

// beep plays a short tone (two lower ones when urgent) with WebAudio, if the
// agent turned sound on.
const beep = (urgent) => {
  if (!state.sound || Date.now() - lastBeep < 1000) return;
  lastBeep = Date.now();
  if (!unlockAudio()) return;
  const tones = urgent ? [660, 494] : [880];
  tones.forEach((freq, i) => {
    const t = audio.currentTime + i * 0.22;
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.frequency.value = freq;
    gain.gain.setValueAtTime(0.0001, t);
    gain.gain.exponentialRampToValueAtTime(0.25, t + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, t + 0.18);
    osc.connect(gain).connect(audio.destination);
    osc.start(t);
    osc.stop(t + 0.2);
  });
};

const setSound = (on) => {
  state.sound = on;
  $('sound').setAttribute('aria-pressed', String(on));
  $('sound').title = on ? 'Sound alerts are on' : 'Sound alerts are off';
  storage.set(SOUND_KEY, on ? 'on' : 'off');
};

const toggleSound = () => {
  setSound(!state.sound);
  lastBeep = 0;
  beep(false); // a sample, and it unlocks audio while the click counts as a gesture
};

// ---- details ----

const details = $('details');

const select = (sid) => {
  state.selected = sid;
  state.timeline = [];
  state.fresh.delete(sid);
  $('verify-error').hidden = true;
  $('verify-ok').hidden = true;
  $('verify-number').value = '';
  $('verify-number').removeAttribute('aria-invalid');
  $('timeline').replaceChildren();
  openDialog();
  render();
  $('details-heading').focus();
  loadTimeline(sid);
};

// openDialog shows the details beside the list on wide screens and on top
// of it (modal: focus stays inside, Escape closes) on narrow ones.
const openDialog = () => {
  if (details.open && details.matches(':modal') !== !WIDE.matches) details.close();
  if (details.open) return;
  if (WIDE.matches) details.show();
  else details.showModal();
};

const closeDetails = () => {
  const sid = state.selected;
  if (!sid) return;
  state.selected = null;
  if (details.open) details.close();
  render();
  const b = document.querySelector(`.call-open[data-sid="${CSS.escape(sid)}"]`);
  (b || $('live-heading')).focus();
};

const renderDetails = () => {
  if (!state.selected) return;
  const c = state.calls.get(state.selected);
  if (!c) {
    $('details-summary').replaceChildren(el('p', { class: 'muted', text: 'This call is no longer listed.' }));
    $('verify-form').hidden = true;
    return;
  }
  $('details-heading').textContent = `Call from ${c.caller || 'unknown'}`;
  $('details-summary').replaceChildren(facts(c), identity(c, true));
  const busy = inFlight(c.verification);
  // Agents verify callers they are talking to: a call reaches them with
  // an outcome (verified or unverified); before that it is in the menu.
  const inMenu = !c.outcome && !isEnded(c);
  $('verify-form').hidden = isEnded(c) || c.state === 'verified' || inMenu;
  if (inMenu) {
    $('details-summary').append(el('p', {
      class: 'muted', text: `The caller is still in the phone menu. You can start ${APPROVER} for them once they reach you.`,
    }));
  }
  $('verify-submit').disabled = busy;
  $('verify-submit').textContent = busy ? `${APPROVER} in progress…` : `Start ${APPROVER}`;
};

const facts = (c) => {
  const why = reasonText(c);
  const pair = (term, ...dd) => [el('dt', { text: term }), el('dd', {}, dd)];
  return el('dl', { class: 'facts' }, [
    ...pair('State', badge(c)),
    ...(why ? pair(isEnded(c) ? 'Outcome' : 'Why unverified', el('span', { class: 'reason', text: why })) : []),
    ...(c.handedOffAt ? pair('Waiting', timer(c.handedOffAt, c.endedAt, 'wait')) : []),
    ...pair('In menu', timer(c.since, c.handedOffAt || c.endedAt)),
    ...pair('Called', timeEl(c.since, true)),
    ...(c.endedAt ? pair('Ended', timeEl(c.endedAt, true)) : []),
    ...(c.language ? pair('Language', c.language) : []),
  ]);
};

const loadTimeline = async (sid) => {
  $('timeline-status').textContent = 'Loading timeline…';
  try {
    const r = await fetch(`/agent/api/calls/${encodeURIComponent(sid)}/timeline`, { headers: { Accept: 'application/json' } });
    if (r.status === 401) {
      location.href = '/agent/login';
      return;
    }
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    const body = await r.json();
    if (state.selected !== sid) return;
    addEvents(body.events);
    $('timeline-status').textContent = '';
    renderTimeline();
  } catch (err) {
    if (state.selected === sid) $('timeline-status').textContent = `Could not load the timeline (${err.message}).`;
  }
};

const addEvents = (events) => {
  const seen = new Set(state.timeline.map((e) => e.seq));
  state.timeline.push(...events.filter((e) => !seen.has(e.seq)));
  state.timeline.sort((a, b) => a.seq - b.seq);
};

const renderTimeline = () => {
  $('timeline').replaceChildren(...state.timeline.map((e) => el('li', {}, [
    timeEl(e.at, true), ' ',
    el('span', { class: 'kind', text: humanize(e.kind) }), ' ',
    e.detail || '',
    e.actor ? el('span', { class: 'actor', text: ` — ${e.actor}` }) : null,
  ])));
  if (!state.timeline.length) $('timeline-status').textContent = 'No events yet.';
};

// ---- agent-started verification ----

const onVerify = async (ev) => {
  ev.preventDefault();
  const sid = state.selected;
  if (!sid) return;
  const input = $('verify-number');
  const ok = $('verify-ok');
  $('verify-error').hidden = true;
  ok.hidden = true;
  input.removeAttribute('aria-invalid');
  const value = input.value.trim();
  const kind = verifyKind();
  if (kind === 'national_id' && !/^[0-9 \-+]{10,16}$/.test(value)) {
    verifyError('Enter 12 (or 10) digits for a Swedish personnummer, or 11 for a Norwegian fødselsnummer.');
    return;
  }
  if (!value) {
    verifyError(`Enter the caller's ${$('verify-label').textContent.toLowerCase()}.`);
    return;
  }
  $('verify-submit').disabled = true;
  try {
    const r = await fetch(`/agent/api/calls/${encodeURIComponent(sid)}/verify`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf, Accept: 'application/json' },
      body: JSON.stringify({ kind, value }),
    });
    const body = await r.json().catch(() => ({}));
    $('verify-submit').disabled = false;
    if (r.status === 401) {
      location.href = '/agent/login';
      return;
    }
    if (!r.ok) {
      verifyError(body.error || `Could not start ${APPROVER} (HTTP ${r.status}).`);
      return;
    }
    input.value = '';
    ok.textContent = IS_BANKID
      ? `BankID started for ${body.maskedId || 'the caller'}. Ask the caller to open the BankID app.`
      : `${APPROVER} request sent for ${body.maskedId || 'the caller'}. Ask the caller to approve it on their phone${body.code ? `; it shows the code ${body.code}` : ''}.`;
    ok.hidden = false;
    renderDetails();
  } catch {
    $('verify-submit').disabled = false;
    verifyError('Network error: could not reach the server. Try again.');
  }
};

// verifyKind is the identifier the agent chose to verify with.
const verifyKind = () => document.querySelector('#verify-form input[name="kind"]:checked, #verify-form input[type="hidden"][name="kind"]')?.value || 'national_id';

// onKind relabels the value field for the kind just picked.
const onKind = (ev) => {
  const k = ev.target.dataset;
  const input = $('verify-number');
  $('verify-label').textContent = k.label;
  input.placeholder = k.placeholder;
  input.inputMode = k.inputmode;
  input.maxLength = Number(k.maxlength);
  input.value = '';
  input.removeAttribute('aria-invalid');
  $('verify-error').hidden = true;
};

const verifyError = (msg) => {
  const input = $('verify-number');
  $('verify-error').textContent = msg;
  $('verify-error').hidden = false;
  input.setAttribute('aria-invalid', 'true');
  input.focus();
};

// ---- websocket ----

const setConn = (kind, text) => {
  $('conn').className = `conn conn-${kind}`;
  $('conn-text').textContent = text;
  document.body.classList.toggle('offline', kind === 'down');
};

const onSnapshot = (msg) => {
  const next = new Map([...msg.calls, ...msg.recent].map((c) => [c.callSid, c]));
  // The first snapshot is the starting point; a later one (a reconnect, a
  // resync) is news only where it differs from what was shown.
  const alerts = state.synced ? [...next.values()].flatMap((c) => alertsFor(state.calls.get(c.callSid), c)) : [];
  state.calls = next;
  state.synced = true;
  if (state.selected) loadTimeline(state.selected); // what the gap may have missed
  notify(alerts);
  render();
};

const onEvent = (msg) => {
  const c = msg.call;
  let alerts = [];
  if (c) {
    alerts = alertsFor(state.calls.get(c.callSid), c);
    state.calls.set(c.callSid, c);
  }
  const e = msg.event;
  if (state.selected && e?.callSid === state.selected && !state.timeline.some((t) => t.seq === e.seq)) {
    addEvents([e]);
    renderTimeline();
  }
  notify(alerts);
  render();
};

// The connection status (a live region) says only Connecting, Live or
// Disconnected; the countdown and each attempt show beside it, unannounced.
const connect = () => {
  clearTimeout(conn.retryTimer);
  clearTimeout(conn.countdownTimer);
  if (!conn.attempt) setConn('connecting', 'Connecting…');
  else showRetry('Reconnecting…');
  const sock = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/agent/ws`);
  conn.ws = sock;
  sock.onopen = () => {
    conn.attempt = 0;
    setConn('live', 'Live');
    hideRetry();
  };
  sock.onmessage = (m) => {
    let msg;
    try { msg = JSON.parse(m.data); } catch { return; }
    if (msg.type === 'snapshot') onSnapshot(msg);
    else if (msg.type === 'event') onEvent(msg);
  };
  sock.onclose = (e) => {
    if (conn.ws !== sock) return;
    conn.ws = null;
    if (e.code === 4001) {
      location.href = '/agent/login';
      return;
    }
    scheduleRetry();
  };
};

// scheduleRetry waits longer after each failure (with jitter) and counts
// the seconds down beside a "Retry now" button.
const scheduleRetry = () => {
  const max = Math.min(BACKOFF_MAX, BACKOFF_MIN * 2 ** conn.attempt);
  const delay = Math.round(max / 2 + (Math.random() * max) / 2);
  conn.attempt += 1;
  conn.retryAt = Date.now() + delay;
  if (!$('conn').classList.contains('conn-down')) setConn('down', 'Disconnected');
  $('conn').dataset.attempt = String(conn.attempt);
  conn.retryTimer = setTimeout(retryNow, delay);
  countdown();
};

const countdown = () => {
  const left = conn.retryAt - Date.now();
  $('retry-secs').textContent = String(Math.max(0, Math.ceil(left / 1000)));
  showRetry();
  if (left > 0) conn.countdownTimer = setTimeout(countdown, (left % 1000) + 1);
};

// showRetry shows the countdown, or text instead of it, and "Retry now".
const showRetry = (text) => {
  $('retry-wait').hidden = Boolean(text);
  $('retry-trying').hidden = !text;
  if (text) $('retry-trying').textContent = text;
  $('conn-retry').hidden = false;
  $('retry-now').hidden = false;
};

const hideRetry = () => {
  const hadFocus = document.activeElement === $('retry-now');
  $('conn-retry').hidden = true;
  $('retry-now').hidden = true;
  if (hadFocus) $('live-heading').focus();
};

// retryNow asks the API whether the session is still valid, since a refused
// upgrade looks like any dropped connection, then reconnects.
const retryNow = async () => {
  if (conn.ws) return; // an attempt is under way
  clearTimeout(conn.retryTimer);
  clearTimeout(conn.countdownTimer);
  showRetry('Reconnecting…');
  try {
    const r = await fetch('/agent/api/calls', { headers: { Accept: 'application/json' } });
    if (r.status === 401) {
      location.href = '/agent/login';
      return;
    }
  } catch { /* the websocket attempt fails too and schedules the next one */ }
  if (!conn.ws) connect();
};

// ---- every second: timers, lingering calls, fading marks ----

const tick = () => {
  const now = Date.now();
  if (now >= state.regroupAt || [...state.fresh.values()].some((t) => t <= now)) {
    for (const [sid, t] of state.fresh) if (t <= now) state.fresh.delete(sid);
    render();
    return;
  }
  for (const t of document.querySelectorAll('.timer')) updateTimer(t, now);
  for (const li of document.querySelectorAll('.call')) {
    const c = state.calls.get(li.dataset.sid);
    if (!c || isEnded(c)) continue;
    const b = li.querySelector('.call-open');
    const label = rowLabel(c, now);
    if (b.getAttribute('aria-label') !== label) b.setAttribute('aria-label', label);
  }
};

// ---- wiring ----

// onShortcut focuses the search on "/", as in many web apps, unless the
// agent is typing somewhere or a modal is open.
const onShortcut = (e) => {
  if (e.key !== '/' || e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.target.closest('input, textarea, select, [contenteditable]') || details.matches(':modal')) return;
  e.preventDefault();
  $('search').focus();
  $('search').select();
};

const onClick = (e) => {
  const li = e.target.closest('.call[data-sid]');
  if (li && (e.target.closest('.call-open') || !e.target.closest('a, button, input, select, textarea'))) {
    select(li.dataset.sid);
  }
};

const start = () => {
  readView();
  setSound(storage.get(SOUND_KEY) === 'on');
  saveView();
  document.addEventListener('click', onClick);
  $('details-close').addEventListener('click', closeDetails);
  details.addEventListener('cancel', (e) => {
    e.preventDefault();
    closeDetails();
  });
  // A click on the backdrop of the modal details closes them.
  details.addEventListener('click', (e) => {
    if (e.target === details && details.matches(':modal')) closeDetails();
  });
  document.addEventListener('keydown', onShortcut);
  const wake = () => {
    if (state.sound) unlockAudio();
  };
  document.addEventListener('pointerdown', wake, { once: true });
  document.addEventListener('keydown', wake, { once: true });
  document.addEventListener('keydown', (e) => {
    if (e.key !== 'Escape' || !state.selected || e.defaultPrevented) return;
    if (e.target === $('search') && $('search').value) return; // Escape clears the search first
    e.preventDefault();
    closeDetails();
  });
  WIDE.addEventListener('change', () => {
    if (!state.selected) return;
    openDialog();
    $('details-heading').focus();
  });
  $('verify-form').addEventListener('submit', onVerify);
  for (const r of document.querySelectorAll('#verify-form input[name="kind"][type="radio"]')) r.addEventListener('change', onKind);
  $('find').addEventListener('submit', (e) => e.preventDefault());
  $('find').addEventListener('change', onViewChange);
  $('search').addEventListener('input', onViewChange);
  window.addEventListener('hashchange', () => {
    if (!location.hash.includes('=') && location.hash.length > 1) return; // an in-page link
    readView();
    render();
  });
  $('sound').addEventListener('click', toggleSound);
  $('unseen-ack').addEventListener('click', acknowledge);
  $('retry-now').addEventListener('click', retryNow);
  $('show-all').addEventListener('click', showAll);
  window.addEventListener('focus', () => {
    state.focused = true;
    acknowledge();
  });
  window.addEventListener('blur', () => { state.focused = false; });
  document.addEventListener('visibilitychange', () => {
    if (looking()) acknowledge();
  });
  window.addEventListener('online', () => {
    if (!conn.ws) {
      conn.attempt = 0;
      retryNow();
    }
  });
  setInterval(tick, 1000);
  render();
  connect();
};

start();

// Agent dashboard: live calls over a websocket, details and agent-started
// verification over the JSON API. Plain JS, no build step, no dependencies.
(function () {
  'use strict';

  var LINGER_MS = 60000;        // an ended call stays in the live list this long
  var BACKOFF_MIN = 1000, BACKOFF_MAX = 30000;

  var csrf = document.querySelector('meta[name="csrf-token"]').content;
  var calls = new Map();        // callSid -> CallView
  var selected = null;          // callSid shown in the details panel
  var timeline = [];            // events of the selected call
  var ws = null, attempt = 0, retryTimer = null;

  var $ = function (id) { return document.getElementById(id); };

  var STATES = {
    ringing: 'Ringing',
    gathering: 'Entering number',
    starting: 'Starting BankID',
    awaiting_bankid: 'Awaiting BankID',
    word_pair: 'Choosing word pair',
    verified: 'Verified',
    declined: 'Declined',
    expired: 'Expired',
    unknown_user: 'Not known to BankID',
    failed: 'Verification failed',
    unverified: 'Unverified',
    ended: 'Ended'
  };
  // Swedish BankID hint codes, as the broker reports them while pending.
  var PENDING = {
    outstandingTransaction: 'waiting for the caller to open BankID',
    noClient: 'BankID app not opened yet',
    started: 'BankID app started',
    userSign: 'caller is confirming in BankID',
    userMrtd: 'caller is scanning their passport',
    userCallConfirm: 'caller is confirming the call'
  };

  function stateLabel(s) { return STATES[s] || String(s || 'unknown').replace(/_/g, ' '); }
  function pendingLabel(p) { return PENDING[p] || p; }

  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        if (k === 'text') e.textContent = attrs[k];
        else if (k === 'class') e.className = attrs[k];
        else e.setAttribute(k, attrs[k]);
      });
    }
    (children || []).forEach(function (c) {
      if (c != null) e.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
    });
    return e;
  }

  function ago(iso) {
    var s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    if (s < 60) return s + ' s ago';
    var m = Math.floor(s / 60);
    if (m < 60) return m + ' min ago';
    var h = Math.floor(m / 60);
    return h + ' h ' + (m % 60) + ' min ago';
  }
  function clock(iso) {
    return new Date(iso).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  }
  function timeEl(iso, relative) {
    return el('time', { datetime: iso, title: new Date(iso).toLocaleString(), text: relative ? ago(iso) : clock(iso) });
  }

  function inFlight(v) { return !!v && (v.status === 'starting' || v.status === 'pending'); }

  // displayState is the call's state, except that a verification in flight
  // (an agent may start one while the caller is still in the menu) wins
  // over the menu states.
  function displayState(c) {
    var v = c.verification;
    if (inFlight(v) && (c.state === 'ringing' || c.state === 'gathering' || c.state === 'unverified')) {
      if (v.status === 'starting') return 'starting';
      return v.country === 'NO' ? 'word_pair' : 'awaiting_bankid';
    }
    return c.state;
  }

  function isEnded(c) { return !!c.endedAt || c.state === 'ended'; }
  function isLive(c) { return !c.endedAt || Date.now() - Date.parse(c.endedAt) < LINGER_MS; }

  // identity renders what an agent needs about the caller's identity.
  function identity(c, large) {
    var v = c.verification;
    if (!v) return el('span', { class: 'muted', text: '—' });
    var box = el('div', { class: 'identity' });
    if (v.wordPair && inFlight(v) && !isEnded(c)) {
      box.appendChild(el('p', { class: 'wordpair-label', text: 'Word pair — the caller picks it in BankID:' }));
      box.appendChild(el('p', { class: large ? 'wordpair wordpair-xl' : 'wordpair', lang: 'nb', text: v.wordPair }));
    }
    if (inFlight(v) && v.pending && v.country !== 'NO' && !isEnded(c)) {
      box.appendChild(el('p', { class: 'substate', text: 'BankID: ' + pendingLabel(v.pending) }));
    }
    if (v.status === 'approved' || c.state === 'verified') {
      box.appendChild(el('p', { class: 'verified-name' }, [el('strong', { text: v.name || '(no name)' })]));
      var when = v.completedAt ? [' · ', timeEl(v.completedAt, false)] : [];
      box.appendChild(el('p', { class: 'meta' }, [v.maskedId + ' · ' + v.method].concat(when)));
    } else {
      box.appendChild(el('p', { class: 'meta', text: [v.maskedId, v.method].filter(Boolean).join(' · ') }));
    }
    if (v.initiator && v.initiator.indexOf('agent:') === 0) {
      box.appendChild(el('p', { class: 'meta', text: 'Started by ' + v.initiator.slice(6) }));
    }
    return box;
  }

  function badge(state) {
    return el('span', { class: 'badge badge-' + state, text: stateLabel(state) });
  }

  function row(c, recent) {
    var open = el('button', { type: 'button', class: 'link', 'data-sid': c.callSid,
      'aria-label': 'Show call from ' + c.caller, text: c.caller || 'unknown' });
    var tr = el('tr', { 'data-sid': c.callSid, class: c.callSid === selected ? 'selected' : '' }, [
      el('td', null, [open]),
      el('td', null, [timeEl(recent ? c.endedAt : c.since, true)]),
      el('td', null, [badge(displayState(c))]),
      el('td', null, [identity(c, false)])
    ]);
    if (c.callSid === selected) tr.setAttribute('aria-current', 'true');
    return tr;
  }

  function render() {
    var focusedSid = document.activeElement && document.activeElement.getAttribute('data-sid');
    var all = Array.from(calls.values());
    var live = all.filter(isLive).sort(function (a, b) { return Date.parse(a.since) - Date.parse(b.since); });
    var recent = all.filter(function (c) { return !isLive(c); })
      .sort(function (a, b) { return Date.parse(b.endedAt) - Date.parse(a.endedAt); });
    fill('live', live, false);
    fill('recent', recent, true);
    if (focusedSid) {
      var again = document.querySelector('button.link[data-sid="' + CSS.escape(focusedSid) + '"]');
      if (again) again.focus();
    }
    renderDetails();
  }

  function fill(id, list, recent) {
    var body = $(id + '-body');
    body.replaceChildren.apply(body, list.map(function (c) { return row(c, recent); }));
    $(id).hidden = list.length === 0;
    $(id + '-empty').hidden = list.length !== 0;
    $(id + '-count').textContent = list.length ? '(' + list.length + ')' : '';
  }

  // ---- details panel ----

  function select(sid) {
    selected = sid;
    timeline = [];
    $('verify-error').hidden = true;
    $('verify-ok').hidden = true;
    $('verify-number').value = '';
    $('details').hidden = false;
    render();
    $('details-heading').focus();
    loadTimeline(sid);
  }

  function closeDetails() {
    var sid = selected;
    selected = null;
    $('details').hidden = true;
    render();
    var b = sid && document.querySelector('button.link[data-sid="' + CSS.escape(sid) + '"]');
    if (b) b.focus();
  }

  function renderDetails() {
    if (!selected) return;
    var c = calls.get(selected);
    if (!c) {
      $('details-summary').replaceChildren(el('p', { class: 'muted', text: 'This call is no longer listed.' }));
      $('verify-form').hidden = true;
      return;
    }
    $('details-heading').textContent = 'Call from ' + c.caller;
    var dl = el('dl', { class: 'facts' }, [
      el('dt', { text: 'State' }), el('dd', null, [badge(displayState(c))]),
      el('dt', { text: 'Since' }), el('dd', null, [timeEl(c.since, false), ' (', timeEl(c.since, true), ')']),
      c.endedAt ? el('dt', { text: 'Ended' }) : null, c.endedAt ? el('dd', null, [timeEl(c.endedAt, false)]) : null,
      c.language ? el('dt', { text: 'Language' }) : null, c.language ? el('dd', { text: c.language }) : null
    ]);
    $('details-summary').replaceChildren(dl, identity(c, true));
    var busy = inFlight(c.verification);
    // Agents verify callers they are talking to: a call reaches them with
    // an outcome (verified or unverified); before that it is in the menu.
    var inMenu = !c.outcome && !isEnded(c);
    $('verify-form').hidden = isEnded(c) || c.state === 'verified' || inMenu;
    if (inMenu) {
      $('details-summary').append(el('p', { class: 'muted', text: 'The caller is still in the phone menu. You can start BankID for them once they reach you.' }));
    }
    $('verify-submit').disabled = !!busy;
    $('verify-submit').textContent = busy ? 'BankID in progress…' : 'Start BankID';
  }

  function loadTimeline(sid) {
    $('timeline-status').textContent = 'Loading timeline…';
    fetch('/agent/api/calls/' + encodeURIComponent(sid) + '/timeline', { headers: { Accept: 'application/json' } })
      .then(function (r) {
        if (r.status === 401) { location.href = '/agent/login'; throw new Error('logged out'); }
        if (!r.ok) throw new Error('HTTP ' + r.status);
        return r.json();
      })
      .then(function (body) {
        if (selected !== sid) return;
        var seen = new Set(timeline.map(function (e) { return e.seq; }));
        body.events.forEach(function (e) { if (!seen.has(e.seq)) timeline.push(e); });
        timeline.sort(function (a, b) { return a.seq - b.seq; });
        $('timeline-status').textContent = '';
        renderTimeline();
      })
      .catch(function (err) {
        if (selected === sid) $('timeline-status').textContent = 'Could not load the timeline (' + err.message + ').';
      });
  }

  function renderTimeline() {
    $('timeline').replaceChildren.apply($('timeline'), timeline.map(function (e) {
      return el('li', null, [
        timeEl(e.at, false), ' ',
        el('span', { class: 'kind', text: String(e.kind).replace(/_/g, ' ') }), ' ',
        e.detail || '',
        e.actor ? el('span', { class: 'actor', text: ' — ' + e.actor }) : null
      ]);
    }));
    if (!timeline.length) $('timeline-status').textContent = 'No events yet.';
  }

  function onVerify(ev) {
    ev.preventDefault();
    if (!selected) return;
    var sid = selected, input = $('verify-number'), err = $('verify-error'), ok = $('verify-ok');
    err.hidden = true; ok.hidden = true; input.removeAttribute('aria-invalid');
    var number = input.value.trim();
    if (!/^[0-9 \-+]{10,16}$/.test(number)) {
      return showError('Enter 12 (or 10) digits for a Swedish personnummer, or 11 for a Norwegian fødselsnummer.');
    }
    $('verify-submit').disabled = true;
    fetch('/agent/api/calls/' + encodeURIComponent(sid) + '/verify', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf, Accept: 'application/json' },
      body: JSON.stringify({ number: number })
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (body) { return { r: r, body: body }; });
    }).then(function (res) {
      $('verify-submit').disabled = false;
      if (res.r.status === 401) { location.href = '/agent/login'; return; }
      if (!res.r.ok) { showError(res.body.error || ('Could not start BankID (HTTP ' + res.r.status + ').')); return; }
      input.value = '';
      ok.textContent = 'BankID started for ' + (res.body.maskedId || 'the caller') + '. Ask the caller to open the BankID app.';
      ok.hidden = false;
      renderDetails();
    }).catch(function () {
      $('verify-submit').disabled = false;
      showError('Network error: could not reach the server. Try again.');
    });

    function showError(msg) {
      err.textContent = msg;
      err.hidden = false;
      input.setAttribute('aria-invalid', 'true');
      input.focus();
    }
  }

  // ---- websocket ----

  function setConn(state, text) {
    var p = $('conn');
    p.className = 'conn conn-' + state;
    $('conn-text').textContent = text;
    document.body.classList.toggle('offline', state === 'down');
  }

  function connect() {
    clearTimeout(retryTimer);
    setConn('connecting', attempt ? 'Reconnecting…' : 'Connecting…');
    var url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/agent/ws';
    var sock = new WebSocket(url);
    ws = sock;
    sock.onopen = function () { attempt = 0; setConn('live', 'Live'); };
    sock.onmessage = function (m) {
      var msg;
      try { msg = JSON.parse(m.data); } catch (e) { return; }
      if (msg.type === 'snapshot') {
        calls.clear();
        msg.calls.concat(msg.recent).forEach(function (c) { calls.set(c.callSid, c); });
        if (selected) loadTimeline(selected); // resync what may have been missed
        render();
      } else if (msg.type === 'event') {
        if (msg.call) calls.set(msg.call.callSid, msg.call);
        if (selected && msg.event.callSid === selected &&
            !timeline.some(function (e) { return e.seq === msg.event.seq; })) {
          timeline.push(msg.event);
          timeline.sort(function (a, b) { return a.seq - b.seq; });
          renderTimeline();
        }
        render();
      }
    };
    sock.onclose = function (e) {
      if (ws !== sock) return;
      ws = null;
      if (e.code === 4001) { location.href = '/agent/login'; return; }
      var delay = Math.min(BACKOFF_MAX, BACKOFF_MIN * Math.pow(2, attempt));
      delay = Math.round(delay / 2 + Math.random() * delay / 2); // jitter
      attempt++;
      setConn('down', 'Disconnected — retrying in ' + Math.ceil(delay / 1000) + ' s');
      retryTimer = setTimeout(checkSessionThenConnect, delay);
    };
  }

  // A refused upgrade looks like any dropped connection, so ask the API
  // whether the session is still valid before trying again.
  function checkSessionThenConnect() {
    fetch('/agent/api/calls', { headers: { Accept: 'application/json' } }).then(function (r) {
      if (r.status === 401) { location.href = '/agent/login'; return; }
      connect();
    }, connect);
  }

  document.addEventListener('click', function (e) {
    var b = e.target.closest('button.link[data-sid]');
    if (b) { select(b.getAttribute('data-sid')); return; }
    var tr = e.target.closest('tr[data-sid]');
    if (tr && !e.target.closest('a,button,input')) select(tr.getAttribute('data-sid'));
  });
  $('details-close').addEventListener('click', closeDetails);
  document.addEventListener('keydown', function (e) {
    if (e.key === 'Escape' && selected) closeDetails();
  });
  $('verify-form').addEventListener('submit', onVerify);
  window.addEventListener('online', function () { if (!ws) { attempt = 0; connect(); } });
  setInterval(render, 5000); // relative times, and ended calls moving to "recent"

  connect();
})();

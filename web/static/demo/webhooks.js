// webhooks.js — the requests Twilio makes for a call, signed as Twilio
// signs them: the voice webhook and every action or redirect after it,
// then (once the call is over) the action of an <Enqueue> or <Dial> the
// caller hung up in and the status callback.

import { twilioSignature, twilioSignatureSync } from './signature.js';
import { AppError, absolute } from './twiml.js';

const TWILIO_TIMEOUT_MS = 15000; // Twilio gives up on a webhook after 15 s

export class Webhooks {
  // config is /demo/api/config; log(kind, who, text) writes the transcript.
  constructor(config, log) {
    this.config = config;
    this.log = log;
    this.token = config.twilioAuthToken ?? '';
    this.base = `${String(config.publicURL || location.origin).replace(/\/+$/, '')}/`;
  }

  // url resolves a path of the service, as Twilio knows it (the public URL).
  url(path) {
    return absolute(path, this.base);
  }

  // params are the parameters of every request for call.
  params(call, status) {
    return [
      ['CallSid', call.sid],
      ['AccountSid', this.config.accountSid ?? ''],
      ['From', call.from],
      ['To', call.to],
      ['CallStatus', status],
      ['Direction', 'inbound'],
      ['ApiVersion', '2010-04-01'],
      ['Caller', call.from],
      ['Called', call.to],
    ];
  }

  // request makes one signed request ({url, method, extra}) for call and
  // returns the body and the absolute URL requested. It rejects with
  // signal's reason when signal aborts (the fetch is abandoned), and with
  // an AppError for what Twilio reports: a non-2xx answer, a network
  // error, no answer within 15 s.
  async request(call, req, signal) {
    const u = this.url(req.url);
    const method = String(req.method || 'POST').toUpperCase() === 'GET' ? 'GET' : 'POST';
    const params = [...this.params(call, call.requests === 0 ? 'ringing' : 'in-progress'), ...(req.extra ?? [])];
    if (method === 'GET') for (const [k, v] of params) u.searchParams.append(k, v);
    const href = u.href;
    const sig = await twilioSignature(this.token, href, method === 'GET' ? [] : params);
    signal.throwIfAborted();
    call.requests++;
    const timeout = AbortSignal.timeout(TWILIO_TIMEOUT_MS);
    const shown = u.pathname; // the query may carry anything; the path is enough here
    const init = {
      method,
      headers: { 'X-Twilio-Signature': sig },
      signal: AbortSignal.any([signal, timeout]),
      credentials: 'omit',
      cache: 'no-store',
    };
    if (method === 'POST') {
      init.headers['Content-Type'] = 'application/x-www-form-urlencoded';
      init.body = new URLSearchParams(params).toString();
    }
    const t0 = performance.now();
    let resp;
    let text;
    try {
      resp = await fetch(u.pathname + u.search, init);
      text = await resp.text();
    } catch (e) {
      signal.throwIfAborted();
      if (timeout.aborted) throw new AppError(`${method} ${shown} took longer than Twilio waits (15 s)`, '11205', href);
      throw new AppError(`${method} ${shown} failed: ${e?.message || 'network error'}`, '11200', href);
    }
    signal.throwIfAborted();
    const ms = Math.round(performance.now() - t0);
    this.log(resp.ok ? 'sys' : 'err', 'Webhook', `${method} ${shown} → ${resp.status} (${ms} ms)`);
    if (!resp.ok) throw new AppError(`${method} ${shown} answered HTTP ${resp.status}`, '11200', href);
    return { text, url: href };
  }

  // final sends what Twilio sends once call is over: the action of an
  // <Enqueue> or <Dial> the caller hung up in (its TwiML is ignored), then
  // the status callback. While the page unloads they are signed
  // synchronously and sent with keepalive, so they outlive the page.
  final(call, { unloading = false } = {}) {
    const reqs = [];
    if (call.after) {
      const secs = Math.round((call.endedAt - call.after.since) / 1000);
      reqs.push({ url: call.after.url, what: 'action after hang-up', params: [...this.params(call, 'completed'), ...call.after.extra(secs)] });
    }
    if (this.config.statusPath) {
      const secs = call.answeredAt ? Math.round((call.endedAt - call.answeredAt) / 1000) : 0;
      reqs.push({ url: this.url(this.config.statusPath).href, what: 'status callback: completed', params: [...this.params(call, 'completed'), ['CallDuration', String(secs)]] });
    }
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
        try {
          send(r, twilioSignatureSync(this.token, r.url, r.params)).catch(() => {});
        } catch {
          // the page is going away
        }
      }
      return Promise.resolve();
    }
    return (async () => {
      for (const r of reqs) {
        const path = new URL(r.url).pathname;
        try {
          const resp = await send(r, await twilioSignature(this.token, r.url, r.params));
          this.log(resp.ok ? 'sys' : 'err', 'Webhook', `POST ${path} (${r.what}) → ${resp.status}`);
        } catch {
          this.log('err', 'Webhook', `POST ${path} (${r.what}) failed`);
        }
      }
    })();
  }
}

// signature.js — X-Twilio-Signature, computed exactly as Twilio does:
// base64(HMAC-SHA1(authToken, url + name+value of every POST parameter,
// sorted by name)). https://www.twilio.com/docs/usage/webhooks/webhooks-security
//
// twilioSignature uses WebCrypto where the page has it; twilioSignatureSync
// is pure JS, for the requests sent while the page unloads (no await
// there) and for pages without crypto.subtle (plain http from a host that
// is not loopback is not a secure context).
//
// selfTest checks both against Twilio's documented example. The demo's
// browser test runs it; in the console:
//   (await import('/demo/static/signature.js')).selfTest()

const encoder = new TextEncoder();
const utf8 = (s) => encoder.encode(s);

// compareBytes orders two strings by their UTF-8 bytes: Twilio's
// "Unix-style case-sensitive" sort, in which CallSid comes before Caller.
export const compareBytes = (a, b) => {
  const x = utf8(a);
  const y = utf8(b);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) {
    if (x[i] !== y[i]) return x[i] - y[i];
  }
  return x.length - y.length;
};

// signingString is the text signed: the full URL, then every POST
// parameter ([name, value] pairs) as name+value, sorted by name. The sort
// is stable, so a repeated name keeps its order.
export const signingString = (url, params) =>
  [...params].sort((p, q) => compareBytes(p[0], q[0])).reduce((s, [name, value]) => s + name + value, url);

const base64 = (bytes) => btoa(Array.from(bytes, (b) => String.fromCharCode(b)).join(''));

const rotl = (x, n) => (x << n) | (x >>> (32 - n));

// sha1 hashes bytes (FIPS 180-4); the messages here are far below 512 MiB.
const sha1 = (msg) => {
  const words = new Uint32Array((((msg.length + 8) >> 6) + 1) * 16);
  msg.forEach((b, i) => { words[i >> 2] |= b << (24 - (i % 4) * 8); });
  words[msg.length >> 2] |= 0x80 << (24 - (msg.length % 4) * 8);
  words[words.length - 1] = msg.length * 8;
  const h = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0];
  const w = new Uint32Array(80);
  for (let off = 0; off < words.length; off += 16) {
    for (let t = 0; t < 16; t++) w[t] = words[off + t];
    for (let t = 16; t < 80; t++) w[t] = rotl(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1);
    let [a, b, c, d, e] = h;
    for (let t = 0; t < 80; t++) {
      let f;
      let k;
      if (t < 20) [f, k] = [(b & c) | (~b & d), 0x5a827999];
      else if (t < 40) [f, k] = [b ^ c ^ d, 0x6ed9eba1];
      else if (t < 60) [f, k] = [(b & c) | (b & d) | (c & d), 0x8f1bbcdc];
      else [f, k] = [b ^ c ^ d, 0xca62c1d6];
      const next = (rotl(a, 5) + f + e + k + w[t]) >>> 0;
      [e, d, c, b, a] = [d, c, rotl(b, 30) >>> 0, a, next];
    }
    [a, b, c, d, e].forEach((v, i) => { h[i] = (h[i] + v) >>> 0; });
  }
  const out = new Uint8Array(20);
  h.forEach((v, i) => new DataView(out.buffer).setUint32(i * 4, v));
  return out;
};

// hmacSHA1 is RFC 2104 over sha1 (64-byte blocks).
const hmacSHA1 = (key, msg) => {
  const k = key.length > 64 ? sha1(key) : key;
  const inner = new Uint8Array(64 + msg.length);
  const outer = new Uint8Array(64 + 20);
  for (let i = 0; i < 64; i++) {
    inner[i] = (k[i] ?? 0) ^ 0x36;
    outer[i] = (k[i] ?? 0) ^ 0x5c;
  }
  inner.set(msg, 64);
  outer.set(sha1(inner), 64);
  return sha1(outer);
};

// twilioSignatureSync signs synchronously, in pure JS.
export const twilioSignatureSync = (authToken, url, params) =>
  base64(hmacSHA1(utf8(authToken), utf8(signingString(url, params))));

// twilioSignature signs with WebCrypto, or in pure JS where it is missing.
export const twilioSignature = async (authToken, url, params) => {
  const subtle = globalThis.crypto?.subtle;
  if (!subtle) return twilioSignatureSync(authToken, url, params);
  const key = await subtle.importKey('raw', utf8(authToken), { name: 'HMAC', hash: 'SHA-1' }, false, ['sign']);
  return base64(new Uint8Array(await subtle.sign('HMAC', key, utf8(signingString(url, params)))));
};

// DOCS_EXAMPLE is the worked example of Twilio's webhook security page.
export const DOCS_EXAMPLE = Object.freeze({
  token: '12345',
  url: 'https://example.com/myapp.php?foo=1&bar=2',
  params: [['CallSid', 'CA1234567890ABCDE'], ['Caller', '+14158675310'], ['Digits', '1234'], ['From', '+14158675310'], ['To', '+18005551212']],
  want: 'L/OH5YylLD5NRKLltdqwSvS0BnU=',
});

// selfTest signs the documented example both ways, and checks that the
// two ways agree on what the example does not cover: a token longer than
// SHA-1's block (hashed first), non-ASCII text, parameters out of order.
export const selfTest = async () => {
  const { token, url, params, want } = DOCS_EXAMPLE;
  const webCrypto = await twilioSignature(token, url, params);
  const pureJS = twilioSignatureSync(token, url, params);
  const long = 'k'.repeat(80);
  const odd = [['To', '+4712345678'], ['Caller', 'Sigrid Bø'], ['CallSid', 'CA' + '0'.repeat(32)], ['Digits', '']];
  const agree = (await twilioSignature(long, url + '&q=ø', odd)) === twilioSignatureSync(long, url + '&q=ø', odd);
  return {
    ok: webCrypto === want && pureJS === want && agree,
    webCrypto,
    pureJS,
    want,
    agree,
    usedWebCrypto: Boolean(globalThis.crypto?.subtle),
  };
};

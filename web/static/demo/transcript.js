// transcript.js — the call's transcript: what the IVR said, the keys
// pressed, and (as "detail" lines, hidden with "Show Twilio details") the
// webhooks and Twilio's own moves. The list is a polite live region.

const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};

export class Transcript {
  #noted = new Set();

  // list is the <ol>; clock() is the call time to stamp lines with.
  constructor(list, clock) {
    this.list = list;
    this.clock = clock;
  }

  // log adds a line and returns it. kind: say | key | sys | err | ok.
  // Lines from "Webhook" and lines marked detail are details; a detail
  // line that repeats (a hold loop's hops: "Gather done", "POST
  // /twilio/hold") counts up on the line already there instead.
  log(kind, who, text, { lang = '', detail = false } = {}) {
    this.list.querySelector('.empty')?.remove();
    const now = this.clock();
    const isDetail = detail || who === 'Webhook';
    const key = `${kind}|${who}|${text.replace(/\(\d+ ms\)/, '')}`;
    if (isDetail) {
      const same = this.#repeated(key);
      if (same) {
        const n = Number(same.dataset.count || 1) + 1;
        same.dataset.count = String(n);
        same.querySelector('.msg').textContent = `${text}  ×${n}`;
        same.querySelector('.t').textContent = now;
        return same;
      }
    }
    const li = el('li', kind + (isDetail ? ' detail' : ''));
    if (isDetail) li.dataset.key = key;
    const w = el('span', 'who', who);
    if (lang) {
      const l = el('span', 'lang', lang);
      l.setAttribute('aria-label', `language ${lang}`);
      w.append(' ', l);
    }
    li.append(el('span', 't', now), w, el('span', 'msg', text));
    const box = this.list;
    const atEnd = box.scrollHeight - box.scrollTop - box.clientHeight < 48;
    box.append(li);
    if (atEnd) box.scrollTop = box.scrollHeight; // follow, unless the reader scrolled up
    return li;
  }

  // #repeated is the line a repeating detail adds to: the last line, or
  // the one before it when the two alternate.
  #repeated(key) {
    const last = this.list.lastElementChild;
    const prev = last?.previousElementSibling;
    if (last?.dataset.key === key) return last;
    if (prev?.dataset.key === key && last?.dataset.key) return prev;
    return null;
  }

  // note tells something once per page.
  note(key, text) {
    if (this.#noted.has(key)) return;
    this.#noted.add(key);
    this.log('sys', 'Phone', text);
  }

  clear() {
    this.list.textContent = '';
  }
}

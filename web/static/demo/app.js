// app.js — the demo's approval app page (/demo/app, also /demo/bankid): the
// app on the caller's phone in which they approve the service's request.
// It looks like the app of the broker the demo simulates (config.profile
// from /demo/api/config): BankID (idura), Auth0 Guardian (auth0), the
// SMS and e-mail inbox with Mosaic's hosted login page (transmit), or a
// neutral identity app (generic, and any profile it does not know).

import { Approvals, shellOf } from './approvals.js';
import { bankidView } from './bankid.js';
import { guardianView } from './guardian.js';
import { idappView } from './idapp.js';
import { mosaicView } from './mosaic.js';

const VIEWS = { idura: bankidView, auth0: guardianView, transmit: mosaicView, generic: idappView };

const shell = shellOf();

// loadConfig asks for the demo's configuration until it gets it.
const loadConfig = async () => {
  for (;;) {
    try {
      const resp = await fetch('/demo/api/config', { cache: 'no-store' });
      if (resp.ok) return await resp.json();
    } catch {
      // the demo is not up (yet): try again
    }
    shell.conn.textContent = 'Offline: waiting for the demo…';
    shell.conn.classList.add('down');
    await new Promise((resolve) => { setTimeout(resolve, 1000); });
  }
};

const cfg = await loadConfig();
shell.conn.classList.remove('down');
const view = (VIEWS[cfg?.profile] ?? idappView)(shell, cfg);
new Approvals(view, shell).start(cfg);

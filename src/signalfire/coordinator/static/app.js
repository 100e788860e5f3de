/* Signalfire coordinator page: the live feed of reports for coordinators.
 *
 * Plain JavaScript, no build step and no framework, so that anyone can read and fix it
 * during an incident. It talks only to the coordinator's own JSON API (same origin,
 * session cookie + CSRF token) and uses only local assets: it must work with no internet.
 *
 * Safety rule: report data (text, sender, needs, gateway names...) comes from the public
 * or from the radio; it is only ever put into the page with textContent / createTextNode,
 * never innerHTML. The service's Content-Security-Policy is a second line of defence.
 */
(function () {
  'use strict';

  // ---------------------------------------------------------------------------------------
  // Every visible word, in one place so that a translation can be added later.
  const STRINGS = {
    appTitle: 'Signalfire',
    loginTitle: 'Coordinator log in',
    username: 'Username',
    password: 'Password',
    login: 'Log in',
    loggingIn: 'Logging in…',
    logout: 'Log out',
    refresh: 'Refresh',
    loginNeeded: 'Enter your username and password.',
    tooManyAttempts: (s) => `Too many attempts, wait ${s} s before trying again.`,
    sessionEnded: 'Your session has ended. Log in again.',
    whoami: (user, role) => `${user} (${role})`,
    live: 'live',
    reconnecting: 'reconnecting…',
    offline: 'live updates off — retrying',
    errNetwork: 'Cannot reach the coordinator service. Check the connection and press Refresh.',
    errHttp: (status) => `The coordinator answered with an error (HTTP ${status}).`,
    errConfig: 'Could not load the network settings; showing the coordinate grid.',
    errReports: (m) => `Could not load reports: ${m}`,
    errSenders: (m) => `Could not load senders: ${m}`,
    errCounts: (m) => `Could not load counts: ${m}`,
    errGateways: (m) => `Could not load the gateway list: ${m}`,
    errDetails: (m) => `Could not load this report: ${m}`,
    errMark: (m) => `Could not save: ${m}`,
    errLeaflet: 'The map library did not load; the list still works.',
    filters: 'Filters',
    filterStatus: 'Status',
    filterWindow: 'Time',
    filterState: 'Handling',
    filterGateway: 'Gateway',
    filterArea: 'Area',
    areaUse: 'Use current map view',
    areaClear: 'Clear area',
    areaAll: 'everywhere',
    filtersReset: 'Show everything',
    windows: { '1h': 'Last hour', '6h': 'Last 6 hours', '24h': 'Last 24 hours', all: 'All time' },
    anyState: 'Any',
    anyGateway: 'All gateways',
    inactive: '(inactive)',
    counts: 'Counts',
    countsTotal: (n, s) => `${n} reports from ${s} senders`,
    byStatus: 'By status',
    byNeed: 'By need',
    byState: 'By handling',
    none: 'none',
    exports: 'Export current view',
    exportNames: {
      geojson: 'GeoJSON (maps)', csv: 'CSV / HXL (spreadsheets)', cot: 'CoT (TAK)',
      cap: 'CAP (alerts)', pfif: 'PFIF (person finder)',
    },
    mapTitle: 'Map of reports',
    legend: 'Legend',
    legendArea: 'area: coarse position',
    tilesUnavailable: 'Map tiles unavailable — coordinate grid',
    coarseNote: (m, role) =>
      `Positions are coarsened to about ${m} m for your role (${role}): ` +
      'each report is drawn as an area, not a pin.',
    coarseSome: 'Some positions are coarsened: they are drawn as areas, not pins.',
    tabReports: (n) => `Reports (${n})`,
    tabSenders: (n) => `Latest per sender (${n})`,
    loading: 'Loading…',
    noReports: 'No reports match these filters.',
    noSenders: 'No senders match these filters.',
    noStatus: 'No status selected: tick at least one status.',
    truncated: (n) => `Showing the newest ${n}. Narrow the filters to see older reports.`,
    status: {
      sos: 'SOS', trapped: 'Trapped', medical: 'Medical', evacuate: 'Evacuate',
      'need-supplies': 'Need supplies', 'missing-person': 'Missing person', safe: 'Safe',
      cancel: 'Cancel',
    },
    states: { new: 'new', seen: 'seen', assigned: 'assigned', resolved: 'resolved' },
    needs: {
      water: 'water', food: 'food', shelter: 'shelter', medicine: 'medicine', power: 'power',
      transport: 'transport',
    },
    flags: {
      'future-time': 'sender clock is ahead', 'too-old': 'sent long ago',
      'seq-reused': 'sequence number reused',
      'revoked-sender': 'SENDER REVOKED: device may be in other hands',
    },
    people: (n) => (n === 1 ? '1 person' : `${n} people`),
    needsLine: (list) => `Needs: ${list}`,
    from: (s) => `from ${s}`,
    via: (g) => `via ${g}`,
    noPosition: 'no position',
    justNow: 'just now',
    minutesAgo: (n) => `${n} min ago`,
    hoursAgo: (n) => `${n} h ago`,
    daysAgo: (n) => `${n} d ago`,
    inFuture: 'in the future',
    reports: (n) => (n === 1 ? '1 report' : `${n} reports`),
    back: '← Back to list',
    detailsTitle: 'Report',
    senderTitle: (s) => `Sender ${s}`,
    fields: {
      status: 'Status', state: 'Handling', people: 'People', needs: 'Needs', text: 'Message',
      created: 'Sent (sender clock)', received: 'Received', position: 'Position',
      accuracy: 'Accuracy', precision: 'Coarsened to', sender: 'Sender', key: 'Signing key',
      seq: 'Sequence', kind: 'Kind', node: 'Radio node', flags: 'Warnings', id: 'Report id',
    },
    kinds: { report: 'signed report', attested: 'stock radio message, vouched for by a gateway' },
    metres: (m) => `± ${Math.round(m)} m`,
    receipts: 'Heard by gateways',
    receiptCols: ['Gateway', 'Uplink', 'Received', 'SNR', 'RSSI', 'Hops'],
    marks: 'Handling history',
    noMarks: 'Not handled yet.',
    markLine: (state, by, when) => `${state} by ${by}, ${when}`,
    actions: 'Handle this report',
    seen: 'Seen',
    assign: 'Assign…',
    resolve: 'Resolve…',
    confirm: { assigned: 'Assign', resolved: 'Resolve' },
    cancel: 'Cancel',
    note: 'Note',
    notePlaceholder: { assigned: 'Who is going, and when', resolved: 'What was done' },
    saving: 'Saving…',
    saved: (state) => `Marked ${state}.`,
    history: 'Reports from this sender',
  };

  // Status keys in order of urgency (legend, filters, counts). Colours live in app.css.
  const STATUSES = ['sos', 'trapped', 'medical', 'missing-person', 'evacuate',
    'need-supplies', 'safe', 'cancel'];
  const STATES = ['new', 'seen', 'assigned', 'resolved'];
  const WINDOWS = { '1h': 3600, '6h': 6 * 3600, '24h': 24 * 3600, all: null };
  const EXPORTS = ['geojson', 'csv', 'cot', 'cap', 'pfif'];
  const LIMIT = 200;
  const API = 'api/v1/'; // relative: works behind a reverse proxy under a sub-path
  const SESSION = API + 'session';

  // ---------------------------------------------------------------------------------------
  // Page state. Reports are kept newest first, as the list shows them.
  const state = {
    user: null,
    csrf: '',
    config: null,
    role: 'viewer',
    reports: [],
    selectedId: null,
    detailsFor: null, // {type: 'report'|'sender', id}
    savedNote: null, // {id, text}: "Marked resolved." survives the details re-render
    filters: defaultFilters(),
    gateways: [],
    events: null,
    liveLost: false,
    senderCount: 0,
    loadSerial: 0, // to drop answers to a load that a newer one has replaced
    reportsError: '', // stays on screen, even as live reports arrive, until a load succeeds
  };

  function defaultFilters() {
    return { statuses: new Set(STATUSES), window: 'all', state: '', gateway: '', bbox: null };
  }

  const $ = (id) => document.getElementById(id);

  // ---------------------------------------------------------------------------------------
  // Small DOM helpers. el() only ever sets text, never HTML.
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function statusWord(status) {
    return STRINGS.status[status] || String(status);
  }

  function statusClass(status) {
    return STATUSES.includes(status) ? 'st-' + status : 'st-unknown';
  }

  function badge(status) {
    return el('span', 'badge ' + statusClass(status), statusWord(status));
  }

  function stateChip(s) {
    return el('span', 'state state-' + (STATES.includes(s) ? s : 'new'), STRINGS.states[s] || s);
  }

  function needsText(needs) {
    return needs.map((n) => STRINGS.needs[n] || n).join(', ');
  }

  // Colours for the map come from the CSS custom properties, the one place they are defined.
  function statusColour(status) {
    const name = STATUSES.includes(status) ? '--st-' + status : '--st-unknown';
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#455a64';
  }

  function relTime(ts) {
    const s = Date.now() / 1000 - ts;
    if (s < -120) return STRINGS.inFuture;
    if (s < 45) return STRINGS.justNow;
    if (s < 3600) return STRINGS.minutesAgo(Math.max(1, Math.round(s / 60)));
    if (s < 48 * 3600) return STRINGS.hoursAgo(Math.floor(s / 3600));
    return STRINGS.daysAgo(Math.floor(s / 86400));
  }

  function utc(ts) {
    return new Date(ts * 1000).toISOString().slice(0, 16).replace('T', ' ') + ' UTC';
  }

  // Today's times without the date: the list has to be read at a glance.
  function utcShort(ts) {
    const full = utc(ts);
    return full.slice(0, 10) === new Date().toISOString().slice(0, 10) ? full.slice(11) : full;
  }

  // A <time> that says both "5 min ago" and the UTC time; the relative part is refreshed
  // every 30 s (see tickTimes), since coordinators keep this page open for hours.
  function timeEl(ts, className, short) {
    const t = el('time', className);
    t.dateTime = new Date(ts * 1000).toISOString();
    t.dataset.ts = String(ts);
    if (short) t.dataset.short = '1';
    t.title = utc(ts);
    t.textContent = timeText(t);
    return t;
  }

  function timeText(t) {
    const ts = Number(t.dataset.ts);
    return relTime(ts) + ' · ' + (t.dataset.short ? utcShort(ts) : utc(ts));
  }

  function tickTimes() {
    document.querySelectorAll('time[data-ts]').forEach((t) => { t.textContent = timeText(t); });
  }

  function showBanner(message) {
    const b = $('banner');
    b.textContent = message;
    b.hidden = !message;
  }

  // ---------------------------------------------------------------------------------------
  // The API. Every call is same-origin with the session cookie; every non-GET call carries
  // the CSRF token. A 401 anywhere but the session check means the session ended.
  class ApiError extends Error {
    constructor(status, code, message, retryAfter) {
      super(message);
      this.status = status;
      this.code = code;
      this.retryAfter = retryAfter;
    }
  }

  async function api(method, path, body) {
    const headers = { Accept: 'application/json' };
    const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
    if (method !== 'GET') headers['X-CSRF-Token'] = state.csrf;
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, 'network', STRINGS.errNetwork, null);
    }
    let data = null;
    try {
      data = await resp.json();
    } catch (e) {
      data = null; // an empty or non-JSON body: the status code still says what happened
    }
    if (!resp.ok) {
      const err = new ApiError(
        resp.status,
        (data && data.error) || 'http-' + resp.status,
        (data && data.message) || STRINGS.errHttp(resp.status),
        resp.headers.get('Retry-After'),
      );
      if (resp.status === 401 && path !== SESSION) sessionEnded();
      throw err;
    }
    return data;
  }

  function filterParams() {
    const f = state.filters;
    const p = new URLSearchParams();
    if (f.statuses.size < STATUSES.length) p.set('status', [...f.statuses].join(','));
    if (WINDOWS[f.window]) {
      p.set('since', String(Math.floor(Date.now() / 1000) - WINDOWS[f.window]));
    }
    if (f.bbox) p.set('bbox', f.bbox.map((n) => n.toFixed(5)).join(','));
    if (f.gateway) p.set('gateway', f.gateway);
    if (f.state) p.set('state', f.state);
    return p;
  }

  function withParams(path, extra) {
    const p = filterParams();
    Object.entries(extra || {}).forEach(([k, v]) => p.set(k, v));
    const q = p.toString();
    return q ? path + '?' + q : path;
  }

  // ---------------------------------------------------------------------------------------
  // Log in and out.
  async function start() {
    $('boot').hidden = true;
    document.querySelectorAll('[data-text]').forEach((node) => {
      node.textContent = STRINGS[node.dataset.text];
    });
    $('legend').setAttribute('aria-label', STRINGS.legend);
    bindStaticEvents();
    try {
      onLoggedIn(await api('GET', SESSION));
    } catch (e) {
      if (e.status === 401) showLogin('');
      else showLogin(e.message);
    }
  }

  function showLogin(message) {
    stopEvents();
    $('app-view').hidden = true;
    $('login-view').hidden = false;
    ['logout', 'whoami', 'live', 'refresh'].forEach((id) => { $(id).hidden = true; });
    $('network').textContent = '';
    const err = $('login-error');
    err.textContent = message;
    err.hidden = !message;
    $('login-password').value = '';
    $('login-username').focus();
  }

  async function submitLogin(event) {
    event.preventDefault();
    const username = $('login-username').value.trim();
    const password = $('login-password').value;
    const err = $('login-error');
    if (!username || !password) {
      err.textContent = STRINGS.loginNeeded;
      err.hidden = false;
      return;
    }
    const button = $('login-submit');
    button.disabled = true;
    button.textContent = STRINGS.loggingIn;
    try {
      onLoggedIn(await api('POST', SESSION, { username, password }));
    } catch (e) {
      err.textContent = e.status === 429
        ? STRINGS.tooManyAttempts(e.retryAfter || '60') : e.message;
      err.hidden = false;
      $('login-password').select();
    } finally {
      button.disabled = false;
      button.textContent = STRINGS.login;
    }
  }

  async function logout() {
    try {
      await api('DELETE', SESSION);
    } catch (e) {
      // Even if the server could not be told, this page forgets the session.
    }
    forgetSession();
    showLogin('');
  }

  function forgetSession() {
    stopEvents();
    state.user = null;
    state.csrf = '';
    state.reports = [];
    state.selectedId = null;
    closeDetails();
    if (mapView) mapView.clearReports();
    $('report-list').replaceChildren();
    $('sender-list').replaceChildren();
  }

  function sessionEnded() {
    if (!state.user) return; // already showing the login form
    forgetSession();
    showBanner('');
    showLogin(STRINGS.sessionEnded);
  }

  async function onLoggedIn(session) {
    state.user = session.user;
    state.csrf = session.csrf_token || '';
    state.role = session.user.role;
    $('login-view').hidden = true;
    $('app-view').hidden = false;
    $('whoami').textContent = STRINGS.whoami(session.user.username, session.user.role);
    ['logout', 'whoami', 'live', 'refresh'].forEach((id) => { $(id).hidden = false; });
    showBanner('');

    try {
      state.config = await api('GET', API + 'config');
      state.role = state.config.role || state.role;
    } catch (e) {
      if (e.status === 401) return;
      // Without the settings the page still works: no tiles, the server still coarsens.
      state.config = { network: '', tile_url: null, tile_attribution: '', role: state.role };
      showBanner(STRINGS.errConfig + ' (' + e.message + ')');
    }
    $('network').textContent = state.config.network || '';
    document.title = state.config.network
      ? `${STRINGS.appTitle} — ${state.config.network}` : STRINGS.appTitle;

    buildFilters();
    buildLegend();
    ensureMap();
    loadGateways();
    await refreshAll(true);
    startEvents();
  }

  // ---------------------------------------------------------------------------------------
  // Loading the feed: reports, senders and counts for the current filters.
  async function refreshAll(fit) {
    updateExportLinks();
    if (state.filters.statuses.size === 0) {
      // Nothing can match; say so rather than asking the server for everything.
      state.reports = [];
      renderReports();
      if (mapView) mapView.setReports([], false);
      $('reports-message').textContent = STRINGS.noStatus;
      $('sender-list').replaceChildren();
      $('senders-message').textContent = STRINGS.noStatus;
      $('counts').replaceChildren();
      return;
    }
    await Promise.all([loadReports(fit), loadSenders(), loadCounts()]);
  }

  async function loadReports(fit) {
    const serial = ++state.loadSerial;
    const msg = $('reports-message');
    msg.className = 'list-message';
    if (!state.reports.length) msg.textContent = STRINGS.loading;
    try {
      const data = await api('GET', withParams(API + 'reports', { limit: String(LIMIT) }));
      if (serial !== state.loadSerial) return;
      state.reports = data.reports || [];
      state.reportsError = '';
      renderReports();
      if (mapView) mapView.setReports(state.reports, fit);
    } catch (e) {
      if (serial !== state.loadSerial || e.status === 401) return;
      state.reportsError = STRINGS.errReports(e.message);
      updateReportMessage();
    }
  }

  function renderReports() {
    const list = $('report-list');
    list.replaceChildren(...state.reports.map((r) => {
      const li = el('li');
      li.append(reportRow(r));
      return li;
    }));
    updateReportMessage();
    updateCoarseNote();
  }

  function updateReportMessage() {
    const msg = $('reports-message');
    const n = state.reports.length;
    $('tab-reports').textContent = STRINGS.tabReports(n);
    if (state.reportsError) {
      msg.className = 'list-message error';
      msg.textContent = state.reportsError;
      return;
    }
    msg.className = 'list-message';
    msg.textContent = n === 0 ? STRINGS.noReports : n >= LIMIT ? STRINGS.truncated(LIMIT) : '';
  }

  // One row of the list: a button, so that it works with the keyboard (Tab, Enter, Space).
  function reportRow(r, onClick) {
    const row = el('button', 'row ' + statusClass(r.status));
    row.type = 'button';
    row.dataset.id = r.id;
    row.dataset.status = r.status;
    if (r.id === state.selectedId) row.classList.add('selected');

    const head = el('span', 'row-head');
    head.append(badge(r.status));
    // "0 people" says nothing (a cancel, a report about someone else): leave it out.
    if (r.people) head.append(el('span', 'row-people', STRINGS.people(r.people)));
    head.append(stateChip(r.state), timeEl(r.created_at, 'row-time', true));
    row.append(head);
    if (r.needs && r.needs.length) {
      row.append(el('span', 'row-needs', STRINGS.needsLine(needsText(r.needs))));
    }
    if (r.text) row.append(el('span', 'row-text', r.text));
    const meta = [STRINGS.from(r.sender)];
    if (r.gateways && r.gateways.length) meta.push(STRINGS.via(r.gateways.join(', ')));
    if (r.lat === null || r.lon === null) meta.push(STRINGS.noPosition);
    row.append(el('span', 'row-meta', meta.join(' · ')));
    row.addEventListener('click', onClick || (() => selectReport(r.id, 'list')));
    return row;
  }

  async function loadSenders() {
    const msg = $('senders-message');
    msg.className = 'list-message';
    try {
      const data = await api('GET', withParams(API + 'senders'));
      const senders = data.senders || [];
      state.senderCount = senders.length;
      $('tab-senders').textContent = STRINGS.tabSenders(senders.length);
      $('sender-list').replaceChildren(...senders.map((s) => {
        const li = el('li');
        const row = reportRow(s.latest, () => openSender(s.sender));
        row.dataset.sender = s.sender;
        row.querySelector('.row-meta').textContent =
          STRINGS.from(s.sender) + ' · ' + STRINGS.reports(s.count);
        li.append(row);
        return li;
      }));
      msg.textContent = senders.length ? '' : STRINGS.noSenders;
    } catch (e) {
      if (e.status === 401) return;
      msg.className = 'list-message error';
      msg.textContent = STRINGS.errSenders(e.message);
    }
  }

  async function loadCounts() {
    const box = $('counts');
    try {
      const c = await api('GET', withParams(API + 'counts'));
      const parts = [el('p', 'total', STRINGS.countsTotal(c.total, c.senders))];
      parts.push(countList(STRINGS.byStatus, c.by_status, STATUSES, (k) => badge(k)));
      parts.push(countList(STRINGS.byNeed, c.by_need, Object.keys(STRINGS.needs),
        (k) => el('span', '', STRINGS.needs[k] || k)));
      parts.push(countList(STRINGS.byState, c.by_state, STATES, (k) => stateChip(k)));
      box.replaceChildren(...parts);
    } catch (e) {
      if (e.status === 401) return;
      box.replaceChildren(el('p', 'list-message error', STRINGS.errCounts(e.message)));
    }
  }

  function countList(title, counts, order, label) {
    const wrap = el('div', 'count-group');
    wrap.append(el('h3', '', title));
    // Known keys in their usual order, then anything the server added later.
    const keys = order.filter((k) => counts && counts[k])
      .concat(Object.keys(counts || {}).filter((k) => !order.includes(k) && counts[k]));
    if (!keys.length) {
      wrap.append(el('p', 'count-none', STRINGS.none));
      return wrap;
    }
    const dl = el('dl');
    keys.forEach((k) => {
      const pair = el('div'); // a <div> may group a dt with its dd, for layout
      const dt = el('dt');
      dt.append(label(k));
      dt.dataset.key = k;
      pair.append(dt, el('dd', '', counts[k]));
      dl.append(pair);
    });
    wrap.append(dl);
    return wrap;
  }

  // Counts and senders are cheap to re-fetch; live bursts are coalesced into one request.
  let summaryTimer = null;
  function scheduleSummaryRefresh() {
    clearTimeout(summaryTimer);
    summaryTimer = setTimeout(() => { loadCounts(); loadSenders(); }, 800);
  }

  async function loadGateways() {
    try {
      const data = await api('GET', API + 'gateways');
      state.gateways = data.gateways || [];
    } catch (e) {
      if (e.status !== 401) showBanner(STRINGS.errGateways(e.message));
      state.gateways = [];
    }
    const select = $('filter-gateway');
    const opts = [new Option(STRINGS.anyGateway, '')];
    state.gateways.forEach((g) => {
      const name = g.name || g.key_id;
      opts.push(new Option(g.active === false ? `${name} ${STRINGS.inactive}` : name, g.key_id));
    });
    select.replaceChildren(...opts);
    select.value = state.filters.gateway;
  }

  // ---------------------------------------------------------------------------------------
  // Filters.
  function buildFilters() {
    const f = state.filters;
    const box = $('filter-status');
    box.querySelectorAll('label').forEach((l) => l.remove());
    STATUSES.forEach((s) => {
      const label = el('label');
      const input = el('input');
      input.type = 'checkbox';
      input.value = s;
      input.checked = f.statuses.has(s);
      input.addEventListener('change', () => {
        if (input.checked) f.statuses.add(s); else f.statuses.delete(s);
        filtersChanged();
      });
      label.append(input, el('span', 'swatch ' + statusClass(s)), el('span', '', statusWord(s)));
      box.append(label);
    });

    $('filter-window').replaceChildren(...Object.keys(WINDOWS).map(
      (k) => new Option(STRINGS.windows[k], k, false, k === f.window)));
    $('filter-state').replaceChildren(new Option(STRINGS.anyState, ''),
      ...STATES.map((s) => new Option(STRINGS.states[s], s, false, s === f.state)));
    showArea();
  }

  function showArea() {
    const b = state.filters.bbox;
    $('area-value').textContent = b
      ? `${b[1].toFixed(3)}…${b[3].toFixed(3)}, ${b[0].toFixed(3)}…${b[2].toFixed(3)}`
      : STRINGS.areaAll;
    $('area-clear').hidden = !b;
    if (mapView) mapView.showArea(b);
  }

  function filtersChanged() {
    refreshAll(true);
  }

  function updateExportLinks() {
    $('export-links').replaceChildren(...EXPORTS.map((fmt) => {
      const li = el('li');
      const a = el('a', '', STRINGS.exportNames[fmt]);
      a.href = withParams(API + 'exports/' + fmt);
      a.setAttribute('download', '');
      // "Last hour" means the hour before the click, not before the filters were set.
      a.addEventListener('click', () => { a.href = withParams(API + 'exports/' + fmt); });
      li.append(a);
      return li;
    }));
  }

  // Does a report pushed by the server belong in the current view? (The server filtered the
  // loaded list; live events arrive unfiltered.) No time check: a report that just arrived
  // is within any "last N hours" window from the coordinator's point of view.
  function matchesFilters(r) {
    const f = state.filters;
    if (!f.statuses.has(r.status)) return false;
    if (f.state && r.state !== f.state) return false;
    if (f.gateway && !(r.receipts || []).some((x) => x.gateway_key_id === f.gateway)) return false;
    if (f.bbox) {
      if (r.lat === null || r.lon === null) return false;
      const [w, s, e, n] = f.bbox;
      if (r.lon < w || r.lon > e || r.lat < s || r.lat > n) return false;
    }
    return true;
  }

  // ---------------------------------------------------------------------------------------
  // Live updates over Server-Sent Events. EventSource reconnects by itself after network
  // errors; it gives up only when the server refuses (e.g. the session ended), and then
  // this page checks the session and tries again.
  function startEvents() {
    stopEvents();
    if (typeof EventSource === 'undefined') return;
    const es = new EventSource(API + 'events');
    state.events = es;
    setLive('reconnecting');
    es.addEventListener('open', () => {
      setLive('live');
      if (state.liveLost) {
        // Events sent while we were away are lost: reload once to catch up.
        state.liveLost = false;
        refreshAll(false);
      }
    });
    es.addEventListener('report', (ev) => {
      const r = parseEvent(ev);
      if (r && r.id) upsertReport(r, true);
    });
    es.addEventListener('mark', (ev) => {
      const m = parseEvent(ev);
      if (m && m.report_id && m.mark) applyMark(m.report_id, m.mark);
    });
    // The server re-checks the session while streaming and says so when it has ended.
    es.addEventListener('logout', () => sessionEnded());
    es.addEventListener('error', () => {
      if (state.events !== es) return;
      state.liveLost = true;
      if (es.readyState === EventSource.CLOSED) {
        setLive('offline');
        retryTimer = setTimeout(retryEvents, 5000);
      } else {
        setLive('reconnecting');
      }
    });
  }

  let retryTimer = null;
  async function retryEvents() {
    try {
      await api('GET', SESSION);
      startEvents();
    } catch (e) {
      if (e.status === 401) sessionEnded();
      else retryTimer = setTimeout(retryEvents, 10000);
    }
  }

  function stopEvents() {
    clearTimeout(retryTimer);
    if (state.events) state.events.close();
    state.events = null;
    state.liveLost = false;
  }

  function parseEvent(ev) {
    try {
      return JSON.parse(ev.data);
    } catch (e) {
      console.warn('signalfire: ignoring an event that is not JSON', ev.type);
      return null;
    }
  }

  function setLive(mode) {
    const live = $('live');
    const look = { live: 'live-on', reconnecting: 'live-reconnecting', offline: 'live-off' };
    live.className = 'live ' + look[mode];
    live.textContent = STRINGS[mode];
    live.dataset.mode = mode;
  }

  // A new or changed report: replace it in place, or put it at the top (newest first).
  function upsertReport(r, fromLive) {
    const i = state.reports.findIndex((x) => x.id === r.id);
    const list = $('report-list');
    if (!matchesFilters(r)) {
      if (i >= 0) {
        state.reports.splice(i, 1);
        list.children[i].remove();
        if (mapView) mapView.removeReport(r.id);
      }
    } else {
      // The stream may repeat what a load already showed: leave an unchanged row alone,
      // so nothing flickers and keyboard focus stays where it was.
      if (i >= 0 && JSON.stringify(state.reports[i]) === JSON.stringify(r)) return;
      const li = el('li');
      const row = reportRow(r);
      li.append(row);
      if (i >= 0) {
        const hadFocus = list.children[i].contains(document.activeElement);
        state.reports[i] = r;
        list.children[i].replaceWith(li);
        if (hadFocus) row.focus();
      } else {
        state.reports.unshift(r);
        list.prepend(li);
        if (fromLive) row.classList.add('fresh');
        while (state.reports.length > LIMIT) {
          const old = state.reports.pop();
          list.lastElementChild.remove();
          if (mapView) mapView.removeReport(old.id);
        }
      }
      if (mapView) mapView.upsertReport(r);
    }
    updateReportMessage();
    updateCoarseNote();
    scheduleSummaryRefresh();
    if (state.detailsFor && state.detailsFor.type === 'report' && state.detailsFor.id === r.id &&
        !noteInProgress()) {
      openDetails(r.id, false);
    }
  }

  // Someone typing a note must not lose it because an update to the same report arrived.
  function noteInProgress() {
    return Boolean(document.querySelector('#details .mark-form:not([hidden])'));
  }

  function applyMark(id, mark) {
    const r = state.reports.find((x) => x.id === id);
    if (r) {
      upsertReport(Object.assign({}, r, { mark, state: mark.state }), false);
    } else {
      scheduleSummaryRefresh();
      if (state.detailsFor && state.detailsFor.id === id && !noteInProgress()) {
        openDetails(id, false);
      }
    }
  }

  // ---------------------------------------------------------------------------------------
  // Map (Leaflet). Markers are SVG circles coloured by status; coarse positions are drawn
  // as an area precision_m wide so nobody mistakes them for a precise pin.
  let mapView = null;

  function ensureMap() {
    if (mapView) {
      mapView.configure(state.config);
      return;
    }
    if (typeof L === 'undefined') {
      showBanner(STRINGS.errLeaflet);
      return;
    }
    mapView = createMapView($('map'));
    mapView.configure(state.config);
  }

  function createMapView(container) {
    const map = L.map(container, { worldCopyJump: true, zoomSnap: 0.5 });
    // Leaflet 1.9's default prefix carries a national flag; a screen shown at a
    // checkpoint or in a shelter should carry no politics of ours.
    map.attributionControl.setPrefix('Leaflet');
    map.setView([20, 0], 2);
    // The grid gets a pane of its own between tiles (200) and reports (400): always under
    // the markers, whatever order things are drawn in.
    map.createPane('grid').style.zIndex = '350';
    const reportsLayer = L.featureGroup().addTo(map);
    const gridLayer = L.layerGroup();
    const layers = new Map(); // report id -> Leaflet layer
    let tiles = null;
    let areaRect = null;
    let highlighted = null;

    function useGrid(reason) {
      if (tiles) {
        map.removeLayer(tiles);
        tiles = null;
      }
      container.classList.add('grid-mode');
      $('tiles-note').hidden = false;
      $('tiles-note').title = reason || '';
      if (!map.hasLayer(gridLayer)) gridLayer.addTo(map);
      drawGrid();
    }

    // A plain lat/lon graticule, so positions can still be read off with no map tiles.
    function drawGrid() {
      if (!map.hasLayer(gridLayer)) return;
      gridLayer.clearLayers();
      const b = map.getBounds();
      const south = Math.max(b.getSouth(), -85);
      const north = Math.min(b.getNorth(), 85);
      const west = b.getWest();
      const east = b.getEast();
      // Each axis gets the finest round step that keeps its labels apart on screen.
      const size = map.getSize();
      const steps = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 30];
      const stepFor = (span, px, gap) => steps.find((s) => span / s <= Math.max(2, px / gap)) || 30;
      const latStep = stepFor(north - south, size.y, 70);
      const lonStep = stepFor(east - west, size.x, 110);
      const digits = (step) => Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
      const line = { color: '#90a4ae', weight: 1, interactive: false, pane: 'grid' };
      const label = (text, cls, at) => {
        // No label where it would be cut by the map's edge or hidden under its controls.
        const p = map.latLngToContainerPoint(at);
        if (cls === 'lon' && (p.x < 40 || p.x > size.x - 90)) return;
        if (cls === 'lat' && (p.y < 70 || p.y > size.y - 30)) return;
        const node = el('span', 'grid-label ' + cls, text);
        L.marker(at, {
          icon: L.divIcon({ className: '', html: node, iconSize: null }),
          interactive: false, keyboard: false, pane: 'grid',
        }).addTo(gridLayer);
      };
      for (let lat = Math.ceil(south / latStep) * latStep; lat <= north; lat += latStep) {
        L.polyline([[lat, west], [lat, east]], line).addTo(gridLayer);
        label(`${Math.abs(lat).toFixed(digits(latStep))}°${lat < 0 ? 'S' : 'N'}`, 'lat',
          [lat, west]);
      }
      for (let lon = Math.ceil(west / lonStep) * lonStep; lon <= east; lon += lonStep) {
        L.polyline([[south, lon], [north, lon]], line).addTo(gridLayer);
        const wrapped = ((lon + 540) % 360) - 180;
        label(`${Math.abs(wrapped).toFixed(digits(lonStep))}°${wrapped < 0 ? 'W' : 'E'}`, 'lon',
          [south, lon]);
      }
    }
    map.on('moveend', drawGrid);

    function configure(config) {
      if (tiles) {
        map.removeLayer(tiles);
        tiles = null;
      }
      if (!config.tile_url) {
        useGrid('no tile_url');
        return;
      }
      container.classList.remove('grid-mode');
      $('tiles-note').hidden = true;
      map.removeLayer(gridLayer);
      // The attribution is set by the coordinator's operator, not by the public.
      tiles = L.tileLayer(config.tile_url, {
        attribution: config.tile_attribution || '', maxZoom: 19, crossOrigin: false,
      });
      // During a blackout the tile server is usually out of reach: fall back to the grid
      // on the first failure rather than leaving a grey map with holes.
      tiles.on('tileerror', () => useGrid('tileerror'));
      tiles.addTo(map);
    }

    function tooltip(r) {
      const node = el('div', 'report-tip');
      node.append(badge(r.status));
      if (r.people) node.append(document.createTextNode(' ' + STRINGS.people(r.people)));
      if (r.text) {
        node.append(el('div', '', r.text.length > 80 ? r.text.slice(0, 80) + '…' : r.text));
      }
      return node;
    }

    function makeLayer(r) {
      const colour = statusColour(r.status);
      const cls = 'sf-marker ' + statusClass(r.status);
      const layer = r.coarse && r.precision_m
        ? L.circle([r.lat, r.lon], {
          radius: r.precision_m, color: colour, weight: 2, dashArray: '6 4',
          fillColor: colour, fillOpacity: 0.2, className: cls + ' sf-area',
        })
        : L.circleMarker([r.lat, r.lon], {
          radius: 9, color: '#1d1d1d', weight: 2, fillColor: colour, fillOpacity: 0.95,
          className: cls + ' sf-pin',
        });
      layer.bindTooltip(tooltip(r), { direction: 'top' });
      layer.on('click', () => selectReport(r.id, 'map'));
      return layer;
    }

    function baseStyle(layer) {
      return layer instanceof L.Circle ? { weight: 2, color: layer.options.fillColor }
        : { weight: 2, color: '#1d1d1d', radius: 9 };
    }

    function upsertReport(r) {
      removeReport(r.id);
      if (r.lat === null || r.lon === null || r.lat === undefined) return;
      const layer = makeLayer(r).addTo(reportsLayer);
      // Tests and assistive tools find a report's marker by its id.
      const node = layer.getElement();
      if (node) {
        node.setAttribute('data-report-id', r.id);
        node.setAttribute('data-status', r.status);
      }
      layers.set(r.id, layer);
      if (r.id === state.selectedId) highlight(r.id, false);
    }

    function removeReport(id) {
      const layer = layers.get(id);
      if (layer) {
        reportsLayer.removeLayer(layer);
        layers.delete(id);
      }
    }

    function clearReports() {
      reportsLayer.clearLayers();
      layers.clear();
      highlighted = null;
    }

    function setReports(reports, fit) {
      clearReports();
      // Oldest first, so the newest markers are drawn on top.
      reports.slice().reverse().forEach(upsertReport);
      if (fit) fitToReports();
    }

    function fitToReports() {
      map.invalidateSize();
      if (!layers.size) return;
      const bounds = reportsLayer.getBounds();
      if (bounds.isValid()) map.fitBounds(bounds, { padding: [40, 40], maxZoom: 15 });
    }

    function highlight(id, pan) {
      if (highlighted && layers.get(highlighted)) {
        const prev = layers.get(highlighted);
        prev.setStyle(baseStyle(prev));
        if (prev.getElement()) prev.getElement().classList.remove('sf-selected');
      }
      highlighted = id;
      const layer = layers.get(id);
      if (!layer) return;
      layer.setStyle(layer instanceof L.Circle ? { weight: 5, color: '#000' }
        : { weight: 4, color: '#000', radius: 14 });
      layer.bringToFront();
      if (layer.getElement()) layer.getElement().classList.add('sf-selected');
      if (pan) {
        const at = layer.getLatLng();
        if (!map.getBounds().contains(at)) map.panTo(at);
      }
    }

    function showArea(bbox) {
      if (areaRect) map.removeLayer(areaRect);
      areaRect = bbox ? L.rectangle([[bbox[1], bbox[0]], [bbox[3], bbox[2]]], {
        color: '#0b57d0', weight: 2, dashArray: '8 6', fill: false, interactive: false,
      }).addTo(map) : null;
    }

    function viewBbox() {
      const b = map.getBounds();
      return [Math.max(b.getWest(), -180), Math.max(b.getSouth(), -90),
        Math.min(b.getEast(), 180), Math.min(b.getNorth(), 90)];
    }

    return {
      configure, setReports, upsertReport, removeReport, clearReports, highlight, showArea,
      viewBbox, invalidate: () => map.invalidateSize(),
    };
  }

  function buildLegend() {
    const items = STATUSES.map((s) => {
      const li = el('li');
      li.append(el('span', 'swatch ' + statusClass(s)), el('span', '', statusWord(s)));
      return li;
    });
    const area = el('li');
    area.append(el('span', 'swatch area st-cancel'), el('span', '', STRINGS.legendArea));
    items.push(area);
    $('legend').replaceChildren(...items);
  }

  function updateCoarseNote() {
    const note = $('coarse-note');
    if (state.role === 'viewer') {
      note.textContent = STRINGS.coarseNote(
        (state.config && state.config.viewer_precision_m) || '?', state.role);
    } else {
      note.textContent = state.reports.some((r) => r.coarse) ? STRINGS.coarseSome : '';
    }
    note.hidden = !note.textContent;
  }

  // ---------------------------------------------------------------------------------------
  // Selection and details.
  function selectReport(id, from) {
    state.selectedId = id;
    document.querySelectorAll('.row.selected').forEach((r) => r.classList.remove('selected'));
    const row = document.querySelector(`#report-list .row[data-id="${CSS.escape(id)}"]`);
    if (row) {
      row.classList.add('selected');
      if (from === 'map') row.scrollIntoView({ block: 'nearest' });
    }
    if (mapView) mapView.highlight(id, from !== 'map');
    openDetails(id, true);
  }

  let lastFocus = null;
  function showDetailsPanel(title, focus) {
    const panel = $('details');
    if (panel.hidden) lastFocus = document.activeElement;
    panel.hidden = false;
    $('details-title').replaceChildren(...(Array.isArray(title) ? title : [title]));
    if (focus) $('details-title').focus();
  }

  function closeDetails() {
    $('details').hidden = true;
    state.detailsFor = null;
    $('details-body').replaceChildren();
    if (lastFocus && document.contains(lastFocus)) lastFocus.focus();
    lastFocus = null;
  }

  async function openDetails(id, focus) {
    state.detailsFor = { type: 'report', id };
    if (focus) {
      state.savedNote = null;
      showDetailsPanel(document.createTextNode(STRINGS.detailsTitle), true);
      $('details-body').replaceChildren(el('p', 'list-message', STRINGS.loading));
    }
    try {
      const data = await api('GET', API + 'reports/' + encodeURIComponent(id));
      if (!state.detailsFor || state.detailsFor.id !== id) return; // the user moved on
      const report = data.report || data;
      const marks = data.marks || report.marks || (report.mark ? [report.mark] : []);
      renderDetails(report, marks);
    } catch (e) {
      if (e.status === 401 || !state.detailsFor || state.detailsFor.id !== id) return;
      $('details-body').replaceChildren(
        el('p', 'list-message error', STRINGS.errDetails(e.message)));
    }
  }

  function renderDetails(r, marks) {
    const F = STRINGS.fields;
    const title = [badge(r.status)];
    if (r.people) title.push(document.createTextNode(STRINGS.people(r.people)));
    title.push(stateChip(r.state));
    showDetailsPanel(title, false);
    const body = [];
    if (r.text) body.push(el('p', 'report-text', r.text));

    const dl = el('dl');
    const add = (label, value) => {
      if (value === null || value === undefined || value === '') return;
      const dd = el('dd');
      if (value instanceof Node) dd.append(value); else dd.textContent = String(value);
      dl.append(el('dt', '', label), dd);
    };
    add(F.needs, r.needs && r.needs.length ? needsText(r.needs) : STRINGS.none);
    add(F.created, timeEl(r.created_at));
    add(F.received, timeEl(r.received_at));
    if (r.lat !== null && r.lon !== null) {
      add(F.position, `${r.lat.toFixed(5)}, ${r.lon.toFixed(5)}`);
      if (r.coarse) add(F.precision, r.precision_m ? STRINGS.metres(r.precision_m) : '');
      else add(F.accuracy, r.accuracy_m ? STRINGS.metres(r.accuracy_m) : '');
    } else {
      add(F.position, STRINGS.noPosition);
    }
    add(F.sender, r.sender);
    if (r.key_id && r.key_id !== r.sender) add(F.key, r.key_id);
    add(F.seq, r.seq);
    add(F.kind, STRINGS.kinds[r.kind] || r.kind);
    add(F.node, r.node_num);
    if (r.flags && r.flags.length) {
      add(F.flags, el('span', 'flag', r.flags.map((f) => STRINGS.flags[f] || f).join(', ')));
    }
    add(F.id, r.id);
    body.push(dl);

    const receipts = r.receipts || [];
    if (receipts.length) {
      body.push(el('h3', '', STRINGS.receipts));
      const table = el('table');
      const head = el('tr');
      STRINGS.receiptCols.forEach((c) => head.append(el('th', '', c)));
      table.append(head);
      receipts.forEach((x) => {
        const tr = el('tr');
        [x.gateway_name || x.gateway_key_id, x.uplink,
          x.received_at ? utc(x.received_at) : '', x.snr, x.rssi, x.hops]
          .forEach((v) => tr.append(el('td', '', v === null || v === undefined ? '–' : v)));
        table.append(tr);
      });
      body.push(table);
    }

    body.push(el('h3', '', STRINGS.marks));
    if (marks.length) {
      const ol = el('ol', 'marks');
      marks.forEach((m) => {
        const li = el('li');
        const when = m.at ? relTime(m.at) + ' · ' + utc(m.at) : '';
        li.append(stateChip(m.state), document.createTextNode(
          ' ' + STRINGS.markLine(STRINGS.states[m.state] || m.state, m.by, when)));
        if (m.note) li.append(el('div', 'mark-note', m.note));
        ol.append(li);
      });
      body.push(ol);
    } else {
      body.push(el('p', '', STRINGS.noMarks));
    }

    if (state.role === 'responder' || state.role === 'admin') body.push(actionsBox(r));
    $('details-body').replaceChildren(...body);
  }

  // Seen is one click; Assign… and Resolve… ask for a note first (who is going, what was done).
  function actionsBox(r) {
    const box = el('section', 'actions');
    box.append(el('h3', '', STRINGS.actions));
    const buttons = el('div', 'buttons');
    const msg = el('p', 'action-msg');
    msg.setAttribute('role', 'status');
    const form = el('form', 'mark-form');
    form.hidden = true;
    const noteId = 'mark-note-' + r.id;
    const label = el('label', '', STRINGS.note);
    label.htmlFor = noteId;
    const note = el('textarea');
    note.id = noteId;
    note.rows = 3;
    note.maxLength = 1000;
    const confirm = el('button', 'confirm');
    confirm.type = 'submit';
    const cancel = el('button', 'secondary', STRINGS.cancel);
    cancel.type = 'button';
    const formButtons = el('div', 'buttons');
    formButtons.append(confirm, cancel);
    form.append(label, note, formButtons);

    let pending = null;
    const ask = (markState) => {
      pending = markState;
      confirm.textContent = STRINGS.confirm[markState];
      confirm.dataset.state = markState;
      note.placeholder = STRINGS.notePlaceholder[markState];
      form.hidden = false;
      note.focus();
    };
    const send = async (markState, text) => {
      msg.className = 'action-msg';
      msg.textContent = STRINGS.saving;
      box.querySelectorAll('button').forEach((b) => { b.disabled = true; });
      try {
        const data = await api('POST', API + 'reports/' + encodeURIComponent(r.id) + '/marks',
          { state: markState, note: text });
        msg.textContent = STRINGS.saved(STRINGS.states[markState]);
        state.savedNote = { id: r.id, text: msg.textContent };
        form.hidden = true;
        if (data && data.report) upsertReport(data.report, false);
        openDetails(r.id, false);
      } catch (e) {
        if (e.status === 401) return;
        msg.className = 'action-msg error';
        msg.textContent = STRINGS.errMark(e.message);
      } finally {
        box.querySelectorAll('button').forEach((b) => { b.disabled = false; });
      }
    };

    [['seen', STRINGS.seen], ['assigned', STRINGS.assign], ['resolved', STRINGS.resolve]]
      .forEach(([markState, text]) => {
        const b = el('button', markState === 'seen' ? '' : 'secondary', text);
        b.type = 'button';
        b.dataset.action = markState;
        b.addEventListener('click', () => {
          if (markState === 'seen') send('seen', ''); else ask(markState);
        });
        buttons.append(b);
      });
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      if (pending) send(pending, note.value.trim());
    });
    cancel.addEventListener('click', () => { form.hidden = true; pending = null; });
    if (state.savedNote && state.savedNote.id === r.id) msg.textContent = state.savedNote.text;
    box.append(buttons, form, msg);
    return box;
  }

  async function openSender(sender) {
    state.detailsFor = { type: 'sender', id: sender };
    showDetailsPanel(document.createTextNode(STRINGS.senderTitle(sender)), true);
    const body = $('details-body');
    body.replaceChildren(el('p', 'list-message', STRINGS.loading));
    try {
      const data = await api('GET', API + 'senders/' + encodeURIComponent(sender) + '/reports');
      if (!state.detailsFor || state.detailsFor.id !== sender) return;
      const ol = el('ol', 'report-list');
      (data.reports || []).forEach((r) => {
        const li = el('li');
        li.append(reportRow(r, () => selectReport(r.id, 'list')));
        ol.append(li);
      });
      body.replaceChildren(el('h3', '', STRINGS.history), ol);
    } catch (e) {
      if (e.status === 401) return;
      body.replaceChildren(el('p', 'list-message error', STRINGS.errSenders(e.message)));
    }
  }

  // ---------------------------------------------------------------------------------------
  // Wiring.
  function showTab(name) {
    const reports = name === 'reports';
    $('tab-reports').setAttribute('aria-selected', String(reports));
    $('tab-senders').setAttribute('aria-selected', String(!reports));
    $('reports-panel').hidden = !reports;
    $('senders-panel').hidden = reports;
    closeDetails();
  }

  function bindStaticEvents() {
    $('login-form').addEventListener('submit', submitLogin);
    $('logout').addEventListener('click', logout);
    $('refresh').addEventListener('click', () => { showBanner(''); refreshAll(false); });
    $('details-close').addEventListener('click', closeDetails);
    $('tab-reports').addEventListener('click', () => showTab('reports'));
    $('tab-senders').addEventListener('click', () => showTab('senders'));
    $('tab-reports').textContent = STRINGS.tabReports(0);
    $('tab-senders').textContent = STRINGS.tabSenders(0);
    $('filter-window').addEventListener('change', (ev) => {
      state.filters.window = ev.target.value;
      filtersChanged();
    });
    $('filter-state').addEventListener('change', (ev) => {
      state.filters.state = ev.target.value;
      filtersChanged();
    });
    $('filter-gateway').addEventListener('change', (ev) => {
      state.filters.gateway = ev.target.value;
      filtersChanged();
    });
    $('area-use').addEventListener('click', () => {
      if (!mapView) return;
      state.filters.bbox = mapView.viewBbox();
      showArea();
      refreshAll(false); // the user chose this view: do not move the map
    });
    $('area-clear').addEventListener('click', () => {
      state.filters.bbox = null;
      showArea();
      filtersChanged();
    });
    $('filters-reset').addEventListener('click', () => {
      state.filters = defaultFilters();
      buildFilters();
      $('filter-gateway').value = '';
      filtersChanged();
    });
    document.addEventListener('keydown', (ev) => {
      if (ev.key === 'Escape' && !$('details').hidden) closeDetails();
    });
    // The map needs to know when its box changes size (window resize, tablet rotation).
    window.addEventListener('resize', () => { if (mapView) mapView.invalidate(); });
    setInterval(tickTimes, 30000);
  }

  // The script is loaded with defer: the document is parsed by now.
  start();
})();

// dagnode dashboard: draws what the node pushes on /events. No library, no
// build step; everything here comes from the node itself.
'use strict';

(function () {
  // The token has been exchanged for a cookie by the answer that served
  // this page: drop it from the address bar and the history.
  if (location.search.indexOf('token=') >= 0) {
    history.replaceState(null, '', '/');
  }

  const COL_W = 46, ROW_H = 30, BLK_W = 30, BLK_H = 20, PAD = 14, AXIS_H = 14;
  const HISTORY = 120;

  const st = {
    blocks: new Map(), // hash -> block
    order: [], // hashes, oldest first
    children: new Map(), // hash -> Set of child hashes in view
    max: 300,
    panels: null,
    selected: null,
    dropped: 0,
    resyncs: 0,
    hashHist: [],
    bwHist: [],
    dirty: false,
  };

  const $ = (id) => document.getElementById(id);

  function esc(s) {
    return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
  }
  function short(h, n) { h = String(h || ''); return h.length > 2 * n ? h.slice(0, n) + '…' + h.slice(-n) : h; }
  function fmtNum(n) { return Number(n || 0).toLocaleString('en-US'); }
  function fmtRate(n) {
    n = Number(n || 0);
    const u = ['', 'k', 'M', 'G', 'T'];
    let i = 0;
    while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
    return (n >= 100 || i === 0 ? n.toFixed(0) : n.toFixed(1)) + ' ' + u[i];
  }
  function fmtBytes(n) {
    n = Number(n || 0);
    const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i === 0 ? n.toFixed(0) : n.toFixed(1)) + ' ' + u[i];
  }
  function fmtDur(sec) {
    sec = Math.max(0, Math.round(sec || 0));
    if (sec < 60) return sec + ' s';
    if (sec < 3600) return Math.floor(sec / 60) + ' min ' + (sec % 60) + ' s';
    return Math.floor(sec / 3600) + ' h ' + Math.floor((sec % 3600) / 60) + ' min';
  }
  function fmtLatency(ms) { return !ms ? '—' : ms < 10 ? ms.toFixed(2) + ' ms' : ms.toFixed(0) + ' ms'; }
  function ago(ms) { return ms ? fmtDur((Date.now() - ms) / 1000) + ' ago' : '—'; }
  function fmtTime(ms) { return ms ? new Date(ms).toISOString().replace('T', ' ').replace('Z', ' UTC') : '—'; }
  function kv(el, rows) {
    el.innerHTML = rows.map(([k, v]) => '<dt>' + esc(k) + '</dt><dd>' + v + '</dd>').join('');
  }
  function tag(text, cls) { return '<span class="tag ' + (cls || '') + '">' + esc(text) + '</span>'; }
  function list(xs) { return xs && xs.length ? xs.map((x) => '<code>' + esc(x) + '</code>').join('<br>') : '<span class="muted">none</span>'; }

  // ---- the DAG ----

  function addBlock(b) {
    if (st.blocks.has(b.hash)) return;
    st.blocks.set(b.hash, b);
    st.order.push(b.hash);
    for (const p of b.parents || []) {
      let s = st.children.get(p);
      if (!s) { s = new Set(); st.children.set(p, s); }
      s.add(b.hash);
    }
    while (st.order.length > st.max) {
      const old = st.order.shift();
      const ob = st.blocks.get(old);
      st.blocks.delete(old);
      if (ob) for (const p of ob.parents || []) {
        const s = st.children.get(p);
        if (s) { s.delete(old); if (s.size === 0) st.children.delete(p); }
      }
    }
    schedule();
  }

  function reset(snap) {
    st.blocks.clear(); st.order = []; st.children.clear();
    st.max = snap.maxblocks || 300;
    for (const b of snap.blocks || []) addBlock(b);
    st.dropped = snap.dropped || 0;
    st.resyncs = snap.resyncs || 0;
    if (snap.panels) setPanels(snap.panels);
    schedule();
  }

  function isTip(h) {
    const s = st.children.get(h);
    return !s || s.size === 0;
  }

  let timer = 0;
  function schedule() {
    if (st.dirty) return;
    st.dirty = true;
    const run = () => { if (timer) { clearTimeout(timer); timer = 0; } if (st.dirty) { st.dirty = false; drawDAG(); } };
    requestAnimationFrame(run);
    timer = setTimeout(run, 250); // a hidden tab gets no animation frames
  }

  function drawDAG() {
    const view = $('dagview');
    const atEnd = view.scrollLeft + view.clientWidth >= view.scrollWidth - COL_W;
    const byHeight = new Map();
    for (const h of st.order) {
      const b = st.blocks.get(h);
      let col = byHeight.get(b.height);
      if (!col) { col = []; byHeight.set(b.height, col); }
      col.push(b);
    }
    const heights = Array.from(byHeight.keys()).sort((a, b) => a - b);
    const pos = new Map();
    let rows = 1;
    heights.forEach((ht, i) => {
      const col = byHeight.get(ht);
      rows = Math.max(rows, col.length);
      col.forEach((b, j) => pos.set(b.hash, { x: PAD + i * COL_W, y: AXIS_H + PAD + j * ROW_H }));
    });
    const w = PAD * 2 + Math.max(1, heights.length) * COL_W;
    const hgt = AXIS_H + PAD * 2 + rows * ROW_H;
    const edges = [], nodes = [], axis = [];
    heights.forEach((ht, i) => {
      if (i % 5 === 0) axis.push('<text class="axis" x="' + (PAD + i * COL_W) + '" y="11">' + ht + '</text>');
    });
    for (const h of st.order) {
      const b = st.blocks.get(h), p = pos.get(h);
      for (const ph of b.parents || []) {
        const pp = pos.get(ph);
        if (!pp) continue;
        const pb = st.blocks.get(ph);
        const chain = b.inchain && pb && pb.inchain ? ' chain' : '';
        const x1 = pp.x + BLK_W, y1 = pp.y + BLK_H / 2, x2 = p.x, y2 = p.y + BLK_H / 2, mx = (x1 + x2) / 2;
        edges.push('<path class="edge' + chain + '" d="M' + x1 + ' ' + y1 + ' C' + mx + ' ' + y1 + ' ' + mx + ' ' + y2 + ' ' + x2 + ' ' + y2 + '"/>');
      }
      let cls = 'block src-' + esc(b.source || 'stored');
      if (b.blue === true) cls += ' blue'; else if (b.blue === false) cls += ' red';
      if (b.inchain) cls += ' chain';
      const tip = isTip(h);
      if (tip) cls += ' tip';
      if (st.selected === h) cls += ' selected';
      const title = 'block ' + h + '\nheight ' + b.height + '\nminer ' + (b.miner || '?') + '\narrived by ' + (b.source || '?') +
        (b.peer ? ' from ' + b.peer : '') + (b.blue === undefined ? '\nuncoloured' : (b.blue ? '\nblue' : '\nred')) +
        (b.bluescore ? ' (blue score ' + b.bluescore + ')' : '') + (tip ? '\ntip' : '');
      nodes.push('<g class="' + cls + '" data-hash="' + esc(h) + '"><title>' + esc(title) + '</title>' +
        (tip ? '<rect class="tipmark" x="' + (p.x - 3) + '" y="' + (p.y - 3) + '" width="' + (BLK_W + 6) + '" height="' + (BLK_H + 6) + '" rx="4"/>' : '') +
        '<rect class="body" x="' + p.x + '" y="' + p.y + '" width="' + BLK_W + '" height="' + BLK_H + '" rx="3"/>' +
        '<rect class="src" x="' + p.x + '" y="' + (p.y + BLK_H - 4) + '" width="' + BLK_W + '" height="4"/>' +
        '<text x="' + (p.x + 3) + '" y="' + (p.y + 12) + '">' + esc(h.slice(0, 4)) + '</text></g>');
    }
    const svg = $('dagsvg');
    svg.setAttribute('width', w);
    svg.setAttribute('height', hgt);
    svg.setAttribute('viewBox', '0 0 ' + w + ' ' + hgt);
    svg.innerHTML = axis.join('') + edges.join('') + nodes.join('');
    if (atEnd) view.scrollLeft = view.scrollWidth;
    let tips = 0;
    for (const h of st.order) if (isTip(h)) tips++;
    const first = heights.length ? heights[0] : 0, last = heights.length ? heights[heights.length - 1] : 0;
    $('dag-summary').textContent = st.blocks.size + ' blocks drawn, heights ' + first + '–' + last + ', ' + tips + ' tips' +
      (st.dropped ? ' · this tab missed ' + st.dropped + ' events (' + st.resyncs + ' resyncs)' : '');
  }

  $('dagsvg').addEventListener('click', (ev) => {
    const g = ev.target.closest('.block');
    if (g) select(g.getAttribute('data-hash'));
  });
  $('blockinfo').addEventListener('click', (ev) => {
    const a = ev.target.closest('a[data-hash]');
    if (a) { ev.preventDefault(); select(a.getAttribute('data-hash')); }
  });

  function hashLinks(hs) {
    if (!hs || !hs.length) return '<span class="muted">none</span>';
    return hs.map((h) => '<a data-hash="' + esc(h) + '" class="mono">' + esc(short(h, 6)) + '</a>').join(' ');
  }

  function showBlock(b, d) {
    const colour = b.blue === true ? tag('blue', 'good') : b.blue === false ? tag('red', 'bad') : tag('uncoloured');
    const rows = [
      ['hash', '<code>' + esc(b.hash) + '</code>'], ['height', fmtNum(b.height)], ['time', esc(fmtTime(b.time))],
      ['miner', '<code>' + esc(b.miner || '?') + '</code>'],
      ['arrived', esc(b.source || '?') + (b.peer ? ' from <code>' + esc(short(b.peer, 6)) + '</code>' : '') + (b.arrived ? ', ' + esc(ago(b.arrived)) : '')],
      ['colour', colour + (b.inchain ? ' ' + tag('selected chain', 'warn') : '') + (b.bluescore ? ' blue score ' + fmtNum(b.bluescore) : '')],
      ['parents', hashLinks(b.parents)],
    ];
    if (d) {
      rows.push(['children', hashLinks(d.children)], ['bits', '<code>' + esc(d.bits) + '</code>'], ['nonce', esc(d.nonce)],
        ['size', fmtNum(d.size) + ' B (payload ' + fmtNum(d.payloadsize) + ' B)']);
    }
    $('blockinfo').innerHTML = '<dl>' + rows.map(([k, v]) => '<dt>' + esc(k) + '</dt><dd>' + v + '</dd>').join('') + '</dl>';
  }

  function select(h) {
    st.selected = h;
    schedule();
    const b = st.blocks.get(h);
    if (b) showBlock(b, null);
    fetch('/api/block?hash=' + encodeURIComponent(h), { credentials: 'same-origin' })
      .then((r) => (r.ok ? r.json() : null))
      .then((d) => { if (d && st.selected === h) showBlock(Object.assign({}, d, b || {}), d); })
      .catch(() => {});
  }

  // ---- the panels ----

  function setPanels(p) {
    st.panels = p;
    const s = p.status || {};
    $('h-network').textContent = s.network || '?';
    $('h-peer').textContent = short(s.peerid, 6);
    $('h-peer').title = s.peerid || '';
    $('h-blocks').textContent = fmtNum(s.blocks);
    $('h-height').textContent = fmtNum(s.maxheight);
    $('h-tips').textContent = fmtNum((s.tips || []).length);
    $('h-peers').textContent = fmtNum((p.peers || []).length);
    document.title = 'dagnode ' + (s.network || '') + ' · ' + fmtNum(s.blocks) + ' blocks';
    drawPeers(p);
    drawSync(p.sync || {});
    drawMining(p);
  }

  function drawPeers(p) {
    const peers = p.peers || [];
    const rows = peers.map((x) => {
      const link = x.relayed ? tag('relayed', 'warn') : tag('direct', 'good');
      const dag = x.hasstatus ? '<span title="' + esc(fmtNum(x.blocks) + ' blocks, height ' + fmtNum(x.maxheight) + ', ' + x.tips + ' tips') + '">' +
        fmtNum(x.blocks) + ' · h' + fmtNum(x.maxheight) + '</span>' : '<span class="muted">no status</span>';
      const ban = x.banned ? '<span title="' + esc('until ' + fmtTime(x.banuntil)) + '">' + tag('banned', 'bad') + '</span>' : '<span class="muted">—</span>';
      const sync = x.syncpeer ? ' ' + tag('sync peer', 'warn') : '';
      const hp = x.holepunch ? '<br><span class="muted">hole punch ' + x.holepunch.succeeded + '/' + x.holepunch.started + ' ok</span>' : '';
      return '<tr class="peer" data-peer="' + esc(x.id) + '"><td><code title="' + esc(x.id + '\n' + x.addr + '\n' + x.agent) + '">' +
        esc(short(x.id, 5)) + '</code>' + sync + hp + '</td><td>' + esc(x.direction) + ' ' + esc(x.transport) +
        (x.conns > 1 ? ' ×' + x.conns : '') + ' ' + link + '</td><td>' + fmtLatency(x.latencyms) +
        '</td><td>' + dag + '</td><td>' + x.score + '</td><td>' + ban + '</td></tr>';
    });
    $('peers-table').tBodies[0].innerHTML = rows.length ? rows.join('') : '<tr><td colspan="6" class="muted">no peers</td></tr>';
    const n = p.net || {};
    $('peers-summary').textContent = peers.length + ' connected · ' + (n.directpeers || 0) + ' direct, ' + (n.relayedpeers || 0) + ' relayed';
    const hp = n.holepunch || {};
    const reach = n.reachability === 'public' ? 'good' : n.reachability === 'private' ? 'warn' : '';
    kv($('net-kv'), [
      ['reachability', tag(n.reachability || 'unknown', reach) + ' <span class="muted">(' + esc(n.reachabilitybasis || 'none') + ')</span>'],
      ['DHT', esc(n.dhtmode || '?')], ['NAT', esc(n.nat || '?')],
      ['services', 'AutoNAT ' + esc(n.natservice || '?') + '; relay ' + esc(n.relayservice || '?')],
      ['listen', list(n.listenaddrs)], ['observed', list(n.observedaddrs)], ['relay addrs', list(n.relayaddrs)],
      ['hole punch', fmtNum(hp.succeeded) + ' succeeded, ' + fmtNum(hp.failed) + ' failed of ' + fmtNum(hp.started) + ' started; ' + fmtNum(hp.directdials) + ' direct dials'],
    ]);
  }

  function drawSync(s) {
    $('sync-state').innerHTML = s.syncing ? tag('syncing', 'warn') : tag('in step', 'good');
    const pct = s.target > 0 ? Math.min(100, (100 * s.blocks) / s.target) : 100;
    $('sync-bar').style.width = pct.toFixed(1) + '%';
    const ls = s.lastsession || {};
    kv($('sync-kv'), [
      ['sync peer', s.syncpeer ? '<code>' + esc(short(s.syncpeer, 6)) + '</code>' : '<span class="muted">none</span>'],
      ['progress', fmtNum(s.blocks) + (s.target ? ' of ' + fmtNum(s.target) + ' (' + pct.toFixed(1) + ' %)' : ' blocks')],
      ['this session', fmtNum(s.done) + ' blocks at ' + (s.blockspersecond || 0).toFixed(1) + ' blocks/s'],
      ['ETA', s.syncing ? esc(fmtDur(s.etaseconds)) : '—'],
      ['sessions', fmtNum(s.sessions)],
      ['orphans', fmtNum(s.orphans) + ' (' + fmtBytes(s.orphanbytes) + '), ' + fmtNum(s.orphanfetches) + ' parent fetches in flight'],
      ['last session', ls.reason ? esc(ls.reason) + ': ' + fmtNum(ls.blocks) + ' blocks in ' + (ls.seconds || 0).toFixed(2) + ' s from <code>' +
        esc(short(ls.peer, 6)) + '</code>, ' + esc(ago(ls.at)) + (ls.error ? '<br><span class="muted">' + esc(ls.error) + '</span>' : '') : '<span class="muted">none yet</span>'],
      ['peers in backoff', fmtNum(s.backoffs)],
    ]);
  }

  function sparkline(svg, series, cls) {
    const w = 400, h = Number(svg.getAttribute('height'));
    let max = 1;
    for (const s of series) for (const v of s) max = Math.max(max, v);
    let out = '';
    series.forEach((s, k) => {
      if (s.length < 2) return;
      const span = Math.max(s.length, 30) - 1; // fills the width once half a minute is drawn
      const pts = s.map((v, i) => (w * i / span).toFixed(1) + ',' + (h - 4 - (h - 8) * v / max).toFixed(1));
      out += '<polyline class="' + cls[k] + '" points="' + pts.join(' ') + '"/>';
    });
    svg.setAttribute('viewBox', '0 0 ' + w + ' ' + h);
    svg.innerHTML = out;
    return max;
  }

  function drawMining(p) {
    const m = p.mining || {}, n = p.net || {}, g = m.gossip || {}, a = p.arrivals || {}, sm = p.stream || {};
    $('mining-state').innerHTML = m.generating ? tag('mining, ' + m.workers + ' workers', 'good') : tag('not mining');
    st.hashHist.push(m.hashespersecond || 0);
    st.bwHist.push([n.raterecv || 0, n.ratesent || 0]);
    while (st.hashHist.length > HISTORY) st.hashHist.shift();
    while (st.bwHist.length > HISTORY) st.bwHist.shift();
    kv($('mining-kv'), [
      ['hash rate', fmtRate(m.hashespersecond) + 'H/s'],
      ['blocks mined', fmtNum(m.blocksmined)],
      ['arrived since start', ['mined', 'gossip', 'sync'].map((k) => fmtNum(a[k] || 0) + ' ' + k).join(', ')],
    ]);
    // Solve times: one bar per block, oldest first.
    const times = m.solvetimesms || [];
    const svg = $('solve-chart'), w = 400, h = 90;
    let max = 1;
    for (const t of times) max = Math.max(max, t);
    const bw = w / Math.max(times.length, 30);
    svg.setAttribute('viewBox', '0 0 ' + w + ' ' + h);
    svg.innerHTML = times.map((t, i) => {
      const bh = Math.max(1, (h - 14) * t / max);
      return '<rect class="bar" x="' + (i * bw).toFixed(1) + '" y="' + (h - bh).toFixed(1) + '" width="' + Math.max(1, bw - 1).toFixed(1) + '" height="' + bh.toFixed(1) + '"><title>' + t + ' ms</title></rect>';
    }).join('') + (times.length ? '' : '<text class="lbl" x="8" y="20">no block mined yet</text>');
    $('solve-max').textContent = times.length ? '(' + times.length + ' blocks, longest ' + fmtNum(max) + ' ms, mean ' +
      fmtNum(Math.round(times.reduce((x, y) => x + y, 0) / times.length)) + ' ms)' : '';
    sparkline($('hash-chart'), [st.hashHist], ['line']);
    $('hash-now').textContent = '(' + fmtRate(m.hashespersecond) + 'H/s now)';
    sparkline($('bw-chart'), [st.bwHist.map((x) => x[0]), st.bwHist.map((x) => x[1])], ['line', 'line2']);
    $('bw-now').textContent = '(in ' + fmtBytes(n.raterecv) + '/s, out ' + fmtBytes(n.ratesent) + '/s; total ' + fmtBytes(n.bytesrecv) + ' in, ' + fmtBytes(n.bytessent) + ' out)';
    kv($('gossip-kv'), [
      ['gossip', fmtNum(g.accepted) + ' accepted, ' + fmtNum(g.rejected) + ' rejected, ' + fmtNum(g.ignored) + ' ignored, ' +
        fmtNum(g.duplicate) + ' duplicate, ' + fmtNum(g.orphan) + ' orphan, ' + fmtNum(g.dropped) + ' dropped; mesh ' + fmtNum(g.meshpeers) + ' peers'],
      ['dashboard stream', fmtNum(sm.clients) + ' open, ' + fmtNum(sm.dropped) + ' events dropped, ' + fmtNum(sm.resyncs) + ' resyncs, ' + fmtNum(sm.lost) + ' blocks lost' +
        '; this tab: ' + fmtNum(st.dropped) + ' dropped, ' + fmtNum(st.resyncs) + ' resyncs'],
    ]);
  }

  // ---- the stream ----

  function setConn(text, cls) {
    const el = $('h-conn');
    el.textContent = text;
    el.className = 'conn ' + cls;
  }

  const es = new EventSource('/events');
  es.addEventListener('open', () => setConn('live', 'conn-live'));
  es.addEventListener('error', () => {
    if (es.readyState === EventSource.CLOSED) {
      setConn('disconnected: reload with the URL the node logged', 'conn-down');
    } else {
      setConn('reconnecting', 'conn-wait');
    }
  });
  es.addEventListener('snapshot', (e) => reset(JSON.parse(e.data)));
  es.addEventListener('resync', (e) => reset(JSON.parse(e.data)));
  es.addEventListener('block', (e) => addBlock(JSON.parse(e.data)));
  es.addEventListener('panels', (e) => setPanels(JSON.parse(e.data)));
  es.addEventListener('colours', (e) => {
    const cs = JSON.parse(e.data);
    for (const h of Object.keys(cs)) {
      const b = st.blocks.get(h);
      if (!b) continue;
      delete b.blue; delete b.inchain; delete b.bluescore;
      Object.assign(b, cs[h]);
    }
    schedule();
  });
})();

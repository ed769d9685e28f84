/**
 * The page's own script (plain browser JS, inlined into report.html and the live view): renders
 * the model in #forkchaos-data, draws each devnet timeline with uPlot (one series per validator,
 * fault windows as shaded labelled bands, commit and rejection ticks, catch-up and MTTR marks),
 * and in the live view appends what /events sends. What each chart plots is written back to its
 * `data-plot` attribute and to `window.forkchaos.plots`, so a test reads what was drawn.
 * No network: the live view's EventSource is the page's own origin.
 */
export const pageScript = String.raw`
(function () {
  'use strict';
  var model = JSON.parse(document.getElementById('forkchaos-data').textContent);
  var state = { model: model, plots: [], events: 0, done: !model.live };
  window.forkchaos = state;
  var palette = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
  var MAX_EVENTS = 2000;

  function el(tag, attrs, kids) {
    var e = document.createElement(tag);
    if (attrs) for (var k in attrs) if (attrs[k] !== undefined && attrs[k] !== null) e.setAttribute(k, attrs[k]);
    (kids || []).forEach(function (c) { e.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c); });
    return e;
  }
  function table(head, rows, rowClass) {
    return el('table', null, [el('thead', null, [el('tr', null, head.map(function (h) { return el('th', null, [h]); }))]),
      el('tbody', null, rows.map(function (r, i) { return el('tr', { class: rowClass ? rowClass(i) : null }, r.map(function (c) { return el('td', null, [c === null || c === undefined ? '—' : c]); })); }))]);
  }
  function sec(ms) { return ms === null || ms === undefined ? '—' : (ms / 1000).toFixed(1) + ' s'; }

  // Tests tab: one row per scenario, its state and verdict as they land.
  var rows = {};
  function setState(name, target, st, verdict, ms) {
    var r = rows[name];
    if (!r) {
      r = rows[name] = { tr: el('tr', { 'data-scenario': name }), cells: [] };
      for (var i = 0; i < 5; i++) { var td = el('td'); r.cells.push(td); r.tr.appendChild(td); }
      r.cells[0].textContent = name;
      document.querySelector('#states tbody').appendChild(r.tr);
    }
    if (target) r.cells[1].textContent = target;
    if (st) { r.cells[2].textContent = st; r.tr.setAttribute('data-state', st); }
    if (verdict) { r.cells[3].textContent = verdict; r.cells[3].className = 'v-' + verdict; r.tr.setAttribute('data-verdict', verdict); }
    if (ms !== undefined) r.cells[4].textContent = sec(ms);
  }

  // forkchaos ui: the chaos API's experiments by id, their latest state.
  var experiments = {};
  function summary() {
    if (model.proxy) {
      var tally = {};
      Object.keys(experiments).forEach(function (id) { var x = experiments[id]; var k = x.verdict || x.state; tally[k] = (tally[k] || 0) + 1; });
      var list = Object.keys(tally).map(function (k) { return tally[k] + ' ' + k; });
      var box = document.getElementById('summary');
      box.textContent = (list.join(', ') || 'no experiments yet') + ' · watching forkchaos proxy at ' + model.proxy;
      box.appendChild(el('div', { class: 'muted' }, ['inject through ', el('code', null, ['POST ' + model.proxy + '/chaos/inject']), '; each experiment lands here as it runs']));
      return;
    }
    var counts = {};
    model.scenarios.forEach(function (s) { counts[s.verdict] = (counts[s.verdict] || 0) + 1; });
    var parts = Object.keys(counts).map(function (v) { return counts[v] + ' ' + v; });
    var text = (parts.join(', ') || 'no scenarios yet') + ' · seed ' + model.seed + ' · ' + model.target + ' · ' + (model.live && !state.done ? 'running…' : sec(model.durationMs));
    var s = document.getElementById('summary');
    s.textContent = text;
    s.appendChild(el('div', { class: 'muted' }, ['replay: ', el('code', null, [model.replay])]));
  }

  function scenario(s) {
    var box = el('div', { class: 'scenario', id: 'scenario-' + s.name, 'data-verdict': s.verdict });
    box.appendChild(el('h2', null, [el('span', { class: 'v-' + s.verdict }, [s.verdict]), ' ', s.name, ' ', el('span', { class: 'muted' }, [s.file + ' · ' + s.target + ' · ' + sec(s.durationMs) + (s.mttrMs !== null ? ' · MTTR ' + s.mttrMs + ' ms' : '')])]));
    box.appendChild(el('p', null, [el('b', null, ['Hypothesis: ']), s.hypothesis]));
    box.appendChild(el('p', { class: 'reason' }, [el('b', null, ['Reason: ']), s.reason]));
    box.appendChild(el('p', null, ['Seed ', el('code', null, [String(s.seed)]), ' · replay: ', el('code', null, [s.replay])]));
    if (s.faults.length) box.appendChild(table(['fault', 'target', 'params', 'applied', 'reverted', 'seen'], s.faults.map(function (f) { return [f.type, f.target, f.params, sec(f.tStart), sec(f.tStop), f.seen || f.took]; })));
    if (s.devnet) devnet(box, s);
    if (s.stress) stress(box, s);
    if (s.steps) steps(box, s);
    if (s.views) views(box, s.views);
    s.checks.forEach(function (g) {
      box.appendChild(el('h3', null, ['Checks · ' + g.phase]));
      box.appendChild(table(['check', 'kind', 'ok', 'observed', 'expected'], g.rows.map(function (c) { return [c.name, c.kind, c.ok ? 'ok' : 'BROKE', c.observed, c.expected]; }), function (i) { return g.rows[i].ok ? null : 'bad'; }));
    });
    document.getElementById('scenarios').appendChild(box);
    setState(s.name, s.target, 'done', s.verdict, s.durationMs);
  }

  function devnet(box, s) {
    var d = s.devnet;
    var st = d.stats;
    box.appendChild(el('p', { class: 'muted' }, ['first commit ' + sec(st.firstCommitMs) + ' · catch-up ' + (st.catchUpMs === null ? '—' : st.catchUpMs + ' ms') + ' · rejection latency ' + (st.rejectionLatencyMs === null ? '—' : st.rejectionLatencyMs + ' ms') + ' · inclusion ' + (st.inclusionMs ? 'p50 ' + Math.round(st.inclusionMs.p50) + ' ms, p99 ' + Math.round(st.inclusionMs.p99) + ' ms (n ' + st.inclusionMs.n + ')' : '—') + ' · max RSS ' + st.maxRssMb + ' MB · ' + d.samples + ' samples, ' + d.t.length + ' plotted']));
    var div = el('div', { class: 'chart timeline', 'data-scenario': s.name });
    box.appendChild(div);
    if (d.t.length === 0 || typeof uPlot === 'undefined') return;
    var series = [{ label: 's' }];
    for (var v = 0; v < d.validators; v++) series.push({ label: 'validator-' + v, stroke: palette[v % palette.length], width: 1.5, points: { show: false } });
    var xmax = d.t[d.t.length - 1];
    function x(u, t) { return u.valToPos(Math.min(t, xmax), 'x', true); }
    var opts = {
      width: Math.max(400, Math.min(1100, window.innerWidth - 80)), height: 300,
      scales: { x: { time: false } },
      axes: [{ label: 'seconds since the scenario started' }, { label: 'height' }],
      series: series,
      hooks: {
        drawClear: [function (u) {
          var c = u.ctx; c.save();
          d.bands.forEach(function (b, i) {
            var x0 = x(u, b.from), x1 = x(u, b.to === null ? xmax : b.to);
            c.fillStyle = i % 2 ? 'rgba(214,39,40,0.12)' : 'rgba(255,127,14,0.16)';
            c.fillRect(x0, u.bbox.top, Math.max(1, x1 - x0), u.bbox.height);
          });
          c.restore();
        }],
        draw: [function (u) {
          var c = u.ctx, top = u.bbox.top, bottom = u.bbox.top + u.bbox.height, r = window.devicePixelRatio || 1;
          c.save(); c.font = (11 * r) + 'px sans-serif'; c.textAlign = 'left'; c.textBaseline = 'alphabetic';
          d.bands.forEach(function (b, i) { c.fillStyle = '#a0410d'; c.fillText(b.label, x(u, b.from) + 4 * r, top + (14 + 13 * i) * r); });
          c.strokeStyle = '#2ca02c'; c.lineWidth = r;
          d.commits.forEach(function (m) { var p = x(u, m.t); c.beginPath(); c.moveTo(p, bottom); c.lineTo(p, bottom - 6 * r); c.stroke(); });
          c.strokeStyle = '#c0262d'; c.lineWidth = 2 * r;
          d.rejections.forEach(function (m) { var p = x(u, m.t); c.beginPath(); c.moveTo(p, top); c.lineTo(p, top + 8 * r); c.stroke(); });
          c.setLineDash([4 * r, 4 * r]); c.strokeStyle = '#333'; c.lineWidth = r;
          d.marks.forEach(function (m, i) { var p = x(u, m.t); c.beginPath(); c.moveTo(p, top); c.lineTo(p, bottom); c.stroke(); c.fillStyle = '#333'; c.fillText(m.label, p + 3 * r, bottom - (10 + 13 * i) * r); });
          c.restore();
        }],
      },
    };
    var u = new uPlot(opts, [d.t].concat(d.heights), div);
    var plotted = { scenario: s.name, series: u.series.slice(1).map(function (x) { return x.label; }), points: u.data[0].length, bands: d.bands, commits: d.commits.length, rejections: d.rejections.length, marks: d.marks };
    div.setAttribute('data-plot', JSON.stringify(plotted));
    state.plots.push(plotted);
    if (d.inclusion && d.inclusion.t.length) inclusion(box, s, d, xmax);
    box.appendChild(el('p', { class: 'muted' }, ['green ticks: commits (' + d.commits.length + ') · red ticks: rejected proposals (' + d.rejections.length + ') · shaded: fault windows · dashed: catch-up / MTTR']));
    if (d.rejections.length) box.appendChild(table(['at', 'rejected by', 'proposer', 'height', 'layer', 'latency', 'reason'], d.rejections.slice(0, 50).map(function (r) { return [r.t.toFixed(1) + ' s', 'validator-' + r.node, 'validator-' + r.proposer, r.height, r.layer, r.latencyMs + ' ms', r.reason]; })));
  }

  // The inclusion latency of honest transfers sent while the faults ran, on the timeline's x axis,
  // with the same fault bands.
  function inclusion(box, s, d, xmax) {
    var inc = d.inclusion;
    box.appendChild(el('h3', null, ['Inclusion latency (' + inc.t.length + ' transfers plotted)']));
    var div = el('div', { class: 'chart inclusion', 'data-scenario': s.name });
    box.appendChild(div);
    var opts = {
      width: Math.max(400, Math.min(1100, window.innerWidth - 80)), height: 200,
      scales: { x: { time: false, range: [0, Math.max(xmax, inc.t[inc.t.length - 1])] } },
      axes: [{ label: 'seconds since the scenario started (transfer sent)' }, { label: 'ms to inclusion' }],
      series: [{ label: 's' }, { label: 'inclusion ms', stroke: '#9467bd', width: 1.5, points: { show: true, size: 4 } }],
      hooks: {
        drawClear: [function (u) {
          var c = u.ctx; c.save();
          d.bands.forEach(function (b) {
            var x0 = u.valToPos(b.from, 'x', true), x1 = u.valToPos(b.to === null ? xmax : b.to, 'x', true);
            c.fillStyle = 'rgba(255,127,14,0.16)'; c.fillRect(x0, u.bbox.top, Math.max(1, x1 - x0), u.bbox.height);
          });
          c.restore();
        }],
      },
    };
    var u = new uPlot(opts, [inc.t, inc.ms], div);
    var plotted = { scenario: s.name, chart: 'inclusion', series: ['inclusion ms'], points: u.data[0].length, data: [Array.prototype.slice.call(u.data[0]), Array.prototype.slice.call(u.data[1])] };
    div.setAttribute('data-plot', JSON.stringify(plotted));
    state.plots.push(plotted);
  }

  // A stress scenario: the walked pair price and feed (bps from their start) against the share
  // price (bps from after the first cycle) on the left axis, the bounty per cycle on the right.
  function stress(box, s) {
    var d = s.stress;
    box.appendChild(el('h3', null, ['Stress: walked price and feed against share price and bounty (' + d.cycles + ' cycles' + (d.cycle.length < d.cycles ? ', ' + d.cycle.length + ' plotted' : '') + ')']));
    var div = el('div', { class: 'chart stress', 'data-scenario': s.name });
    box.appendChild(div);
    if (typeof uPlot === 'undefined') return;
    var opts = {
      width: Math.max(400, Math.min(1100, window.innerWidth - 80)), height: 280,
      scales: { x: { time: false }, bps: {}, bounty: {} },
      axes: [{ label: 'stress cycle' }, { scale: 'bps', label: 'bps from start' }, { scale: 'bounty', side: 1, label: 'bounty (wei ÷ 1e18)', grid: { show: false } }],
      series: [
        { label: 'cycle' },
        { label: 'pair price', scale: 'bps', stroke: '#1f77b4', width: 1.5, points: { show: false } },
        { label: 'feed', scale: 'bps', stroke: '#ff7f0e', width: 1.5, points: { show: false } },
        { label: 'share price', scale: 'bps', stroke: '#2ca02c', width: 2, points: { show: false } },
        { label: 'bounty', scale: 'bounty', stroke: '#9467bd', width: 1, dash: [4, 3], points: { show: false } },
      ],
    };
    var u = new uPlot(opts, [d.cycle, d.pairBps, d.feedBps, d.sharePriceBps, d.bounty], div);
    var plotted = { scenario: s.name, chart: 'stress', series: u.series.slice(1).map(function (x) { return x.label; }), points: u.data[0].length, data: u.data.map(function (col) { return Array.prototype.slice.call(col); }) };
    div.setAttribute('data-plot', JSON.stringify(plotted));
    state.plots.push(plotted);
  }

  function steps(box, s) {
    var rowsOf = s.steps.rows;
    box.appendChild(el('h3', null, ['Steps (' + s.steps.total + (rowsOf.length < s.steps.total ? ', ' + rowsOf.length + ' shown: failed first, the rest evenly spaced' : '') + ')']));
    var strip = el('div', { class: 'strip', 'data-steps': String(rowsOf.length) });
    rowsOf.forEach(function (r) { strip.appendChild(el('span', { title: r.phase + ' #' + r.i + ' ' + r.label + (r.reason ? ': ' + r.reason : ''), style: 'display:inline-block;width:6px;height:14px;margin-right:1px;background:' + (r.ok ? '#2ca02c' : '#c0262d') })); });
    box.appendChild(strip);
    box.appendChild(table(['#', 'phase', 'step', 'outcome', 'reason / signals'], rowsOf.map(function (r) { return [r.i, r.phase, r.label, r.ok ? 'ok' : 'reverted', [r.reason, (r.signals || []).join(', ')].filter(Boolean).join(' · ')]; }), function (i) { return rowsOf[i].ok ? null : 'bad'; }));
  }

  function views(box, v) {
    var cols = Object.keys(v);
    var keys = [];
    cols.forEach(function (c) { Object.keys(v[c]).forEach(function (k) { if (keys.indexOf(k) < 0) keys.push(k); }); });
    box.appendChild(el('h3', null, ['Protocol views']));
    box.appendChild(table(['view'].concat(cols), keys.map(function (k) { return [k].concat(cols.map(function (c) { return v[c][k]; })); })));
  }

  var eventsShown = 0;
  function event(text, cls) {
    var ol = document.getElementById('events');
    ol.appendChild(el('li', { class: cls, 'data-at': String(Date.now()) }, [text]));
    if (++eventsShown > MAX_EVENTS) ol.removeChild(ol.firstChild);
    state.events++;
  }

  document.querySelectorAll('nav button').forEach(function (b) {
    b.addEventListener('click', function () {
      document.querySelectorAll('nav button').forEach(function (o) { o.className = o === b ? 'on' : ''; });
      document.getElementById('tab-tests').hidden = b.getAttribute('data-tab') !== 'tests';
      document.getElementById('tab-timeline').hidden = b.getAttribute('data-tab') !== 'timeline';
    });
  });

  model.scenarios.forEach(function (s) {
    scenario(s);
    s.faults.forEach(function (f) {
      event(s.name + ' +' + sec(f.tStart) + ' fault applied ' + f.type + (f.target ? ' @ ' + f.target : ''));
      if (f.tStop !== null) event(s.name + ' +' + sec(f.tStop) + ' fault reverted ' + f.type);
    });
    event(s.name + ': ' + s.verdict, 'v-' + s.verdict);
  });
  if (model.proxy) document.querySelector('#states th').textContent = 'experiment';
  summary();
  document.body.setAttribute('data-state', state.done ? 'done' : 'running');

  if (model.live) {
    var source = new EventSource('events');
    var started = Date.now();
    function at() { return '+' + ((Date.now() - started) / 1000).toFixed(1) + ' s '; }
    source.onmessage = function (m) {
      var e = JSON.parse(m.data);
      if (e.type === 'phase') { setState(e.scenario, null, e.phase, null); event(at() + e.scenario + ' phase ' + e.phase); }
      else if (e.type === 'fault') event(at() + e.scenario + ' fault ' + (e.action === 'apply' ? 'applied ' : 'reverted ') + e.fault, 'fault');
      else if (e.type === 'commit') event(at() + e.scenario + ' commit height ' + e.height + ' (' + e.commits + ' in this phase)');
      else if (e.type === 'node') event(at() + e.scenario + ' validator-' + e.node + ' ' + e.state);
      else if (e.type === 'scenario-done') { model.scenarios.push(e.scenario); scenario(e.scenario); event(at() + e.scenario.name + ': ' + e.scenario.verdict, 'v-' + e.scenario.verdict); summary(); }
      else if (e.type === 'experiment') experiment(e);
      else if (e.type === 'toxic') event(at() + 'toxic ' + e.action + ' ' + e.toxic + ' (' + e.toxicType + ', ' + e.stream + ') on ' + e.proxy, 'toxic');
      else if (e.type === 'notice') event(at() + e.text, 'notice');
      else if (e.type === 'end') { state.done = true; model.durationMs = e.durationMs; summary(); document.body.setAttribute('data-state', 'done'); event(at() + 'run finished'); source.close(); }
    };
    // forkchaos ui: one row per experiment (its state, then its verdict), a revert button while it is active with --ui-control.
    function experiment(e) {
      var before = experiments[e.id];
      experiments[e.id] = e;
      var name = e.id + ' ' + e.label;
      setState(name, e.target, e.state, e.verdict, e.ms === null ? undefined : e.ms);
      var r = rows[name];
      r.tr.setAttribute('data-id', e.id);
      r.cells[2].title = e.reason || '';
      if (model.control && e.state === 'active') {
        var b = el('button', { class: 'revert', 'data-id': e.id }, ['revert']);
        b.addEventListener('click', function () { b.disabled = true; fetch('control/revert/' + encodeURIComponent(e.id), { method: 'POST' }); });
        r.cells[2].appendChild(document.createTextNode(' '));
        r.cells[2].appendChild(b);
      }
      if (e.verdict && (!before || before.verdict !== e.verdict)) event(at() + name + ': ' + e.verdict + (e.mttrMs !== null ? ' (MTTR ' + e.mttrMs + ' ms)' : '') + (e.reason ? ' · ' + e.reason : ''), 'v-' + e.verdict);
      summary();
    }
    if (model.control && !model.proxy) {
      var stop = el('button', { id: 'stop' }, ['Stop the run (reverts every fault)']);
      stop.addEventListener('click', function () { fetch('control/stop', { method: 'POST' }); });
      document.querySelector('nav').appendChild(stop);
    }
  }
})();
`

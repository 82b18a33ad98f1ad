/**
 * The live topology page the admin listener serves at `/` (docs/operations.md, "Topology page"):
 * one self-contained HTML document, its style and script inline (nothing from a CDN, nothing
 * fetched but `/api/topology` of the same listener). The script polls `/api/topology` about once
 * a second (one request at a time, every 5 s while the tab is hidden), turns counter deltas into
 * rates, and draws this node, its routes and the members it knows as an SVG diagram and tables.
 * Every value from the node goes in through `textContent` or an attribute, never as markup.
 *
 * Hooks for tests and scripts: each member row is `tr[data-member="<node id>"]` with
 * `data-state` (alive, suspect, dead, left); `#status` has `data-live` (`yes`, `stale`, `no`).
 */

/** The page's style sheet. */
export const PAGE_STYLE = `
:root {
  --bg: #0d1117; --panel: #161b22; --panel2: #1c2330; --line: #2a3342; --text: #e6edf3;
  --muted: #8b98a9; --accent: #58a6ff;
  --alive: #3fb950; --suspect: #d29922; --dead: #f85149; --left: #6e7681;
  --direct: #2dd4bf; --punched: #a78bfa; --relayed: #f59e0b;
  color-scheme: dark;
}
@media (prefers-color-scheme: light) {
  :root {
    --bg: #f6f8fa; --panel: #ffffff; --panel2: #f0f3f6; --line: #d0d7de; --text: #1f2328;
    --muted: #59636e; --accent: #0969da; color-scheme: light;
  }
}
* { box-sizing: border-box; }
body {
  margin: 0; background: var(--bg); color: var(--text);
  font: 14px/1.45 ui-sans-serif, system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
}
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
header {
  display: flex; flex-wrap: wrap; align-items: center; gap: 14px 24px;
  padding: 16px 24px; border-bottom: 1px solid var(--line); background: var(--panel);
}
.brand { display: flex; align-items: center; gap: 10px; font-weight: 650; font-size: 18px; }
.brand svg { width: 28px; height: 28px; }
.ident { display: flex; flex-direction: column; min-width: 0; }
.ident .id { color: var(--muted); overflow: hidden; text-overflow: ellipsis; white-space: nowrap; max-width: 60ch; }
.chips { display: flex; gap: 6px; flex-wrap: wrap; }
.chip {
  display: inline-block; padding: 1px 8px; border-radius: 999px; border: 1px solid var(--line);
  background: var(--panel2); color: var(--muted); font-size: 12px; white-space: nowrap;
}
.chip.realm { color: var(--accent); border-color: color-mix(in srgb, var(--accent) 45%, transparent); }
#status { margin-left: auto; display: flex; align-items: center; gap: 8px; color: var(--muted); }
#status .dot { width: 10px; height: 10px; border-radius: 50%; background: var(--left); }
#status[data-live="yes"] .dot { background: var(--alive); box-shadow: 0 0 0 0 var(--alive); animation: pulse 2s infinite; }
#status[data-live="stale"] .dot { background: var(--suspect); }
#status[data-live="no"] .dot { background: var(--dead); }
@keyframes pulse {
  0% { box-shadow: 0 0 0 0 color-mix(in srgb, var(--alive) 60%, transparent); }
  70% { box-shadow: 0 0 0 8px transparent; } 100% { box-shadow: 0 0 0 0 transparent; }
}
main { padding: 20px 24px 40px; display: grid; gap: 18px; max-width: 1400px; margin: 0 auto; }
.tiles { display: grid; grid-template-columns: repeat(auto-fit, minmax(160px, 1fr)); gap: 12px; }
.tile { background: var(--panel); border: 1px solid var(--line); border-radius: 10px; padding: 12px 14px; }
.tile .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.tile .value { font-size: 26px; font-weight: 650; font-variant-numeric: tabular-nums; }
.tile .sub { color: var(--muted); font-size: 12px; }
.tile.warn .value { color: var(--dead); }
.grid2 { display: grid; grid-template-columns: minmax(340px, 1fr) minmax(340px, 1fr); gap: 18px; }
@media (max-width: 980px) { .grid2 { grid-template-columns: 1fr; } }
section { background: var(--panel); border: 1px solid var(--line); border-radius: 10px; overflow: hidden; }
section h2 {
  margin: 0; padding: 10px 14px; font-size: 13px; font-weight: 600; color: var(--muted);
  text-transform: uppercase; letter-spacing: .05em; border-bottom: 1px solid var(--line);
  display: flex; justify-content: space-between; align-items: center;
}
#graph { width: 100%; height: 380px; display: block; }
#graph text {
  fill: var(--text); font-size: 11px; paint-order: stroke; stroke: var(--panel);
  stroke-width: 4px; stroke-linejoin: round;
}
#graph .rtt { fill: var(--muted); font-size: 10px; }
.legend { display: flex; gap: 14px; flex-wrap: wrap; padding: 8px 14px 12px; color: var(--muted); font-size: 12px; }
.legend i { display: inline-block; width: 18px; height: 3px; vertical-align: middle; margin-right: 5px; border-radius: 2px; }
.legend i.dot { width: 9px; height: 9px; border-radius: 50%; }
table { width: 100%; border-collapse: collapse; }
th, td { text-align: left; padding: 7px 14px; border-bottom: 1px solid var(--line); vertical-align: middle; }
th { color: var(--muted); font-weight: 500; font-size: 12px; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr:last-child td { border-bottom: none; }
tr[data-state="dead"] td, tr[data-state="left"] td { color: var(--muted); }
.state {
  display: inline-flex; align-items: center; gap: 6px; padding: 1px 8px; border-radius: 999px;
  font-size: 12px; font-weight: 600; border: 1px solid currentColor;
}
.state::before { content: ""; width: 7px; height: 7px; border-radius: 50%; background: currentColor; }
.s-alive { color: var(--alive); } .s-suspect { color: var(--suspect); }
.s-dead { color: var(--dead); } .s-left { color: var(--left); }
.path { font-weight: 600; font-size: 12px; }
.p-direct { color: var(--direct); } .p-punched { color: var(--punched); } .p-relayed { color: var(--relayed); }
.empty { padding: 16px 14px; color: var(--muted); }
.spark { width: 100%; height: 90px; display: block; padding: 6px 0; }
footer { color: var(--muted); font-size: 12px; text-align: center; padding-bottom: 24px; }
footer a { color: var(--accent); }
`;

/** The page's script (plain ES2020; no template literals, so it sits in this module as is). */
export const PAGE_SCRIPT = `
"use strict";
(function () {
  var SVGNS = "http://www.w3.org/2000/svg";
  var prev = null;
  var history = [];
  var lastOk = 0;
  var $ = function (id) { return document.getElementById(id); };

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    if (attrs) for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function svg(tag, attrs, text) {
    var e = document.createElementNS(SVGNS, tag);
    if (attrs) for (var k in attrs) e.setAttribute(k, String(attrs[k]));
    if (text !== undefined) e.textContent = String(text);
    return e;
  }
  function short(id) { return id ? id.slice(0, 12) + "\\u2026" : ""; }
  function fmtRate(v) {
    if (v === null || !isFinite(v)) return "\\u2014";
    if (v >= 1000) return (v / 1000).toFixed(1) + "k";
    return v >= 10 ? v.toFixed(0) : v.toFixed(1);
  }
  function fmtBytes(v) {
    if (v === null || !isFinite(v)) return "\\u2014";
    if (v >= 1048576) return (v / 1048576).toFixed(1) + " MiB/s";
    if (v >= 1024) return (v / 1024).toFixed(1) + " KiB/s";
    return v.toFixed(0) + " B/s";
  }
  function fmtAgo(ms) {
    if (ms === null || ms === undefined) return "never";
    if (ms < 1500) return "now";
    var s = Math.round(ms / 1000);
    if (s < 90) return s + " s ago";
    var m = Math.round(s / 60);
    if (m < 90) return m + " min ago";
    return Math.round(m / 60) + " h ago";
  }
  function fmtUptime(ms) {
    var s = Math.floor(ms / 1000), d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600);
    var m = Math.floor((s % 3600) / 60);
    if (d > 0) return d + "d " + h + "h";
    if (h > 0) return h + "h " + m + "m";
    return m + "m " + (s % 60) + "s";
  }
  function rate(cur, old, dt) {
    if (old === undefined || old === null || dt <= 0) return null;
    return Math.max(0, cur - old) / dt;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  function setText(id, v) { var e = $(id); if (e.textContent !== String(v)) e.textContent = String(v); }

  function status(live, text) {
    var s = $("status");
    s.setAttribute("data-live", live);
    $("status-text").textContent = text;
  }

  function render(t) {
    var dt = prev ? (t.at - prev.at) / 1000 : 0;
    var rin = prev ? rate(t.messages.in, prev.messages.in, dt) : null;
    var rout = prev ? rate(t.messages.out, prev.messages.out, dt) : null;
    var dropsTotal = 0, dropsPrev = 0;
    for (var k in t.drops) dropsTotal += t.drops[k];
    if (prev) for (var k2 in prev.drops) dropsPrev += prev.drops[k2];
    var rdrop = prev ? rate(dropsTotal, dropsPrev, dt) : null;
    if (rin !== null) {
      history.push([rin, rout]);
      if (history.length > 120) history.shift();
    }

    document.title = "Macula \\u00b7 " + short(t.node.id) + " \\u00b7 " + t.node.realm;
    setText("node-id", t.node.id);
    $("node-id").title = t.node.id;
    setText("node-realm", "realm " + t.node.realm);
    setText("node-version", t.node.version ? "v" + t.node.version : "");
    setText("node-url", t.node.url);
    setText("node-uptime", "up " + fmtUptime(t.node.uptimeMs));
    var tags = $("node-tags"); clear(tags);
    t.node.tags.forEach(function (x) { tags.appendChild(el("span", { "class": "chip" }, x)); });

    var counts = { alive: 0, suspect: 0, dead: 0, left: 0 };
    t.members.forEach(function (m) { if (counts[m.state] !== undefined) counts[m.state]++; });
    setText("members-alive", counts.alive);
    setText("members-sub", "of " + t.membersTotal + " known \\u00b7 " + counts.suspect + " suspect \\u00b7 " + (counts.dead + counts.left) + " gone");
    setText("routes-count", t.routes.length);
    var byPath = { direct: 0, punched: 0, relayed: 0 };
    t.routes.forEach(function (r) { if (byPath[r.path] !== undefined) byPath[r.path]++; });
    setText("routes-sub", byPath.direct + " direct \\u00b7 " + byPath.punched + " punched \\u00b7 " + byPath.relayed + " relayed");
    setText("rate-in", fmtRate(rin));
    setText("rate-out", fmtRate(rout));
    setText("total-in", t.messages.in + " taken \\u00b7 " + t.messages.calls + " calls");
    setText("total-out", t.messages.delivered + " delivered \\u00b7 " + t.messages.forwarded + " forwarded");
    setText("drops", fmtRate(rdrop));
    setText("drops-sub", dropsTotal + " in all");
    $("drops-tile").className = "tile" + (rdrop ? " warn" : "");
    setText("clients", t.node.clients);

    drawSpark(history);
    drawGraph(t);
    drawMembers(t);
    drawRoutes(t, dt);
    drawDrops(t, dt);
    prev = t;
  }

  function drawSpark(h) {
    var s = $("spark"); clear(s);
    if (h.length < 2) return;
    var max = 1;
    h.forEach(function (p) { max = Math.max(max, p[0], p[1]); });
    var w = 300, hh = 90;
    [[0, "var(--accent)"], [1, "var(--direct)"]].forEach(function (c) {
      var pts = h.map(function (p, i) {
        return (i * w / (h.length - 1)).toFixed(1) + "," + (hh - 3 - (p[c[0]] / max) * (hh - 8)).toFixed(1);
      }).join(" ");
      s.appendChild(svg("polyline", { points: pts, fill: "none", stroke: c[1], "stroke-width": 1.6, "vector-effect": "non-scaling-stroke" }));
    });
  }

  function drawGraph(t) {
    var g = $("graph"); clear(g);
    var W = 640, H = 380, cx = W / 2, cy = H / 2;
    var routes = t.routes.slice(0, 24);
    var routed = {};
    routes.forEach(function (r) { routed[r.nodeId] = r; });
    var state = {};
    t.members.forEach(function (m) { state[m.id] = m.state; });
    var others = t.members.filter(function (m) { return !m.self && !routed[m.id]; }).slice(0, 48);
    var r1 = Math.min(W, H) * 0.3, r2 = Math.min(W, H) * 0.45;
    var edges = svg("g"), nodes = svg("g");
    g.appendChild(edges); g.appendChild(nodes);
    function color(st) { return "var(--" + (st === "alive" || st === "suspect" || st === "dead" || st === "left" ? st : "left") + ")"; }
    others.forEach(function (m, i) {
      var a = (i / Math.max(1, others.length)) * Math.PI * 2 - Math.PI / 2 + Math.PI / Math.max(1, routes.length);
      var x = cx + Math.cos(a) * r2, y = cy + Math.sin(a) * r2;
      var c = svg("circle", { cx: x, cy: y, r: 6, fill: color(m.state), opacity: 0.8 });
      c.appendChild(svg("title", {}, m.id + " (" + m.state + ", no route)"));
      nodes.appendChild(c);
    });
    routes.forEach(function (r, i) {
      var a = (i / Math.max(1, routes.length)) * Math.PI * 2 - Math.PI / 2;
      var x = cx + Math.cos(a) * r1, y = cy + Math.sin(a) * r1;
      var line = svg("line", {
        x1: cx, y1: cy, x2: x, y2: y, stroke: "var(--" + r.path + ")", "stroke-width": 2.4,
        "stroke-dasharray": r.path === "relayed" ? "6 5" : r.path === "punched" ? "2 4" : "none",
        "stroke-linecap": "round"
      });
      line.appendChild(svg("title", {}, r.path + (r.via ? " via " + r.via : "") + ", " + r.rttMs + " ms"));
      edges.appendChild(line);
      var mx = cx + Math.cos(a) * r1 * 0.55, my = cy + Math.sin(a) * r1 * 0.55;
      edges.appendChild(svg("text", { x: mx + 4, y: my - 4, "class": "rtt" }, r.rttMs + " ms" + (r.via ? " via " + short(r.via) : "")));
      var st = state[r.nodeId] || "alive";
      var c = svg("circle", { cx: x, cy: y, r: 11, fill: "var(--panel2)", stroke: color(st), "stroke-width": 3 });
      c.appendChild(svg("title", {}, r.nodeId + " (" + st + ")"));
      nodes.appendChild(c);
      var lx = x + (Math.cos(a) >= 0 ? 16 : -16);
      nodes.appendChild(svg("text", { x: lx, y: y + 4, "text-anchor": Math.cos(a) >= 0 ? "start" : "end" }, (r.name && r.name !== "node" ? r.name + " " : "") + short(r.nodeId)));
    });
    var me = svg("circle", { cx: cx, cy: cy, r: 20, fill: "var(--accent)", stroke: "var(--panel)", "stroke-width": 4 });
    me.appendChild(svg("title", {}, "this node " + t.node.id));
    nodes.appendChild(me);
    nodes.appendChild(svg("text", { x: cx, y: cy + 38, "text-anchor": "middle" }, "this node " + short(t.node.id)));
    if (routes.length === 0) {
      nodes.appendChild(svg("text", { x: cx, y: cy - 34, "text-anchor": "middle", "class": "rtt" }, "no routes yet"));
    }
  }

  function drawMembers(t) {
    var body = $("members-body"); clear(body);
    setText("members-count", t.membersTotal + (t.membersTotal > t.members.length ? " (first " + t.members.length + " shown)" : ""));
    t.members.forEach(function (m) {
      var tr = el("tr", { "data-member": m.id, "data-state": m.state });
      var st = el("td"); st.appendChild(el("span", { "class": "state s-" + m.state }, m.state)); tr.appendChild(st);
      var id = el("td", { "class": "mono", title: m.id }, short(m.id) + (m.self ? "  (this node)" : ""));
      tr.appendChild(id);
      tr.appendChild(el("td", { "class": "mono" }, m.addr.replace("quic://", "")));
      var tg = el("td"); var ch = el("span", { "class": "chips" });
      m.tags.forEach(function (x) { ch.appendChild(el("span", { "class": "chip" }, x)); });
      tg.appendChild(ch); tr.appendChild(tg);
      tr.appendChild(el("td", {}, m.version));
      tr.appendChild(el("td", {}, m.self ? "\\u2014" : m.routed ? "route" : ""));
      tr.appendChild(el("td", { "class": "num" }, m.self ? "\\u2014" : fmtAgo(m.lastSeenMs)));
      body.appendChild(tr);
    });
  }

  function drawRoutes(t, dt) {
    var body = $("routes-body"); clear(body);
    if (t.routes.length === 0) {
      var tr0 = el("tr"); var td0 = el("td", { colspan: 7, "class": "empty" }, "No routes to other nodes yet.");
      tr0.appendChild(td0); body.appendChild(tr0); return;
    }
    var old = {};
    if (prev) prev.routes.forEach(function (r) { old[r.nodeId] = r; });
    t.routes.forEach(function (r) {
      var o = old[r.nodeId];
      var tr = el("tr", { "data-route": r.nodeId, "data-path": r.path });
      tr.appendChild(el("td", { "class": "mono", title: r.nodeId }, (r.name && r.name !== "node" ? r.name + " " : "") + short(r.nodeId)));
      var p = el("td"); p.appendChild(el("span", { "class": "path p-" + r.path }, r.path)); tr.appendChild(p);
      tr.appendChild(el("td", { "class": "mono", title: r.via || "" }, r.via ? short(r.via) : "\\u2014"));
      tr.appendChild(el("td", { "class": "mono" }, r.remote));
      tr.appendChild(el("td", { "class": "num" }, r.rttMs + " ms"));
      tr.appendChild(el("td", { "class": "num" }, o ? fmtBytes(rate(r.bytesReceived, o.bytesReceived, dt)) : "\\u2014"));
      tr.appendChild(el("td", { "class": "num" }, o ? fmtBytes(rate(r.bytesSent, o.bytesSent, dt)) : "\\u2014"));
      body.appendChild(tr);
    });
  }

  function drawDrops(t, dt) {
    var body = $("drops-body"); clear(body);
    var any = false;
    Object.keys(t.drops).forEach(function (k) {
      var v = t.drops[k];
      if (!v) return;
      any = true;
      var tr = el("tr", { "data-drop": k });
      tr.appendChild(el("td", {}, k.replace(/_/g, " ")));
      tr.appendChild(el("td", { "class": "num" }, v));
      tr.appendChild(el("td", { "class": "num" }, prev ? fmtRate(rate(v, prev.drops[k] || 0, dt)) + "/s" : "\\u2014"));
      body.appendChild(tr);
    });
    if (!any) {
      var tr0 = el("tr"); tr0.appendChild(el("td", { colspan: 3, "class": "empty" }, "No messages dropped."));
      body.appendChild(tr0);
    }
  }

  function poll() {
    var ctl = typeof AbortController === "function" ? new AbortController() : null;
    var timer = setTimeout(function () { if (ctl) ctl.abort(); }, 5000);
    fetch("api/topology", { cache: "no-store", signal: ctl ? ctl.signal : undefined })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (t) {
        lastOk = Date.now();
        status("yes", "live");
        render(t);
      })
      .catch(function () {
        var ago = lastOk ? Math.round((Date.now() - lastOk) / 1000) : null;
        if (ago !== null && ago < 10) status("stale", "no answer for " + ago + " s");
        else status("no", "node unreachable" + (ago !== null ? " (last answer " + ago + " s ago)" : ""));
      })
      .then(function () {
        clearTimeout(timer);
        setTimeout(poll, document.hidden ? 5000 : 1000);
      });
  }
  poll();
})();
`;

/** The whole page: the document with its style and script inline. */
export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Macula node</title>
<link rel="icon" href="data:,">
<style>${PAGE_STYLE}</style>
</head>
<body>
<header>
  <div class="brand">
    <svg viewBox="0 0 32 32" aria-hidden="true">
      <circle cx="16" cy="16" r="5" fill="#58a6ff"/>
      <circle cx="5" cy="8" r="3" fill="#2dd4bf"/><circle cx="27" cy="9" r="3" fill="#a78bfa"/>
      <circle cx="24" cy="27" r="3" fill="#f59e0b"/><circle cx="6" cy="25" r="3" fill="#3fb950"/>
      <path d="M16 16L5 8M16 16L27 9M16 16L24 27M16 16L6 25" stroke="#8b98a9" stroke-width="1.4"/>
    </svg>
    Macula
  </div>
  <div class="ident">
    <span class="mono id" id="node-id">connecting…</span>
    <span class="chips">
      <span class="chip realm" id="node-realm"></span>
      <span class="chip" id="node-version"></span>
      <span class="chip mono" id="node-url"></span>
      <span class="chip" id="node-uptime"></span>
      <span class="chips" id="node-tags"></span>
    </span>
  </div>
  <div id="status" data-live="no"><span class="dot"></span><span id="status-text">connecting…</span></div>
</header>
<main>
  <div class="tiles">
    <div class="tile"><div class="label">Members alive</div><div class="value" id="members-alive">–</div><div class="sub" id="members-sub"></div></div>
    <div class="tile"><div class="label">Routes</div><div class="value" id="routes-count">–</div><div class="sub" id="routes-sub"></div></div>
    <div class="tile"><div class="label">Messages in /s</div><div class="value" id="rate-in">–</div><div class="sub" id="total-in"></div></div>
    <div class="tile"><div class="label">Messages out /s</div><div class="value" id="rate-out">–</div><div class="sub" id="total-out"></div></div>
    <div class="tile" id="drops-tile"><div class="label">Drops /s</div><div class="value" id="drops">–</div><div class="sub" id="drops-sub"></div></div>
    <div class="tile"><div class="label">Clients</div><div class="value" id="clients">–</div><div class="sub">attached to this node</div></div>
  </div>
  <div class="grid2">
    <section>
      <h2>Topology <span>this node and its routes</span></h2>
      <svg id="graph" viewBox="0 0 640 380" preserveAspectRatio="xMidYMid meet" role="img" aria-label="this node, its routes and the members it knows"></svg>
      <div class="legend">
        <span><i style="background:var(--direct)"></i>direct</span>
        <span><i style="background:var(--punched)"></i>punched</span>
        <span><i style="background:var(--relayed)"></i>relayed</span>
        <span><i class="dot" style="background:var(--alive)"></i>alive</span>
        <span><i class="dot" style="background:var(--suspect)"></i>suspect</span>
        <span><i class="dot" style="background:var(--dead)"></i>dead</span>
        <span><i class="dot" style="background:var(--left)"></i>left</span>
      </div>
    </section>
    <section>
      <h2>Routes <span>per-peer traffic from QUIC</span></h2>
      <table>
        <thead><tr><th>peer</th><th>path</th><th>via</th><th>remote</th><th class="num">RTT</th><th class="num">in</th><th class="num">out</th></tr></thead>
        <tbody id="routes-body"></tbody>
      </table>
      <h2>Message rate <span>in (blue) · out (teal), last 2 min</span></h2>
      <svg id="spark" class="spark" viewBox="0 0 300 90" preserveAspectRatio="none"></svg>
      <h2>Drops <span>by reason</span></h2>
      <table>
        <thead><tr><th>reason</th><th class="num">total</th><th class="num">rate</th></tr></thead>
        <tbody id="drops-body"></tbody>
      </table>
    </section>
  </div>
  <section>
    <h2>Members <span id="members-count"></span></h2>
    <table>
      <thead><tr><th>state</th><th>node</th><th>address</th><th>tags</th><th>version</th><th>route</th><th class="num">last heard</th></tr></thead>
      <tbody id="members-body"></tbody>
    </table>
  </section>
</main>
<footer>Updated about once a second from <a href="api/topology">api/topology</a> · <a href="metrics">metrics</a> · <a href="readyz">readyz</a></footer>
<script>${PAGE_SCRIPT}</script>
</body>
</html>
`;

// Ops dashboard: poll the JSON API every 2 s and redraw, without reloading the page.
// Everything is built with DOM methods and textContent (no HTML from data).
(function () {
  "use strict";
  var root = document.querySelector("[data-ops-api]");
  if (!root) return;
  var API = root.getAttribute("data-ops-api");
  var PAGE = root.getAttribute("data-ops-page");
  var INTERVAL_MS = 2000;
  var SVG = "http://www.w3.org/2000/svg";

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function svg(tag, attrs, text) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = String(text);
    return node;
  }
  function field(name) { return root.querySelector('[data-field="' + name + '"]'); }
  function setText(node, value, quiet) {
    if (!node) return;
    var text = String(value);
    if (node.textContent !== text) {
      node.textContent = text;
      if (quiet) return;
      node.classList.remove("changed");
      void node.offsetWidth; // restart the highlight animation
      node.classList.add("changed");
    }
  }
  function clockOf(iso) { return iso ? iso.slice(11, 19) + " UTC" : ""; }

  function statePill(row) {
    if (row.blocked_for > 0) return el("span", { "class": "pill pill-bad" }, "blocked " + row.blocked_for + " s");
    if (row.remaining === 0) return el("span", { "class": "pill pill-warn" }, "at limit");
    return el("span", { "class": "pill pill-ok" }, "ok");
  }

  // --- All accounts ----------------------------------------------------------------------
  var accountUrl = root.getAttribute("data-ops-account-url") || "";
  var NUMERIC = ["in_window", "background_in_window", "waiting", "calls_last_hour",
                 "rejections_last_hour", "upstream_429s_last_hour", "active_connections"];
  var LABELS = { in_window: "In window", background_in_window: "Background", waiting: "Waiting",
                 calls_last_hour: "Calls / h", rejections_last_hour: "Refused by gateway / h",
                 upstream_429s_last_hour: "Pelcro 429 / h", active_connections: "Connections" };

  function limitSource(row) {
    return row.limit_source === "upstream" ? "from Pelcro" : row.limit_source;
  }

  function accountRow(row) {
    var cap = row.cap;
    var tr = el("tr", { "data-account": row.id });
    var name = el("td", { "data-label": "Account" });
    name.appendChild(el("a", { "class": "account-name", title: row.name, href: accountUrl.replace(/0\/$/, row.id + "/") }, row.name));
    name.appendChild(el("span", { "class": "account-slug" }, row.slug));
    tr.appendChild(name);
    var limit = el("td", { "class": "num", "data-label": "Limit", "data-cell": "limit" }, row.limit + " ");
    limit.appendChild(el("span", { "class": "account-slug" }, limitSource(row)));
    tr.appendChild(limit);
    var budget = el("td", { "class": "col-budget", "data-label": "Budget now" });
    var meter = el("span", { "class": "meter" });
    var used = el("span", { "class": "meter-used" + (row.remaining === 0 ? " full" : "") });
    used.style.width = Math.min(100, Math.round(100 * row.in_window / Math.max(1, cap))) + "%";
    meter.appendChild(used);
    budget.appendChild(meter);
    budget.appendChild(el("span", { "class": "meter-text", "data-cell": "remaining" }, row.remaining + " left"));
    tr.appendChild(budget);
    NUMERIC.forEach(function (key) {
      var bad = (key === "rejections_last_hour" || key === "upstream_429s_last_hour") && row[key] > 0;
      tr.appendChild(el("td", { "class": "num" + (bad ? " bad" : ""), "data-cell": key, "data-label": LABELS[key] }, row[key]));
    });
    var stateCell = el("td", { "data-label": "State" });
    stateCell.appendChild(statePill(row));
    tr.appendChild(stateCell);
    return tr;
  }

  function renderDashboard(data) {
    var tbody = field("accounts");
    var existing = {};
    Array.prototype.forEach.call(tbody.querySelectorAll("tr[data-account]"), function (tr) {
      existing[tr.getAttribute("data-account")] = tr;
    });
    var totals = { in_window: 0, waiting: 0, rejections_last_hour: 0, upstream_429s_last_hour: 0 };
    var fragment = document.createDocumentFragment();
    data.accounts.forEach(function (row) {
      Object.keys(totals).forEach(function (k) { totals[k] += row[k]; });
      var fresh = accountRow(row);
      var old = existing[String(row.id)];
      if (old) {
        // Flash the cells whose value changed since the last poll.
        Array.prototype.forEach.call(fresh.querySelectorAll("[data-cell]"), function (cell) {
          var before = old.querySelector('[data-cell="' + cell.getAttribute("data-cell") + '"]');
          if (before && before.textContent !== cell.textContent) cell.classList.add("changed");
        });
      }
      fragment.appendChild(fresh);
    });
    if (!data.accounts.length) {
      var empty = el("tr");
      empty.appendChild(el("td", { colspan: "11", "class": "muted empty" }, "No accounts yet."));
      fragment.appendChild(empty);
    }
    tbody.replaceChildren(fragment);
    Object.keys(totals).forEach(function (k) {
      var node = root.querySelector('[data-total="' + k + '"]');
      setText(node, totals[k]);
      if (node) node.classList.toggle("bad", (k === "rejections_last_hour" || k === "upstream_429s_last_hour") && totals[k] > 0);
    });
  }

  // --- One account -------------------------------------------------------------------------
  function niceStep(raw) {
    var power = Math.pow(10, Math.floor(Math.log10(Math.max(raw, 1))));
    var steps = [1, 2, 2.5, 5, 10];
    for (var i = 0; i < steps.length; i++) if (steps[i] * power >= raw) return steps[i] * power;
    return 10 * power;
  }

  // Two panels on one time axis, so nothing stacks on top of what was sent upstream:
  // top, requests the limiter let through (interactive + background) against the limit
  // line; bottom, what did not go through: calls refused by the gateway's own limiter,
  // and 429 answers from the Core API. The SVG is drawn at its real width so text stays
  // legible on a phone; labels sit in the margins where no bar can cover them.
  function renderChart(data) {
    var chart = field("chart");
    var W = Math.max(320, Math.round(chart.getBoundingClientRect().width) || 960);
    var narrow = W < 600;
    var left = 40, right = narrow ? 8 : 96, top = 22, gap = 34, bottom = 24;
    var topH = narrow ? 150 : 170, lowH = 70;
    var H = top + topH + gap + lowH + bottom;
    chart.setAttribute("viewBox", "0 0 " + W + " " + H);
    chart.setAttribute("height", H);
    var minutes = data.per_minute;
    var limit = data.limit.cap_per_minute;
    var peak = Math.max(limit, 1), lowPeak = 1;
    minutes.forEach(function (m) {
      peak = Math.max(peak, m.calls);
      lowPeak = Math.max(lowPeak, m.rejections, m.upstream_429s);
    });
    var tick = niceStep(peak * 1.1 / 4), yMax = tick * Math.ceil(peak * 1.1 / tick);
    var lowTick = niceStep(lowPeak / 2), lowMax = lowTick * Math.ceil(lowPeak / lowTick);
    var plotW = W - left - right, step = plotW / minutes.length;
    var lowTop = top + topH + gap;
    function y(v) { return top + topH - (v / yMax) * topH; }
    function yl(v) { return lowTop + lowH - (v / lowMax) * lowH; }
    chart.replaceChildren();
    chart.appendChild(svg("text", { "class": "panel-title", x: left, y: top - 8 }, "Sent upstream (requests/min)"));
    chart.appendChild(svg("text", { "class": "panel-title", x: left, y: lowTop - 8 },
      narrow ? "Not sent (calls/min)" : "Not sent: refused by the gateway · 429 from Pelcro (calls/min)"));
    var value;
    for (value = 0; value <= yMax + 1e-9; value += tick) {
      chart.appendChild(svg("line", { "class": "grid", x1: left, x2: left + plotW, y1: y(value), y2: y(value) }));
      chart.appendChild(svg("text", { "class": "axis-label", x: left - 6, y: y(value) + 4, "text-anchor": "end" }, value));
    }
    for (value = 0; value <= lowMax + 1e-9; value += lowTick) {
      chart.appendChild(svg("line", { "class": "grid", x1: left, x2: left + plotW, y1: yl(value), y2: yl(value) }));
      chart.appendChild(svg("text", { "class": "axis-label", x: left - 6, y: yl(value) + 4, "text-anchor": "end" }, value));
    }
    minutes.forEach(function (m, i) {
      var x = left + i * step + 0.5, w = Math.max(1, step - 1);
      var interactive = m.calls - m.background_calls;
      var title = m.minute.slice(11, 16) + " UTC: " + m.calls + " requests sent (" + m.background_calls +
        " background), " + m.waits + " waited, " + m.rejections + " refused by the gateway, " +
        m.upstream_429s + " upstream 429";
      var group = svg("g");
      group.appendChild(svg("title", {}, title));
      group.appendChild(svg("rect", { "class": "bar-interactive", x: x, width: w, y: y(interactive), height: y(0) - y(interactive) }));
      group.appendChild(svg("rect", { "class": "bar-background", x: x, width: w, y: y(m.calls), height: y(interactive) - y(m.calls) }));
      var half = Math.max(1, w / 2 - 0.25);
      if (m.rejections) {
        group.appendChild(svg("rect", { "class": "bar-rejected", x: x, width: half, y: yl(m.rejections), height: yl(0) - yl(m.rejections) }));
      }
      if (m.upstream_429s) {
        group.appendChild(svg("rect", { "class": "bar-429", x: x + w - half, width: half, y: yl(m.upstream_429s), height: yl(0) - yl(m.upstream_429s) }));
      }
      chart.appendChild(group);
      var every = narrow ? 20 : 10;
      if (i % every === 0 || i === minutes.length - 1) {
        chart.appendChild(svg("text", { "class": "axis-label", x: Math.min(x + w / 2, left + plotW - 14), y: H - 6, "text-anchor": "middle" }, m.minute.slice(11, 16)));
      }
    });
    chart.appendChild(svg("line", { "class": "limit", x1: left, x2: left + plotW, y1: y(limit), y2: y(limit) }));
    var label = "limit " + (Math.round(limit * 10) / 10) + "/min";
    if (narrow) {
      // No right margin on a phone: the label goes above the plot, right-aligned.
      chart.appendChild(svg("text", { "class": "limit-label", x: left + plotW, y: top - 8, "text-anchor": "end" }, label));
    } else {
      chart.appendChild(svg("text", { "class": "limit-label", x: left + plotW + 6, y: y(limit) + 4 }, label));
    }
  }

  function rows(tbody, items, columns, emptyText) {
    var fragment = document.createDocumentFragment();
    items.forEach(function (item) {
      var tr = el("tr");
      columns.forEach(function (col) {
        var td = el("td", { "class": col.cls ? col.cls(item) : "", "data-label": col.label }, col.value(item));
        if (col.title) td.setAttribute("title", col.title(item));
        tr.appendChild(td);
      });
      fragment.appendChild(tr);
    });
    if (!items.length) {
      var tr = el("tr");
      tr.appendChild(el("td", { colspan: String(columns.length), "class": "muted empty" }, emptyText));
      fragment.appendChild(tr);
    }
    tbody.replaceChildren(fragment);
  }

  function renderAccount(data) {
    var a = data.account;
    ["remaining", "in_window", "waiting", "rejections_last_hour", "upstream_429s_last_hour"].forEach(function (k) {
      var node = root.querySelector('[data-stat="' + k + '"]');
      setText(node, a[k]);
      if (node) node.classList.toggle("bad", (k === "rejections_last_hour" || k === "upstream_429s_last_hour") && a[k] > 0);
    });
    var lat = data.latency_last_5_min;
    setText(root.querySelector('[data-stat="latency"]'),
      lat.samples ? Math.round(lat.p50_ms) + " / " + Math.round(lat.p95_ms) + "\u00a0ms" : "no calls", true);
    var source = a.limit_source === "upstream" ? "from Pelcro's GET /account" :
      a.limit_source === "manual" ? "entered by hand" : "the default";
    setText(field("limit-summary"), data.limit.cap + " requests per " + data.limit.window_seconds + " s (limit " +
      a.limit + ", " + source + ") · " +
      a.active_connections + " active connection" + (a.active_connections === 1 ? "" : "s") +
      (a.blocked_for > 0 ? " · blocked by the Core API for " + a.blocked_for + " s" : ""), true);
    renderChart(data);
    rows(field("tool-calls"), data.tool_calls, [
      { label: "When (UTC)", value: function (c) { return c.at.slice(11, 19); } },
      { label: "Server", value: function (c) { return c.server === "open" ? "Open" : "Core"; } },
      { label: "Tool", value: function (c) { return c.tool; } },
      { label: "Outcome", value: function (c) {
          if (c.outcome === "rate_limited") return c.refused_locally ? "refused by gateway" : "429 from Pelcro";
          return c.outcome.replace("_", " ");
        },
        cls: function (c) { return "outcome-" + c.outcome; } },
      { label: "User", value: function (c) { return c.server === "open" ? "customer " + c.customer_id : c.user; }, cls: function () { return "cell-name"; }, title: function (c) { return c.user; } },
      { label: "Client", value: function (c) { return c.client; }, cls: function () { return "cell-name"; }, title: function (c) { return c.client; } },
      { label: "Site", value: function (c) { return c.site_id === null ? "—" : c.site_id; }, cls: function () { return "num"; } },
      { label: "Pelcro answered", value: function (c) { return c.upstream_status === null ? "not called" : "HTTP " + c.upstream_status; }, cls: function () { return "num"; } },
      { label: "Time", value: function (c) { return c.latency_ms + "\u00a0ms"; }, cls: function () { return "num nowrap"; } }
    ], "No tool calls yet.");
    rows(field("exports"), data.exports, [
      { label: "Started (UTC)", value: function (j) { return j.created_at.slice(0, 19).replace("T", " "); } },
      { label: "Job", value: function (j) { return j.job_id.slice(0, 8); }, title: function (j) { return j.job_id; } },
      { label: "Kind", value: function (j) { return j.kind; } },
      { label: "Site", value: function (j) { return j.site_id; }, cls: function () { return "num"; } },
      { label: "Status", value: function (j) { return j.status; } },
      { label: "Rows", value: function (j) { return j.rows_done + " / " + (j.rows_total === null ? "?" : j.rows_total) + " rows"; }, cls: function () { return "num"; } }
    ], "No exports.");
  }

  // --- Polling ---------------------------------------------------------------------------
  var live = root.querySelector(".live");
  function showProblem(down) {
    var banner = field("redis-down");
    if (banner) banner.hidden = !down;
  }
  function poll() {
    fetch(API, { credentials: "same-origin", headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (response) {
        if (response.status === 503) { showProblem(true); live.classList.add("stale"); return null; }
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (data) {
        if (!data) return;
        showProblem(false);
        live.classList.remove("stale");
        if (PAGE === "dashboard") renderDashboard(data); else renderAccount(data);
        setText(field("updated"), "updated " + clockOf(data.generated_at), true);
      })
      .catch(function () { live.classList.add("stale"); setText(field("updated"), "connection lost, retrying", true); })
      .then(function () { window.setTimeout(poll, INTERVAL_MS); });
  }
  poll();
})();

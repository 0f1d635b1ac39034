/* backfill-web page: bulk-add repositories and follow their backfills live.
 *
 * Protocol (web/API.md): POST /api/bulk-add queues repositories; the rows
 * come from GET /api/backfills and are kept current by the Server-Sent
 * Events of /api/events. The list is read once the EventSource is open
 * (and again shortly after: see loadBackfillsTwice) so that no update
 * between the two is lost; an update, from either, is applied only when
 * it is newer than what a row shows (same backfillId with a higher seq,
 * or another backfillId not already replaced).
 *
 * Served under a strict CSP: no inline code, and every text that comes
 * from data (names, error messages) is inserted with textContent only.
 */
(function () {
  "use strict";

  var TOKEN_KEY = "backfill-web-token";
  var OPEN_WAIT_MS = 3000;     // read the list without the stream after this long
  var CATCH_UP_MS = 2500;      // second read of the list (see loadBackfillsTwice)
  var RESYNC_MS = 20000;       // re-read while something is active
  var ACTIVE = { queued: true, running: true, rate_limited: true };
  var RETRYABLE = { failed: true, cancelled: true };
  var STATUS_TEXT = {
    added: "added", queued: "queued", running: "running",
    rate_limited: "waiting for rate-limit reset", completed: "completed",
    failed: "failed", cancelled: "cancelled"
  };
  var numberFmt = new Intl.NumberFormat("en");

  var rows = new Map();        // lower-cased owner/name -> row state
  var estimate = null;         // last answer of /api/estimate
  var retired = new Set();     // backfillIds a newer backfill of their repository replaced
  var announceQueue = [];
  var $ = function (id) { return document.getElementById(id); };

  // ---------------------------------------------------------------- helpers

  function el(tag, className, text) {
    var e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  /* Splits what was typed into entries; the server normalises each one. */
  function parseEntries(text) {
    return text.split(/[\s,]+/).filter(function (s) { return s.length > 0; });
  }

  function repoPath(repo) {
    var parts = repo.split("/");
    return "/api/backfills/" + encodeURIComponent(parts[0]) + "/" + encodeURIComponent(parts[1]);
  }

  function formatDuration(seconds) {
    seconds = Math.max(0, Math.round(seconds));
    if (seconds < 60) return seconds + " s";
    if (seconds < 3600) {
      var m = Math.floor(seconds / 60), s = seconds % 60;
      return s ? m + " min " + s + " s" : m + " min";
    }
    var h = Math.floor(seconds / 3600), min = Math.round((seconds % 3600) / 60);
    return min ? h + " h " + min + " min" : h + " h";
  }

  function plural(n, one, many) {
    return numberFmt.format(n) + " " + (n === 1 ? one : many || one + "s");
  }

  /* Screen readers hear status changes once a second, gathered, instead
   * of one interruption per event when many backfills move at once. */
  function announce(text) { announceQueue.push(text); }
  function flushAnnouncements() {
    if (!announceQueue.length) return;
    $("announcer").textContent = announceQueue.join(". ") + ".";
    announceQueue = [];
  }

  /* kind: undefined (plain), "error" or "warn". */
  function setMessage(text, kind) {
    var m = $("form-message");
    m.textContent = text || "";
    m.classList.toggle("error", kind === "error");
    m.classList.toggle("warn", kind === "warn");
  }

  // ------------------------------------------------------------- requests

  /* fetch() of JSON. POSTs carry the stored token; a 401 asks for one and
   * repeats the request once it is given. Resolves {status, body}. */
  function api(method, path, body) {
    var headers = { "Accept": "application/json" };
    if (method === "POST") {
      headers["Content-Type"] = "application/json";
      var token = sessionStorage.getItem(TOKEN_KEY);
      if (token) headers["Authorization"] = "Bearer " + token;
    }
    return fetch(path, {
      method: method, headers: headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (res) {
      return res.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
        if (res.status === 401 && method === "POST") {
          return askForToken(data && data.error).then(function () { return api(method, path, body); });
        }
        return { status: res.status, body: data };
      });
    });
  }

  function errorText(res, fallback) {
    return (res.body && typeof res.body.error === "string") ? res.body.error : fallback + " (HTTP " + res.status + ")";
  }

  // ---------------------------------------------------------------- token

  var tokenWaiters = [];

  /* Shows the token field; resolves when the user has entered a token. */
  function askForToken(reason) {
    sessionStorage.removeItem(TOKEN_KEY);
    $("token-box").hidden = false;
    setMessage((reason || "An access token is needed.") + " Enter it under “Access token”.", "error");
    $("token").focus();
    return new Promise(function (resolve) { tokenWaiters.push(resolve); });
  }

  function saveToken() {
    var value = $("token").value.trim();
    if (!value) { $("token").focus(); return; }
    sessionStorage.setItem(TOKEN_KEY, value);
    setMessage("Token saved; sending again…");
    var waiting = tokenWaiters;
    tokenWaiters = [];
    waiting.forEach(function (resolve) { resolve(); });
  }

  // ----------------------------------------------------------- row model

  /* Returns the row of a repository, creating its table row on first use
   * (kept in alphabetical order, as /api/backfills orders them). */
  function rowFor(repository) {
    var key = repository.toLowerCase();
    var row = rows.get(key);
    if (row) return row;
    row = { key: key, repository: repository, status: null, processed: 0, total: 0,
            backfillId: null, seq: -1, error: null, retryAt: null, pending: false };
    row.dom = buildRow(row);
    var next = null;
    rows.forEach(function (other) {
      if (other.key > key && (!next || other.key < next.key)) next = other;
    });
    $("rows").insertBefore(row.dom.tr, next ? next.dom.tr : null);
    rows.set(key, row);
    return row;
  }

  function buildRow(row) {
    var tr = el("tr", "row");
    tr.setAttribute("data-repo", row.key);
    var name = el("td", "repo");
    name.setAttribute("data-label", "Repository");
    name.appendChild(el("span", "repo-name", row.repository));
    var progressCell = el("td", "progress-cell");
    progressCell.setAttribute("data-label", "Progress");
    var bar = el("progress", "bar");
    bar.max = 1;
    bar.value = 0;
    bar.setAttribute("aria-label", "Progress of " + row.repository);
    progressCell.appendChild(bar);
    var count = el("td", "count", "0 / 0");
    count.setAttribute("data-label", "PRs");
    var status = el("td", "status");
    status.setAttribute("data-label", "Status");
    var badge = el("span", "badge");
    var detail = el("span", "detail");
    status.appendChild(badge);
    status.appendChild(detail);
    var actions = el("td", "row-actions");
    var cancel = el("button", "cancel", "Cancel");
    cancel.type = "button";
    cancel.setAttribute("aria-label", "Cancel " + row.repository);
    cancel.addEventListener("click", function () { cancelBackfill(row); });
    var retry = el("button", "retry", "Retry");
    retry.type = "button";
    retry.setAttribute("aria-label", "Retry " + row.repository);
    retry.addEventListener("click", function () { retryBackfill(row); });
    actions.appendChild(cancel);
    actions.appendChild(retry);
    [name, progressCell, count, status, actions].forEach(function (td) { tr.appendChild(td); });
    return { tr: tr, bar: bar, count: count, status: status, badge: badge, detail: detail,
             cancel: cancel, retry: retry };
  }

  /* Whether an update for backfill `id` at `seq` is newer than the row:
   * the same backfill further on, or another one that has not already
   * been replaced (a replaced backfill never comes back). */
  function isNewer(row, id, seq) {
    if (!row.backfillId || !id) return true;
    if (id !== row.backfillId) return !retired.has(id);
    return typeof seq === "number" && seq > row.seq;
  }

  /* Sets a row's state and redraws it; announces a change of status. */
  function setRow(row, fields) {
    var before = row.status;
    if (fields.backfillId && row.backfillId && fields.backfillId !== row.backfillId) {
      retired.add(row.backfillId);
    }
    Object.keys(fields).forEach(function (k) { if (fields[k] !== undefined) row[k] = fields[k]; });
    if (row.status !== "rate_limited") row.retryAt = null;
    row.pending = false;
    renderRow(row);
    if (before !== null && before !== row.status) {
      announce(row.repository + " " + STATUS_TEXT[row.status] +
               (row.status === "failed" && row.error ? ": " + row.error : ""));
    }
    scheduleTotals();
  }

  function renderRow(row) {
    var d = row.dom, status = row.status || "queued";
    var done = status === "completed";
    // A completed backfill is whole even with fewer PRs than the limit.
    d.bar.max = Math.max(row.total, 1);
    d.bar.value = done ? d.bar.max : Math.min(row.processed, d.bar.max);
    d.bar.setAttribute("aria-valuetext", row.processed + " of " + row.total + " pull requests");
    d.count.textContent = numberFmt.format(row.processed) + " / " + numberFmt.format(row.total);
    d.tr.setAttribute("data-status", status);
    d.badge.textContent = row.pending ? "cancel requested" : STATUS_TEXT[status] || status;
    d.detail.textContent = detailText(row);
    d.cancel.hidden = !ACTIVE[status];
    d.cancel.disabled = row.pending;
    d.retry.hidden = !RETRYABLE[status];
  }

  function detailText(row) {
    if (row.status === "failed" && row.error) return row.error;
    if (row.status === "rate_limited") return countdownText(row.retryAt);
    if (row.status === "added") return "not backfilled";
    return "";
  }

  function countdownText(retryAt) {
    var at = retryAt ? Date.parse(retryAt) : NaN;
    if (isNaN(at)) return "";
    var left = (at - Date.now()) / 1000;
    return left > 0 ? "resumes in " + formatDuration(Math.ceil(left)) : "resuming…";
  }

  function tickCountdowns() {
    rows.forEach(function (row) {
      if (row.status === "rate_limited") row.dom.detail.textContent = countdownText(row.retryAt);
    });
  }

  // --------------------------------------------------------------- totals

  var totalsPending = false;
  function scheduleTotals() {
    if (totalsPending) return;
    totalsPending = true;
    requestAnimationFrame(function () { totalsPending = false; renderTotals(); });
  }

  function renderTotals() {
    var counts = {}, stored = 0;
    rows.forEach(function (row) {
      counts[row.status] = (counts[row.status] || 0) + 1;
      stored += row.processed;
    });
    if (!rows.size) { $("totals").textContent = "No repositories yet."; return; }
    var order = ["completed", "running", "rate_limited", "queued", "failed", "cancelled", "added"];
    var parts = order.filter(function (s) { return counts[s]; }).map(function (s) {
      return numberFmt.format(counts[s]) + " " + (s === "rate_limited" ? "waiting for rate limit" : s);
    });
    $("totals").textContent = plural(rows.size, "repository", "repositories") + ": " +
      parts.join(", ") + " — " + plural(stored, "PR") + " stored";
  }

  // ------------------------------------------------------ applying updates

  /* Maps an event's status to the page's (API.md). */
  function pageStatus(ev) {
    if (ev.status === "started" || ev.status === "processing") return "running";
    if (ev.status === "failed" && ev.error === "cancelled") return "cancelled";
    return ev.status;
  }

  function applyEvent(ev) {
    if (!ev || typeof ev.repository !== "string") return;
    var row = rowFor(ev.repository);
    if (!isNewer(row, ev.backfillId, ev.seq)) return;
    setRow(row, {
      status: pageStatus(ev), backfillId: ev.backfillId || row.backfillId,
      seq: typeof ev.seq === "number" ? ev.seq : row.seq,
      processed: typeof ev.progress === "number" ? ev.progress : row.processed,
      total: typeof ev.total === "number" ? ev.total : row.total,
      error: ev.error || null, retryAt: ev.retryAt || null
    });
  }

  /* A /api/backfills row, by the same rule as an event: the list may be
   * older than the events already shown. */
  function applySnapshot(r) {
    if (!r || typeof r.repository !== "string") return;
    var row = rows.get(r.repository.toLowerCase());
    if (row && row.status && !isNewer(row, r.backfillId, r.seq)) return;
    row = row || rowFor(r.repository);
    setRow(row, {
      repository: r.repository, status: r.status, backfillId: r.backfillId || null,
      seq: typeof r.seq === "number" ? r.seq : -1, processed: r.processed || 0,
      total: r.total || 0, error: r.error || null, retryAt: r.retryAt || null
    });
  }

  function loadBackfills() {
    return api("GET", "/api/backfills").then(function (res) {
      if (res.status !== 200 || !res.body || !Array.isArray(res.body.backfills)) {
        throw new Error(errorText(res, "Could not load the backfills"));
      }
      res.body.backfills.forEach(applySnapshot);
      if ($("form-message").classList.contains("load-error")) setMessage("");
    }).catch(function (e) {
      setMessage(e.message, "error");
      $("form-message").classList.add("load-error");
    }).then(scheduleTotals);
  }

  /* The list comes from Postgres, written by the sink, and the event
   * stream straight from Kafka: Postgres may lag the stream by a batch.
   * An update the stream carried just before we connected may reach
   * Postgres just after our first read, so the list is read again a
   * little later, and now and then while something is still active;
   * older answers change nothing (isNewer). */
  function loadBackfillsTwice() {
    loadBackfills().then(function () { setTimeout(loadBackfills, CATCH_UP_MS); });
  }

  function anyActive() {
    var active = false;
    rows.forEach(function (row) { if (ACTIVE[row.status]) active = true; });
    return active;
  }

  /* Opens the stream, then reads the list once the stream is open (the
   * server starts a new stream at "now"), so nothing between the two is
   * missed. If the stream cannot open, the list is read anyway. */
  function connectEvents() {
    var conn = $("connection");
    var es = new EventSource("/api/events");
    var loaded = false;
    function firstLoad() {
      if (loaded) return;
      loaded = true;
      loadBackfillsTwice();
    }
    setTimeout(firstLoad, OPEN_WAIT_MS);
    es.addEventListener("progress", function (e) {
      try { applyEvent(JSON.parse(e.data)); } catch (err) { /* a malformed event changes nothing */ }
    });
    // Our Last-Event-ID is too old for the server: start again from its state.
    es.addEventListener("reset", loadBackfillsTwice);
    es.addEventListener("open", function () {
      conn.textContent = "Live";
      conn.setAttribute("data-state", "live");
      firstLoad();
    });
    // EventSource reconnects by itself (resending Last-Event-ID); just say so.
    es.addEventListener("error", function () {
      conn.textContent = es.readyState === EventSource.CLOSED ? "Disconnected" : "Reconnecting…";
      conn.setAttribute("data-state", "down");
    });
  }

  // ------------------------------------------------------------- actions

  function submitForm(event) {
    event.preventDefault();
    var form = $("add-form");
    var entries = parseEntries($("repos").value);
    if (!entries.length) {
      setMessage("Enter at least one repository.", "error");
      $("repos").focus();
      return;
    }
    var include = $("include-backfill").checked;
    if (include && !form.reportValidity()) return;
    var body = { repositories: entries, includeBackfill: include };
    if (include) {
      body.maxPRs = Number($("max-prs").value);
      body.sinceDays = Number($("days").value);
    }
    $("add").disabled = true;
    setMessage("Adding " + plural(entries.length, "entry", "entries") + "…");
    api("POST", "/api/bulk-add", body).then(function (res) {
      if ((res.status !== 200 && res.status !== 207) || !res.body || !Array.isArray(res.body.results)) {
        setMessage(errorText(res, "Nothing was added"), "error");
        return;
      }
      showResults(res.body);
    }).catch(function (e) {
      setMessage("Nothing was added: " + e.message, "error");
    }).then(function () { $("add").disabled = false; });
  }

  /* Rows for what was queued or added; the rest goes to "Not added", and
   * stays in the text box so it can be corrected and sent again. */
  function showResults(answer) {
    var list = $("invalid"), left = [], notAdded = 0;
    list.textContent = "";
    answer.results.forEach(function (r) {
      if (r.status === "queued" || r.status === "added") {
        var row = rowFor(r.repository);
        if (r.status === "added" || row.backfillId !== r.backfillId) {
          setRow(row, { repository: r.repository, status: r.status, backfillId: r.backfillId || null,
                        seq: -1, processed: 0, total: r.maxPRs || 0, error: null, retryAt: null });
        }
        return;
      }
      notAdded++;
      var reason = r.status === "duplicate" ? "duplicate: already in this list" : (r.error || r.status);
      var li = el("li", "not-added-" + r.status);
      li.appendChild(el("span", "input", r.input));
      li.appendChild(el("span", "reason", reason));
      list.appendChild(li);
      if (r.status !== "duplicate") left.push(r.input);
    });
    $("not-added").hidden = notAdded === 0;
    $("repos").value = left.join("\n");
    updateCount();
    var queued = answer.queued || 0, added = answer.added || 0;
    var msg = (queued ? plural(queued, "repository", "repositories") + " queued" :
               plural(added, "repository", "repositories") + " added") +
              (notAdded ? "; " + numberFmt.format(notAdded) + " not added (see below)" : "") + ".";
    setMessage(msg, notAdded > 0 ? "warn" : undefined);
    announce(msg);
  }

  function cancelBackfill(row) {
    row.dom.cancel.disabled = true;
    api("POST", repoPath(row.repository) + "/cancel", {}).then(function (res) {
      if (res.status === 202) {
        row.pending = ACTIVE[row.status] === true;
        renderRow(row);
        announce("Cancel requested for " + row.repository);
      } else {
        actionFailed(row, errorText(res, "Could not cancel"));
      }
    }).catch(function (e) { actionFailed(row, e.message); });
  }

  function retryBackfill(row) {
    row.dom.retry.disabled = true;
    api("POST", repoPath(row.repository) + "/retry", {}).then(function (res) {
      row.dom.retry.disabled = false;
      if (res.status === 200 && res.body && res.body.backfillId !== row.backfillId) {
        setRow(row, { status: "queued", backfillId: res.body.backfillId, seq: -1,
                      processed: 0, error: null, retryAt: null });
      } else if (res.status !== 200) {
        actionFailed(row, errorText(res, "Could not retry"));
      }
    }).catch(function (e) { actionFailed(row, e.message); });
  }

  /* A refused cancel/retry (409: the state moved on): say why, and show
   * the repository as the server has it now. */
  function actionFailed(row, message) {
    row.dom.cancel.disabled = false;
    row.dom.retry.disabled = false;
    setMessage(row.repository + ": " + message, "error");
    announce(row.repository + ": " + message);
    api("GET", repoPath(row.repository)).then(function (res) {
      if (res.status === 200 && res.body) applySnapshot(res.body, new Set());
    }).catch(function () { /* the event stream will still bring it */ });
  }

  // ------------------------------------------------------ form niceties

  function updateLimits() {
    var include = $("include-backfill").checked;
    $("limits").disabled = !include;
    document.querySelectorAll(".max-prs").forEach(function (e) { e.textContent = $("max-prs").value || "?"; });
    document.querySelectorAll(".days").forEach(function (e) { e.textContent = $("days").value || "?"; });
    $("backfill-notes").classList.toggle("off", !include);
  }

  function updateCount() {
    var n = parseEntries($("repos").value).length;
    $("repo-count").textContent = n ? plural(n, "entry", "entries") + " entered." : "No repositories entered.";
    renderEstimate(n);
  }

  function renderEstimate(n) {
    var e = $("estimate");
    if (!estimate) { e.textContent = "Estimated time: not available."; return; }
    if (!estimate.samples || typeof estimate.medianSeconds !== "number") {
      e.textContent = "Estimated time: no measurement yet on this deployment.";
      return;
    }
    var count = Math.max(n, 1), parallel = Math.max(estimate.parallel || 1, 1);
    var seconds = Math.ceil(count / parallel) * estimate.medianSeconds;
    e.textContent = "Estimated time: about " + formatDuration(seconds) + " for " +
      plural(count, "repository", "repositories") + ", measured on this deployment over its last " +
      plural(estimate.samples, "backfill") + ".";
  }

  function loadEstimate() {
    return api("GET", "/api/estimate").then(function (res) {
      estimate = res.status === 200 ? res.body : null;
    }).catch(function () { estimate = null; }).then(updateCount);
  }

  function debounce(fn, ms) {
    var t = null;
    return function () { clearTimeout(t); t = setTimeout(fn, ms); };
  }

  // ---------------------------------------------------------------- start

  function start() {
    $("add-form").addEventListener("submit", submitForm);
    $("repos").addEventListener("input", debounce(updateCount, 150));
    $("repos").addEventListener("keydown", function (e) {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); $("add-form").requestSubmit(); }
    });
    ["include-backfill", "max-prs", "days"].forEach(function (id) {
      $(id).addEventListener("input", updateLimits);
      $(id).addEventListener("change", updateLimits);
    });
    $("token-save").addEventListener("click", saveToken);
    $("token").addEventListener("keydown", function (e) {
      if (e.key === "Enter") { e.preventDefault(); saveToken(); }
    });
    if (sessionStorage.getItem(TOKEN_KEY)) $("token-box").hidden = false;
    updateLimits();
    updateCount();
    connectEvents();   // reads the list once the stream is open
    loadEstimate();
    setInterval(tickCountdowns, 1000);
    setInterval(flushAnnouncements, 1000);
    // New completions change the measurement: refresh the estimate now and then.
    setInterval(loadEstimate, 30000);
    setInterval(function () { if (anyActive()) loadBackfills(); }, RESYNC_MS);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();

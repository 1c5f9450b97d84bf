// btcpipe dashboard: keeps the "Crawl in flight" panel of the overview up
// to date by polling /live/progress; the page is never reloaded. Without
// JavaScript the panel shows the state at the time the page was made.
(function () {
  "use strict";
  var panel = document.getElementById("progress");
  if (!panel || !window.fetch) return;
  var lastShown = Number(panel.getAttribute("data-last")) || 0;
  var fmt = new Intl.NumberFormat("en-US");
  function set(id, v) {
    var el = document.getElementById(id);
    if (el) el.textContent = fmt.format(v || 0);
  }
  function when(t) {
    return t ? t.slice(0, 16).replace("T", " ") + " UTC" : "";
  }
  var wasRunning = panel.getAttribute("data-state") === "running";
  function show(p) {
    var state = document.getElementById("p-state");
    var note = document.getElementById("p-note");
    var bar = document.getElementById("p-bar");
    if (!p.running && wasRunning) {
      // The crawl just ended: keep its last counts on show.
      wasRunning = false;
      panel.setAttribute("data-state", "idle");
      state.textContent = "idle · last crawl finished";
      note.textContent = p.next_crawl ? "next crawl " + when(p.next_crawl) : "";
      bar.value = 100;
      bar.textContent = "100%";
      newer(p);
      return;
    }
    if (!p.running && panel.getAttribute("data-state") === "idle" && state.textContent.indexOf("last crawl") >= 0) {
      note.textContent = p.next_crawl ? "next crawl " + when(p.next_crawl) : "";
      newer(p);
      return;
    }
    wasRunning = p.running;
    set("p-discovered", p.discovered);
    set("p-tried", p.tried);
    set("p-reachable", p.reachable);
    set("p-failed", p.failed);
    set("p-inflight", p.in_flight);
    set("p-queued", p.queued);
    set("p-notdialled", p.not_dialled);
    panel.setAttribute("data-state", p.running ? "running" : "idle");
    if (p.running) {
      state.textContent = "running · snapshot #" + p.snapshot;
      note.textContent = "started " + when(p.started);
      var all = p.done + p.in_flight + p.queued;
      bar.value = all > 0 ? Math.round((p.done / all) * 1000) / 10 : 0;
    } else {
      state.textContent = "idle";
      note.textContent = p.next_crawl ? "next crawl " + when(p.next_crawl) : "";
      bar.value = 0;
    }
    bar.textContent = bar.value + "%";
    newer(p);
  }
  function newer(p) {
    if (p.last_complete && p.last_complete !== lastShown) {
      document.getElementById("p-newer").hidden = false;
    }
    panel.setAttribute("data-updated", String(Date.now()));
  }
  var delay = 1000;
  function poll() {
    fetch("/live/progress", { cache: "no-store", headers: { Accept: "application/json" } })
      .then(function (r) {
        if (!r.ok) throw new Error(String(r.status));
        return r.json();
      })
      .then(function (p) {
        show(p);
        delay = 1000;
      })
      .catch(function () {
        delay = Math.min(delay * 2, 30000); // the monitor restarting: back off
      })
      .then(function () {
        setTimeout(poll, document.hidden ? Math.max(delay, 5000) : delay);
      });
  }
  setTimeout(poll, 500);
})();

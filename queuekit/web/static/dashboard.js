// queuekit dashboard: refresh each [data-refresh] fragment when the server says it changed
// (a server-sent event stream, /dashboard/events), or every few seconds while that stream is
// down; confirm risky buttons, and keep the jobs page's selection (its checkboxes) across
// refreshes; show times in the viewer's time zone. No framework, no build step; fragments are
// rendered (and escaped) by the server.
(function () {
  "use strict";
  var INTERVAL_MS = 3000;
  var EVENTS_EVERY_MS = 500;
  var AGO_EVERY_MS = 10000;
  var SELECTED = "input[type=checkbox][name=job]";

  // Times (web/times.py): the server writes UTC; [data-local] elements get the viewer's zone.
  // "moment": date and time to the second, its UTC text kept as the title; "clock": hours and
  // minutes (chart axes); "ago": a relative time, its title the local moment.
  function two(n) { return (n < 10 ? "0" : "") + n; }

  function zoneName(date) {
    try {
      var parts = new Intl.DateTimeFormat(undefined, { timeZoneName: "short" }).formatToParts(date);
      for (var i = 0; i < parts.length; i++) if (parts[i].type === "timeZoneName") return parts[i].value;
    } catch (e) { /* no Intl: the offset below */ }
    var offset = -date.getTimezoneOffset();
    return "UTC" + (offset < 0 ? "-" : "+") + two(Math.floor(Math.abs(offset) / 60)) + ":" + two(Math.abs(offset) % 60);
  }

  function localMoment(date) {
    return date.getFullYear() + "-" + two(date.getMonth() + 1) + "-" + two(date.getDate()) + " " +
      two(date.getHours()) + ":" + two(date.getMinutes()) + ":" + two(date.getSeconds()) + " " + zoneName(date);
  }

  // As times.ago writes it: "12 s ago", "3 min ago", "in 2 h", "4 d ago".
  function ago(date) {
    var seconds = (Date.now() - date.getTime()) / 1000;
    var span = Math.abs(seconds);
    var text = span < 60 ? Math.round(span) + " s" : span < 5400 ? Math.round(span / 60) + " min" :
      span < 129600 ? Math.round(span / 3600) + " h" : Math.round(span / 86400) + " d";
    return seconds >= 0 ? text + " ago" : "in " + text;
  }

  function localize(root) {
    root.querySelectorAll("[data-local]").forEach(function (element) {
      var date = new Date(element.getAttribute("datetime") || element.getAttribute("data-at"));
      if (isNaN(date.getTime())) return;
      var kind = element.getAttribute("data-local");
      if (kind === "moment") {
        if (!element.title) element.title = element.textContent;
        element.textContent = localMoment(date);
      } else if (kind === "clock") {
        element.textContent = two(date.getHours()) + ":" + two(date.getMinutes());
      } else if (kind === "ago") {
        element.title = localMoment(date);
        element.textContent = ago(date);
      }
    });
    root.querySelectorAll("[data-zone]").forEach(function (element) {
      element.textContent = zoneName(new Date());
    });
  }

  function checkedIn(box) {
    var values = {};
    box.querySelectorAll(SELECTED + ":checked").forEach(function (input) {
      values[input.value] = true;
    });
    return values;
  }

  // Show how many jobs are selected, and tick "select all" when every one on the page is.
  function countSelected() {
    var count = document.querySelector("[data-selected-count]");
    if (count) count.textContent = String(document.querySelectorAll(SELECTED + ":checked").length);
    document.querySelectorAll("[data-select-all]").forEach(function (all) {
      var boxes = document.querySelectorAll(SELECTED);
      all.checked = boxes.length > 0 && document.querySelectorAll(SELECTED + ":checked").length === boxes.length;
    });
  }

  function refreshBox(box) {
    if (document.hidden) return;
    if (box.contains(document.activeElement) && document.activeElement !== document.body) return;
    box.lastRefresh = Date.now();
    fetch(box.getAttribute("data-refresh"), {
        credentials: "same-origin",
      headers: { "X-Requested-With": "fetch" },
    })
      .then(function (response) {
        if (response.status === 401) { window.location.reload(); return null; }
        return response.ok ? response.text() : null;
      })
      .then(function (text) {
        // Compared with what the server sent last, not innerHTML: localize() rewrote that.
        if (text === null || text === box.rendered) return;
        box.rendered = text;
        var selected = checkedIn(box);
        box.innerHTML = text;
        localize(box);
        box.querySelectorAll(SELECTED).forEach(function (input) {
          input.checked = selected[input.value] === true;
        });
        countSelected();
      })
      .catch(function () { /* server away: try again next tick */ });
  }

  // A change came: refresh now, or once EVENTS_EVERY_MS have passed since the last refresh.
  function changed(box) {
    if (box.pending) return;
    var wait = (box.lastRefresh || 0) + EVENTS_EVERY_MS - Date.now();
    if (wait <= 0) { refreshBox(box); return; }
    box.pending = window.setTimeout(function () { box.pending = null; refreshBox(box); }, wait);
  }

  // Follow the box's stream of changes; while it is down, the poll below refreshes the box.
  function follow(box) {
    if (!window.EventSource) return;
    var url = box.getAttribute("data-refresh");
    var base = url.split("/fragments/")[0];
    var stream = new EventSource(base + "/events?fragment=" + encodeURIComponent(url));
    stream.onopen = function () {
      box.live = true;
      changed(box); // what changed before it was up (since the page was rendered, or a gap)
    };
    stream.onmessage = function () { changed(box); };
    stream.onerror = function () { box.live = false; }; // the browser reconnects by itself
  }

  function poll() {
    document.querySelectorAll("[data-refresh]").forEach(function (box) {
      if (box.live !== true) refreshBox(box);
    });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var button = event.submitter;
    var question = (button && button.getAttribute("data-confirm")) ||
      (form.getAttribute && form.getAttribute("data-confirm"));
    if (question && !window.confirm(question)) event.preventDefault();
  });

  document.addEventListener("change", function (event) {
    var input = event.target;
    if (input.hasAttribute && input.hasAttribute("data-select-all")) {
      document.querySelectorAll(SELECTED).forEach(function (box) { box.checked = input.checked; });
    }
    countSelected();
  });

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) document.querySelectorAll("[data-refresh]").forEach(changed);
  });

  localize(document);
  document.querySelectorAll("[data-refresh]").forEach(follow);
  window.setInterval(poll, INTERVAL_MS);
  window.setInterval(function () {
    document.querySelectorAll("[data-local=ago]").forEach(function (element) {
      var date = new Date(element.getAttribute("datetime"));
      if (!isNaN(date.getTime())) element.textContent = ago(date);
    });
  }, AGO_EVERY_MS);
})();

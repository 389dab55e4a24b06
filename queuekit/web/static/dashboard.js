// queuekit dashboard: refresh each [data-refresh] fragment when the server says it changed
// (a server-sent event stream, /dashboard/events), or every few seconds while that stream is
// down; confirm risky buttons, and keep the jobs page's selection (its checkboxes) across
// refreshes. No framework, no build step; fragments are rendered (and escaped) by the server.
(function () {
  "use strict";
  var INTERVAL_MS = 3000;
  var EVENTS_EVERY_MS = 500;
  var SELECTED = "input[type=checkbox][name=job]";

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
        if (text === null || text === box.innerHTML) return;
        var selected = checkedIn(box);
        box.innerHTML = text;
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

  document.querySelectorAll("[data-refresh]").forEach(follow);
  window.setInterval(poll, INTERVAL_MS);
})();

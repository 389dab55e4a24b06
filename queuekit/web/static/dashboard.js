// queuekit dashboard: refresh [data-refresh] fragments every few seconds, confirm risky buttons.
// No framework, no build step; fragments are rendered (and escaped) by the server.
(function () {
  "use strict";
  var INTERVAL_MS = 3000;

  function refresh() {
    if (document.hidden) return;
    document.querySelectorAll("[data-refresh]").forEach(function (box) {
      if (box.contains(document.activeElement) && document.activeElement !== document.body) return;
      fetch(box.getAttribute("data-refresh"), {
        credentials: "same-origin",
        headers: { "X-Requested-With": "fetch" },
      })
        .then(function (response) {
          if (response.status === 401) { window.location.reload(); return null; }
          return response.ok ? response.text() : null;
        })
        .then(function (text) {
          if (text !== null && text !== box.innerHTML) box.innerHTML = text;
        })
        .catch(function () { /* server away: try again next tick */ });
    });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });

  window.setInterval(refresh, INTERVAL_MS);
})();

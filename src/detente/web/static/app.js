// detente UI: a little progressive enhancement. Every page works without it.
(function () {
  "use strict";

  // Trace jobs: poll the status endpoint, show the stage, reload when finished.
  function pollJob(box) {
    var url = box.getAttribute("data-status");
    var stage = document.getElementById("job-stage");
    var elapsed = document.getElementById("job-elapsed");
    function tick() {
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (s) {
          if (!s) { setTimeout(tick, 3000); return; }
          if (stage) { stage.textContent = s.stage; }
          if (elapsed) { elapsed.textContent = Math.round(s.elapsed); }
          if (s.done) { window.location.reload(); } else { setTimeout(tick, 700); }
        })
        .catch(function () { setTimeout(tick, 3000); });
    }
    setTimeout(tick, 300);
  }

  // Forms that upload something large: show an indeterminate bar while the request runs.
  function showProgressOnSubmit(form) {
    form.addEventListener("submit", function () {
      var el = document.getElementById(form.getAttribute("data-progress"));
      if (el) { el.hidden = false; }
      var button = form.querySelector("button[type=submit]");
      if (button) { button.setAttribute("aria-disabled", "true"); }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var job = document.getElementById("job");
    if (job) { pollJob(job); }
    document.querySelectorAll("form[data-progress]").forEach(showProgressOnSubmit);
  });
})();

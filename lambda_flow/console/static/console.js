// lambda-flow console: live updates. Our own code, no third-party script, no inline script
// (the Content-Security-Policy allows only this file). Without JavaScript every page still
// reads in full; this only re-fetches a page's live part while its runs are running.
(function () {
  "use strict";

  var EVERY_MS = 2000;

  function openDetails(region) {
    var open = [];
    region.querySelectorAll("details").forEach(function (d, i) { if (d.open) { open.push(i); } });
    return open;
  }

  function refresh(region) {
    var url = region.getAttribute("data-live");
    if (!url) { return; }
    fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html !== null) {
          var opened = openDetails(region);
          var template = document.createElement("template");
          template.innerHTML = html; // same-origin, server-rendered and escaped
          var fresh = template.content.querySelector(".live-content");
          if (fresh) {
            region.replaceChildren(fresh);
            var details = region.querySelectorAll("details");
            opened.forEach(function (i) { if (details[i]) { details[i].open = true; } });
            region.setAttribute("data-active", fresh.getAttribute("data-active") || "false");
            region.setAttribute("data-refreshed", String(Date.now()));
          }
        }
        schedule(region);
      })
      .catch(function () { schedule(region); });
  }

  function schedule(region) {
    if (region.getAttribute("data-active") === "true") {
      window.setTimeout(function () { refresh(region); }, EVERY_MS);
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-live]").forEach(schedule);
  });
})();

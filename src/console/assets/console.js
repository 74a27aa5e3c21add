// The console's only script, served from the binary (the CSP forbids inline script).
// It keeps the "time left" of each window current between reloads, and asks before
// a form that changes an activation is sent. Every page works without it.
"use strict";
(function () {
  function left(end) {
    var ms = end - Date.now();
    if (ms <= 0) { return "終了 / ended"; }
    var m = Math.floor(ms / 60000), d = Math.floor(m / 1440), h = Math.floor((m % 1440) / 60);
    return d > 0 ? "残り " + d + "日 " + h + "時間 / " + d + " d " + h + " h left"
                 : "残り " + h + "時間 " + (m % 60) + "分 / " + h + " h " + (m % 60) + " min left";
  }
  function tick() {
    document.querySelectorAll("[data-live-end]").forEach(function (el) {
      el.textContent = left(Number(el.getAttribute("data-live-end")));
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    if (document.querySelector("[data-live-end]")) { setInterval(tick, 30000); }
    document.querySelectorAll("form[data-confirm]").forEach(function (f) {
      f.addEventListener("submit", function (e) {
        if (!window.confirm(f.getAttribute("data-confirm"))) { e.preventDefault(); }
      });
    });
  });
})();

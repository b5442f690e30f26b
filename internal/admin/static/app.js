// The dashboard's only script, besides htmx: timestamps in the viewer's
// time zone, "select all" boxes, and messages for failed htmx requests.
(function () {
  "use strict";

  var thisYear = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", hour: "numeric", minute: "2-digit" });
  var otherYear = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "short", day: "numeric", hour: "numeric", minute: "2-digit" });
  // data-precision="s" (attempts, notes): to the second.
  var thisYearS = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", hour: "numeric", minute: "2-digit", second: "2-digit" });
  var otherYearS = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "short", day: "numeric", hour: "numeric", minute: "2-digit", second: "2-digit" });
  var zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";

  // Each <time datetime="…"> is written in UTC by the server, with the
  // exact UTC time in its title; show it in the viewer's time zone (named
  // once, in the footer).
  function localize(root) {
    if (!root || !root.querySelectorAll) return;
    var now = new Date();
    root.querySelectorAll("time[datetime]:not([data-local])").forEach(function (el) {
      var d = new Date(el.getAttribute("datetime"));
      if (isNaN(d.getTime())) return;
      var same = d.getFullYear() === now.getFullYear();
      if (el.getAttribute("data-precision") === "s") el.textContent = (same ? thisYearS : otherYearS).format(d);
      else el.textContent = (same ? thisYear : otherYear).format(d);
      el.setAttribute("data-local", "1");
    });
    var tz = document.getElementById("tz");
    if (tz && zone) tz.textContent = " (" + zone + ")";
  }

  function flash(kind, message) {
    var main = document.getElementById("content");
    if (!main) return;
    var div = document.createElement("div");
    div.className = "flash flash-" + kind;
    div.setAttribute("role", "alert");
    var p = document.createElement("p");
    p.textContent = message;
    div.appendChild(p);
    main.insertBefore(div, main.firstChild);
    window.scrollTo(0, 0);
  }

  document.addEventListener("DOMContentLoaded", function () { localize(document); });
  document.addEventListener("htmx:load", function (e) { localize(e.target); });
  document.addEventListener("htmx:afterSwap", function (e) { localize(e.target); });

  document.addEventListener("change", function (e) {
    var box = e.target;
    if (!box.matches || !box.matches("input[data-select-all]")) return;
    var form = box.closest("form") || document;
    form.querySelectorAll('input[type=checkbox][name="' + box.getAttribute("data-select-all") + '"]').forEach(function (c) {
      c.checked = box.checked;
    });
  });

  document.addEventListener("htmx:responseError", function (e) {
    var x = e.detail.xhr;
    flash("error", "The action failed: the server answered HTTP " + x.status + ". Reload the page and try again.");
  });
  document.addEventListener("htmx:sendError", function () {
    flash("error", "The server could not be reached. Check your connection and try again.");
  });
})();

// The studio's own script: preview views, reloading after a save, Markdown buttons.
(function () {
  "use strict";
  function preview() { return document.getElementById("preview"); }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-view]");
    if (button) {
      var frame = preview();
      document.querySelectorAll("button[data-view]").forEach(function (b) {
        b.setAttribute("aria-pressed", b === button ? "true" : "false");
      });
      frame.className = button.dataset.view;
      frame.src = button.dataset.src;
      return;
    }
    var md = event.target.closest("button[data-md]");
    if (md) { format(document.getElementById(md.dataset.for), md.dataset.md); }
  });

  function format(area, kind) {
    if (!area) { return; }
    var start = area.selectionStart, end = area.selectionEnd;
    var chosen = area.value.slice(start, end) || (kind === "link" ? "link text" : "text");
    var before = { bold: "**", italic: "_", link: "[" }[kind];
    var after = { bold: "**", italic: "_", link: "](https://)" }[kind];
    area.setRangeText(before + chosen + after, start, end, "select");
    area.focus();
    area.dispatchEvent(new Event("input", { bubbles: true }));
  }

  // After each save the server says "studio-saved": show the new version of the email.
  document.body.addEventListener("studio-saved", function () {
    var frame = preview();
    if (frame) {
      var url = new URL(frame.src, location.href);
      url.searchParams.set("v", Date.now());
      frame.src = url.pathname + url.search;
    }
  });
  document.body.addEventListener("htmx:beforeRequest", function (event) {
    if (event.detail.elt && event.detail.elt.id === "issue-form") {
      var state = document.getElementById("save-state");
      if (state) { state.textContent = "Saving…"; }
    }
  });
  document.body.addEventListener("htmx:sendError", function () {
    var state = document.getElementById("save-state");
    if (state) { state.textContent = "Not saved: the studio is not answering. Is it still running?"; }
  });
})();

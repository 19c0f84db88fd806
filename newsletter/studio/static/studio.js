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
  // Drag a story by its heading to reorder; the new order is saved at once (the page
  // reloads, numbering the stories afresh). Move up / Move down do the same by keyboard.
  var dragged = null;
  document.querySelectorAll("fieldset.item").forEach(function (item) {
    var handle = item.querySelector("legend");
    handle.setAttribute("draggable", "true");
    handle.classList.add("drag-handle");
    handle.addEventListener("dragstart", function (event) {
      dragged = item;
      event.dataTransfer.effectAllowed = "move";
      event.dataTransfer.setData("text/plain", item.id);
    });
    item.addEventListener("dragover", function (event) {
      if (dragged && dragged !== item) { event.preventDefault(); }
    });
    item.addEventListener("drop", function (event) {
      if (!dragged || dragged === item) { return; }
      event.preventDefault();
      var after = event.clientY > item.getBoundingClientRect().top + item.offsetHeight / 2;
      item.parentNode.insertBefore(dragged, after ? item.nextSibling : item);
      var form = document.getElementById("issue-form");
      var action = document.createElement("input");
      action.type = "hidden"; action.name = "action"; action.value = "save";
      form.appendChild(action);
      form.submit();
    });
  });

  // A framed report (same origin, no scripts of its own) is as tall as its content, so the
  // page scrolls once rather than a box inside it.
  function fit(frame) {
    var inner = frame.contentDocument;
    if (inner && inner.documentElement) {
      frame.style.height = "0";  // measured at no height, so that it can also shrink
      frame.style.height = inner.documentElement.scrollHeight + 2 + "px";
    }
  }
  document.querySelectorAll("iframe.report").forEach(function (frame) {
    frame.addEventListener("load", function () { fit(frame); });
    if (frame.contentDocument && frame.contentDocument.readyState === "complete") { fit(frame); }
    window.addEventListener("resize", function () { fit(frame); });
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

// Starts Pagefind's search box over every yearly bundle. The site may live in a
// sub-folder, so paths are worked out from this page's address (ROOT/search/).
(function () {
  var box = document.getElementById("search");
  var root = new URL("../", window.location.href).pathname;
  var bundles = JSON.parse(box.getAttribute("data-bundles"));
  var ui = new PagefindUI({
    element: "#search",
    bundlePath: root + bundles[0],
    mergeIndex: bundles.slice(1).map(function (path) { return { bundlePath: root + path }; }),
    baseUrl: root,
    showSubResults: true,
    showImages: false,
    autofocus: true,
    // Search on the page itself, not in a Web Worker: the index of one newsletter is
    // small, and this also works where workers are blocked (strict CSP, some test
    // browsers whose request routing does not reach workers).
    noWorker: true
  });
  // Pagefind's box has only a title; give it a real label.
  var input = box.querySelector("input");
  if (input) {
    input.id = "search-input";
    var label = document.createElement("label");
    label.htmlFor = "search-input";
    label.className = "search-label";
    label.textContent = box.getAttribute("data-label") || "Search all issues";
    box.insertBefore(label, box.firstChild);
  }
  var query = new URLSearchParams(window.location.search).get("q");
  if (query) {
    if (input) { input.value = query; }
    ui.triggerSearch(query);
  }
})();

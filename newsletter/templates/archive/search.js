// Starts Pagefind's search box. The site may live in a sub-folder, so result links and
// the search bundle are found relative to this page (ROOT/search/).
(function () {
  var root = new URL("../", window.location.href).pathname;
  var ui = new PagefindUI({
    element: "#search",
    bundlePath: root + "pagefind/",
    baseUrl: root,
    showSubResults: true,
    showImages: false,
    autofocus: true
  });
  var query = new URLSearchParams(window.location.search).get("q");
  if (query) {
    ui.triggerSearch(query);
  }
})();

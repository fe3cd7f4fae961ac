// glenv dashboard: open a GitLab URL given after the "#" (the fragment never
// reaches the server, so the page reads it) and hand it to /open; also when
// the fragment changes on an open page (a URL pasted after the "#").
(function () {
  function open() {
    var h = window.location.hash;
    if (h.length < 2) return;
    var v = decodeURIComponent(h.slice(1));
    var prebuild = v.indexOf("prebuild/") === 0;
    if (prebuild) v = v.slice("prebuild/".length);
    if (!/^https?:\/\//.test(v)) return;
    window.location.replace("/open?url=" + encodeURIComponent(v) + (prebuild ? "&prebuild=1" : ""));
  }
  window.addEventListener("hashchange", open);
  open();
})();

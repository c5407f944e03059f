// Status pages: submit the fleet filters as soon as a choice changes; "/" focuses the search box.
(function () {
  "use strict";
  var form = document.getElementById("filters");
  if (!form) { return; }
  form.addEventListener("change", function (event) {
    if (event.target.tagName === "SELECT" || event.target.type === "checkbox") { form.submit(); }
  });
  document.addEventListener("keydown", function (event) {
    var search = form.querySelector("input[name=q]");
    if (event.key === "/" && search && document.activeElement !== search) {
      event.preventDefault();
      search.focus();
    }
  });
})();

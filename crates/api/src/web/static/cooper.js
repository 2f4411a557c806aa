// cooper's web console: the little it needs of JavaScript. Every page works without it.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // Copy buttons: <button data-copy="element-id">.
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () {
      var source = document.getElementById(button.getAttribute("data-copy"));
      if (!source || !navigator.clipboard) return;
      navigator.clipboard.writeText(source.textContent.trim()).then(function () {
        var label = button.textContent;
        button.textContent = "Copied";
        setTimeout(function () { button.textContent = label; }, 1500);
      });
    });
  });
  // The targets filter narrows the list as one types (the form also filters on the server).
  var filter = document.getElementById("q");
  if (filter) {
    filter.addEventListener("input", function () {
      var words = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
      document.querySelectorAll("[data-search]").forEach(function (row) {
        var text = row.getAttribute("data-search");
        row.hidden = !words.every(function (w) { return text.indexOf(w) >= 0; });
      });
    });
  }
  // The console hand-off: the sign-in form is posted at once (its button stays for no-script).
  var handoff = document.querySelector("form[data-autosubmit]");
  if (handoff) handoff.submit();
});

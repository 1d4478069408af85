/* The campaign list never shows a state the server does not have.
 *
 * The filter re-fetches the whole list; a row's switch, priority or quick edit re-fetches one
 * row. A filter answer read by the server before a row's write, but arriving after it, would put
 * the old row back (a paused campaign shown as Active). So a filter answer is shown only when no
 * row request started while it was under way; otherwise it is dropped and the filter asked again
 * once the rows are quiet. An open quick-edit row survives a filter that still lists it: its
 * inputs are the admin's unsaved typing, which no server answer holds.
 */
(function () {
  "use strict";
  var form = document.getElementById("campaign-filter");
  if (!form) return;
  var rowWrites = 0;          // row requests started so far
  var rowsInFlight = 0;
  var filterStartedAt = -1;   // rowWrites when the filter's request left
  var askAgain = false;
  var openEditors = [];

  // The campaign just added or saved is marked by the server (is-highlight): bring it into view,
  // wherever it sorts in the list.
  var saved = document.querySelector("#campaign-rows tr.is-highlight");
  if (saved) saved.scrollIntoView({block: "center"});

  function fromRows(evt) {
    var rows = document.getElementById("campaign-rows");
    return rows && rows.contains(evt.detail.elt) && evt.detail.elt !== rows;
  }

  // htmx names the element an event is dispatched on as detail.elt (the swap target for swap
  // events); the element that made the request is in the request's config.
  function fromFilter(evt) {
    return evt.detail.requestConfig && evt.detail.requestConfig.elt === form;
  }

  function refilter() {
    askAgain = false;
    htmx.trigger(form, "refresh-list");
  }

  document.body.addEventListener("htmx:beforeRequest", function (evt) {
    if (evt.detail.elt === form) {
      filterStartedAt = rowWrites;
    } else if (fromRows(evt)) {
      rowWrites += 1;
      rowsInFlight += 1;
      // The row's element is usually swapped out by its own answer, so htmx's later events may
      // not reach the page; the request itself says when it is over (after its swap).
      evt.detail.xhr.addEventListener("loadend", rowDone);
    }
  });

  document.body.addEventListener("htmx:beforeSwap", function (evt) {
    if (!fromFilter(evt)) return;
    if (rowsInFlight > 0 || rowWrites !== filterStartedAt) {
      evt.detail.shouldSwap = false;            // older than a row's answer: ask again
      askAgain = true;
      if (rowsInFlight === 0) refilter();
      return;
    }
    openEditors = Array.prototype.slice.call(document.querySelectorAll("#campaign-rows tr.is-editing"));
  });

  document.body.addEventListener("htmx:afterSwap", function (evt) {
    if (!fromFilter(evt)) return;
    openEditors.forEach(function (editor) {
      var listed = document.getElementById(editor.id);
      if (listed && listed !== editor) listed.replaceWith(editor);
    });
    openEditors = [];
  });

  function rowDone() {
    rowsInFlight = Math.max(0, rowsInFlight - 1);
    if (rowsInFlight === 0 && askAgain) refilter();
  }
})();

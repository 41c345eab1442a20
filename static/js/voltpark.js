// Small progressive enhancements; every page works without them (no inline scripts: see the CSP).
"use strict";

// A form marked data-autosubmit submits when one of its selects changes; its button hides.
function enhanceAutosubmit(form) {
  const button = form.querySelector("[data-autosubmit-button]");
  if (button) button.hidden = true;
  form.querySelectorAll("select").forEach((select) => {
    select.addEventListener("change", () => form.requestSubmit());
  });
}

// A button with data-copy="#id" copies the text of that element to the clipboard.
function enhanceCopy(button) {
  const target = document.querySelector(button.dataset.copy);
  if (!target || !navigator.clipboard) return;
  button.hidden = false;
  button.addEventListener("click", async () => {
    await navigator.clipboard.writeText(target.textContent.trim());
    button.textContent = "Copied";
  });
}

// A form with data-confirm="question" asks before it is sent.
function enhanceConfirm(form) {
  form.addEventListener("submit", (event) => {
    if (!window.confirm(form.dataset.confirm)) event.preventDefault();
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("form[data-autosubmit]").forEach(enhanceAutosubmit);
  document.querySelectorAll("button[data-copy]").forEach(enhanceCopy);
  document.querySelectorAll("form[data-confirm]").forEach(enhanceConfirm);
});

// Leaving a page aborts its htmx requests (a lease page polls while it runs), so a poll cut off by
// the navigation ends quietly instead of being reported as a failed request.
window.addEventListener("beforeunload", () => {
  if (!window.htmx) return;
  document.querySelectorAll("[hx-get], [hx-post]").forEach((element) => {
    window.htmx.trigger(element, "htmx:abort");
  });
});

// Fills hidden fields marked data-detect-tz with the browser's IANA time zone (the server reads
// times typed into the form in that zone), and shows its name where data-tz-name asks.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  document.querySelectorAll("input[data-detect-tz]").forEach((input) => {
    input.value = zone;
  });
  document.querySelectorAll("[data-tz-name]").forEach((label) => {
    label.textContent = zone;
  });
});

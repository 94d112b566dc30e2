// notifygw console: the only script. Two jobs, both optional (every page works without it):
// ask before a destructive form is sent, and keep a list marked data-refresh up to date.
"use strict";
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) event.preventDefault();
});
document.querySelectorAll("[data-refresh]").forEach((table) => {
  const seconds = Number(table.dataset.refresh) || 5;
  setInterval(async () => {
    if (document.hidden) return;
    const response = await fetch(location.href, { credentials: "same-origin", headers: { Accept: "text/html" } });
    if (!response.ok || response.redirected) return;
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html").getElementById(table.id);
    const body = fresh && fresh.querySelector("tbody");
    if (body) table.querySelector("tbody").replaceWith(body);
  }, seconds * 1000);
});

// Refresh the dashboard's body in place every 15 seconds, without a full page reload.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const target = document.getElementById("dashboard");
  if (!target) return;
  const refresh = async () => {
    const response = await fetch(target.dataset.refresh, { credentials: "same-origin" });
    if (response.ok) target.innerHTML = await response.text();
  };
  setInterval(() => { refresh().catch(() => {}); }, 15000);
});

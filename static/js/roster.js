// Roster's only script besides htmx (no inline script anywhere: the CSP forbids it).
// Toasts close on their button and fade out by themselves.
document.addEventListener("click", (event) => {
  const close = event.target.closest(".toast-close");
  if (close) close.closest(".toast")?.remove();
});
document.addEventListener("htmx:afterSwap", (event) => {
  if (event.detail.target?.id !== "toasts") return;
  const toast = event.detail.target.lastElementChild;
  if (toast) setTimeout(() => toast.remove(), 8000);
});

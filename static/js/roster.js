// Roster's only script besides htmx (no inline script anywhere: the CSP forbids it).
// Toasts close on their button and fade out by themselves.
document.addEventListener("click", (event) => {
  const close = event.target.closest(".toast-close");
  if (close) close.closest(".toast")?.remove();
});
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("#toasts .notice").forEach((n) => setTimeout(() => n.remove(), 8000));
});
document.addEventListener("htmx:afterSwap", (event) => {
  if (event.detail.target?.id !== "toasts") return;
  const toast = event.detail.target.lastElementChild;
  if (toast) setTimeout(() => toast.remove(), 8000);
});

// A new schedule starts in the browser's time zone (UTC without JavaScript).
function browserZone() {
  document.querySelectorAll("input[data-browser-zone]").forEach((field) => {
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    const known = [...(field.list?.options ?? [])].some((o) => o.value === zone);
    if (zone && known) field.value = zone;
    field.removeAttribute("data-browser-zone");
  });
}
document.addEventListener("DOMContentLoaded", browserZone);
document.addEventListener("htmx:afterSwap", browserZone);

// A form sent back with errors: focus its summary, whose links lead to each field.
function focusErrorSummary() {
  document.getElementById("error-summary")?.focus();
}
document.addEventListener("DOMContentLoaded", focusErrorSummary);
document.addEventListener("htmx:afterSwap", focusErrorSummary);

// Dialogs (test connection, group picker): htmx fills the dialog's body, this opens it.
document.addEventListener("htmx:afterSwap", (event) => {
  const dialog = event.detail.target?.closest?.("dialog");
  if (dialog && !dialog.open) dialog.showModal();
});
document.addEventListener("click", (event) => {
  const close = event.target.closest("[data-close-dialog]");
  const dialog = close?.closest("dialog");
  if (dialog) {
    // A Cancel link leaves the page only without JavaScript.
    event.preventDefault();
    dialog.close();
  }
  const copy = event.target.closest("[data-copy], [data-copy-text]");
  if (copy) {
    const field = copy.dataset.copy && document.getElementById(copy.dataset.copy);
    field?.select();
    const text = copy.dataset.copyText ?? field?.value;
    if (text !== undefined) {
      navigator.clipboard?.writeText(text);
      copy.textContent = "Copied";
    }
  }
});

// Group picker: ticking a group adds it to (or removes it from) the comma-separated list.
document.addEventListener("change", (event) => {
  const pick = event.target.closest("[data-group-pick]");
  if (pick) {
    const field = document.getElementById("groups_to_sync");
    if (!field) return;
    const names = field.value.split(",").map((n) => n.trim()).filter((n) => n !== "");
    const others = names.filter((n) => n.toLowerCase() !== pick.value.toLowerCase());
    if (pick.checked) others.push(pick.value);
    field.value = others.join(", ");
    return;
  }
  // Key and certificate files are read into their text field (nothing is uploaded).
  const file = event.target.closest("input[type=file][data-file-into]");
  if (file && file.files.length > 0) {
    const target = document.getElementById(file.dataset.fileInto);
    file.files[0].text().then((text) => { if (target) target.value = text; });
  }
});

// Schedule form: only the fields of the chosen frequency are shown (all are there without
// this script, each labelled with the frequency it belongs to).
function showScheduleFields(root) {
  const kind = root.querySelector("[data-schedule-kind]");
  if (!kind) return;
  root.querySelectorAll("[data-for-kind]").forEach((set) => {
    set.hidden = !set.dataset.forKind.split(" ").includes(kind.value);
  });
}
document.addEventListener("DOMContentLoaded", () => showScheduleFields(document));
document.addEventListener("htmx:afterSwap", () => showScheduleFields(document));
document.addEventListener("change", (event) => {
  if (event.target.closest("[data-schedule-kind]")) showScheduleFields(document);
});

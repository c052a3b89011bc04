// Progressive enhancement for Flaskr's pages; everything works without it.

// Forms with data-confirm ask before they submit (e.g. deleting a post).
document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form.dataset && form.dataset.confirm;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});

// Forms marked data-unsaved ask before the page is left with changes not yet sent
// (a post being written); sending the form itself is not leaving it.
document.querySelectorAll("form[data-unsaved]").forEach((form) => {
  let changed = false;
  form.addEventListener("input", () => {
    changed = true;
  });
  form.addEventListener("change", () => {
    changed = true;
  });
  form.addEventListener("submit", () => {
    changed = false;
  });
  window.addEventListener("beforeunload", (event) => {
    if (changed) {
      event.preventDefault();
      event.returnValue = "";
    }
  });
});

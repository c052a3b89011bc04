// Progressive enhancement for Flaskr's pages; everything works without it.

// Forms with data-confirm ask before they submit (e.g. deleting a post).
document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form.dataset && form.dataset.confirm;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});

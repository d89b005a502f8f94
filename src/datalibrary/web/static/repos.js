// Repositories: create, archive and unarchive through the REST API (the checks are the
// service's), then show the result. Browsing is server-rendered.
import { api } from "/static/app.js";

const status = document.getElementById("repos-status");
const errorLine = document.getElementById("repos-error");

function fail(error) {
  if (!errorLine) return window.alert(error.message);
  errorLine.textContent = error.message;
  errorLine.hidden = false;
}

const form = document.getElementById("create-repo");
form?.addEventListener("submit", async (event) => {
  event.preventDefault();
  errorLine.hidden = true;
  const project = form.elements.project.value;
  const name = form.elements.name.value.trim();
  try {
    const repo = await api(`/projects/${encodeURIComponent(project)}/repos`, {
      method: "POST",
      body: { name, description: form.elements.description.value.trim() },
    });
    window.location.assign(`/repos/${encodeURIComponent(repo.project)}/${encodeURIComponent(repo.name)}?created=1`);
  } catch (error) {
    fail(error);
  }
});

for (const button of document.querySelectorAll("button.archive, button.unarchive")) {
  button.addEventListener("click", async () => {
    const { project, repo } = button.dataset;
    const verb = button.classList.contains("archive") ? "archive" : "unarchive";
    if (verb === "archive" && !window.confirm(`Archive ${project}/${repo}? It becomes read-only: no one can push.`)) return;
    try {
      await api(`/projects/${encodeURIComponent(project)}/repos/${encodeURIComponent(repo)}/${verb}`, { method: "POST" });
      if (status) {
        status.textContent = `${project}/${repo} ${verb}d.`;
        status.hidden = false;
      }
      window.location.reload();
    } catch (error) {
      fail(error);
    }
  });
}

// DataLibrary console helpers: a small ES module, no build step.
// api() sends the CSRF token of the session on state-changing calls.

const csrfToken = () =>
  document.querySelector('input[name="csrf_token"]')?.value ?? "";

export async function api(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") headers["X-CSRF-Token"] = csrfToken();
  const response = await fetch(`/api/v1${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  const data = response.status === 204 ? null : await response.json();
  if (!response.ok) {
    const error = new Error(data?.detail ?? response.statusText);
    error.problem = data;
    throw error;
  }
  return data;
}

// Move focus to the first invalid field so keyboard users land on the error.
document.addEventListener("DOMContentLoaded", () => {
  const invalid = document.querySelector('[aria-invalid="true"]');
  if (invalid) invalid.focus();
});

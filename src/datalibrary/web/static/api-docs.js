// Boots Swagger UI from the locally served bundle (no CDN, CSP-friendly: no inline script).
window.ui = SwaggerUIBundle({
  url: "/api/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
});

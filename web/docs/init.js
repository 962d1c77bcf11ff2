// Starts Swagger UI on this server's /openapi.json (GET /docs). Loaded as
// a file because the page's Content-Security-Policy allows no inline script.
// The document is fetched at every load of the page, so the page always
// shows the routes the server runs now (it follows reloads).
/* global SwaggerUIBundle */
"use strict";

(function () {
    // relative to /docs, so the page works under a path prefix too
    var spec = new URL("openapi.json", document.baseURI).href;
    window.ui = SwaggerUIBundle({
        url: spec,
        dom_id: "#swagger-ui",
        presets: [SwaggerUIBundle.presets.apis],
        layout: "BaseLayout",
        deepLinking: true,
        // no badge from the public validator: nothing leaves this origin
        validatorUrl: null,
        // ?url= and ?configUrl= must not point the page at another document
        queryConfigEnabled: false,
        // the token lives in the page's memory only, never in localStorage
        persistAuthorization: false,
        displayRequestDuration: true
    });
})();

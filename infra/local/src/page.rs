//! The demo page served at `/`, the admin console at `/admin/events` and `/admin/websocket`,
//! and their modules under `/web/` (the browser client `realtime.js` is the same file a
//! frontend would import; `vendor/` holds uPlot, pinned: `web/vendor/README.md`).

/// A file of `web/` by name (`vendor/…` for the vendored ones): (content type, body).
pub fn asset(name: &str) -> Option<(&'static str, &'static str)> {
    const HTML: &str = "text/html; charset=utf-8";
    const JS: &str = "text/javascript; charset=utf-8";
    const CSS: &str = "text/css; charset=utf-8";
    Some(match name {
        "index.html" => (HTML, include_str!("../../../web/index.html")),
        "app.js" => (JS, include_str!("../../../web/app.js")),
        "realtime.js" => (JS, include_str!("../../../web/realtime.js")),
        "admin.html" => (HTML, include_str!("../../../web/admin.html")),
        "admin.js" => (JS, include_str!("../../../web/admin.js")),
        "vendor/uPlot.iife.min.js" => (JS, include_str!("../../../web/vendor/uPlot.iife.min.js")),
        "vendor/uPlot.min.css" => (CSS, include_str!("../../../web/vendor/uPlot.min.css")),
        _ => return None,
    })
}

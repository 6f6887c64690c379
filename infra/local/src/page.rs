//! The demo page served at `/`, the admin console at `/admin/events` and `/admin/websocket`,
//! and their modules under `/web/`: `realtime/` is the client package's build
//! (`clients/js/dist`, the files a frontend gets from `npm install`), `vendor/` holds uPlot,
//! pinned (`web/vendor/README.md`).

/// A file of `web/` by name (`vendor/…` for the vendored ones): (content type, body).
pub fn asset(name: &str) -> Option<(&'static str, &'static str)> {
    const HTML: &str = "text/html; charset=utf-8";
    const JS: &str = "text/javascript; charset=utf-8";
    const CSS: &str = "text/css; charset=utf-8";
    Some(match name {
        "index.html" => (HTML, include_str!("../../../web/index.html")),
        "app.js" => (JS, include_str!("../../../web/app.js")),
        "realtime/index.js" => (JS, include_str!("../../../clients/js/dist/index.js")),
        "realtime/client.js" => (JS, include_str!("../../../clients/js/dist/client.js")),
        "realtime/order.js" => (JS, include_str!("../../../clients/js/dist/order.js")),
        "realtime/events.js" => (JS, include_str!("../../../clients/js/dist/events.js")),
        "realtime/sse.js" => (JS, include_str!("../../../clients/js/dist/sse.js")),
        "admin.html" => (HTML, include_str!("../../../web/admin.html")),
        "admin.js" => (JS, include_str!("../../../web/admin.js")),
        "vendor/uPlot.iife.min.js" => (JS, include_str!("../../../web/vendor/uPlot.iife.min.js")),
        "vendor/uPlot.min.css" => (CSS, include_str!("../../../web/vendor/uPlot.min.css")),
        _ => return None,
    })
}
